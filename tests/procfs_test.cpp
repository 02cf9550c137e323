// Tests for allocator/src/procfs.cpp: the /proc table (lookup, unknown paths, read-only and
// write-only files), the sysctl integer parser (proc_dointvec's rules) and the page
// allocator's registered files.
#include <gtest/gtest.h>

#include <cerrno>

#include "kernel.h"
#include "page_test_util.h"
#include "procfs.h"

using kmm::Machine;

TEST(Procfs, ParseSysctlInt) {
  long v = 0;
  EXPECT_TRUE(kmm::parse_sysctl_int("42", &v));
  EXPECT_EQ(v, 42);
  EXPECT_TRUE(kmm::parse_sysctl_int("42\n", &v));
  EXPECT_EQ(v, 42);
  EXPECT_TRUE(kmm::parse_sysctl_int("  -7 \n", &v));
  EXPECT_EQ(v, -7);
  EXPECT_TRUE(kmm::parse_sysctl_int("+9", &v));
  EXPECT_EQ(v, 9);
  v = 123;
  for (const char* bad :
       {"", " ", "\n", "4 2", "0x10", "1e3", "12abc", "abc", "99999999999999999999999"})
    EXPECT_FALSE(kmm::parse_sysctl_int(bad, &v)) << '"' << bad << '"';
  EXPECT_EQ(v, 123); // untouched on failure
}

TEST(Procfs, RegisteredPageAllocatorFiles) {
  auto m = Machine::boot("mem=16M");
  auto paths = m->kernel().procfs.paths();
  for (const char* p :
       {"/proc/buddyinfo", "/proc/pagetypeinfo", "/proc/zoneinfo", "/proc/vmstat", "/proc/meminfo",
        "/proc/sys/vm/min_free_kbytes", "/proc/sys/vm/watermark_scale_factor"})
    EXPECT_NE(std::find(paths.begin(), paths.end(), p), paths.end()) << p;
  for (const char* ro :
       {"/proc/buddyinfo", "/proc/pagetypeinfo", "/proc/zoneinfo", "/proc/vmstat", "/proc/meminfo"})
    EXPECT_EQ(m->proc_write(ro, "1"), -EACCES) << ro;
}

TEST(Procfs, UnknownPathsAreNamed) {
  auto m = Machine::boot("mem=16M");
  try {
    m->proc_read("/proc/buddyinfoo");
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "no such file: /proc/buddyinfoo");
  }
  EXPECT_EQ(m->proc_write("/proc/sys/vm/no_such_sysctl", "1"), -ENOENT);
}

TEST(Procfs, CustomFilesAndResolvers) {
  auto m = Machine::boot("mem=16M");
  kmm::ProcFs& fs = m->kernel().procfs;
  fs.add("/proc/kmm_test_wo",
         {nullptr, [](kmm::Kernel&, const std::string& t) { return t == "ok" ? 0 : -EINVAL; }});
  fs.add_resolver([](kmm::Kernel&, const std::string& path, kmm::ProcFile* out) {
    if (path.rfind("/proc/kmm_echo/", 0) != 0) return false;
    std::string tail = path.substr(15);
    out->read = [tail](kmm::Kernel&) { return tail + "\n"; };
    return true;
  });
  EXPECT_EQ(m->proc_write("/proc/kmm_test_wo", "ok"), 0);
  EXPECT_EQ(m->proc_write("/proc/kmm_test_wo", "no"), -EINVAL);
  EXPECT_THROW(m->proc_read("/proc/kmm_test_wo"), std::invalid_argument);
  EXPECT_EQ(m->proc_read("/proc/kmm_echo/abc"), "abc\n");
  EXPECT_EQ(m->proc_write("/proc/kmm_echo/abc", "1"), -EACCES);
}

TEST(Procfs, ReadsRunWithTheMachineCurrent) {
  // proc_read works from a thread with no machine, and leaves no machine behind.
  auto m = Machine::boot("mem=16M");
  EXPECT_EQ(kmm::current_machine(), nullptr);
  EXPECT_FALSE(m->proc_read("/proc/zoneinfo").empty());
  EXPECT_EQ(kmm::current_machine(), nullptr);
  auto other = Machine::boot("mem=4M");
  kmm::MachineScope scope(*other);
  EXPECT_EQ(m->proc_read("/proc/meminfo").rfind("MemTotal:          16380 kB\n", 0), 0u);
  EXPECT_EQ(kmm::current_machine(), other.get());
}
