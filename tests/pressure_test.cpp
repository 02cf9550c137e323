// Tests for allocator/src/pressure.cpp: drop_caches, the vm sysctls, sysrq and validate's view
// of the pressure layer.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernel.h"
#include "kmm/machine.h"
#include "kmm/pressure.h"
#include "kmm/validate.h"
#include "test_util.h"

using kmm::Machine;
using kmm::test::proc_value;

TEST(Pressure, DropCachesEmptiesCleanCache) {
  auto m = Machine::boot("mem=64M");
  int clean = kmm::file_create(*m, "clean");
  int dirty = kmm::file_create(*m, "dirty");
  ASSERT_EQ(kmm::file_read(*m, clean, 0, 1000), 1000);
  ASSERT_EQ(kmm::file_read(*m, clean, 0, 100), 100); // some of it active
  ASSERT_EQ(kmm::file_write(*m, dirty, 0, 300), 300);
  const long free_before = proc_value(*m, "/proc/meminfo", "MemFree");
  EXPECT_EQ(m->proc_write("/proc/sys/vm/drop_caches", "1\n"), 0);
  EXPECT_EQ(kmm::file_cached_pages(*m, clean), 0);
  EXPECT_EQ(kmm::file_cached_pages(*m, dirty), 300);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "Cached"), 300 * 4);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "Dirty"), 300 * 4);
  EXPECT_GE(proc_value(*m, "/proc/meminfo", "MemFree"), free_before + 1000 * 4 - 2048);
  EXPECT_EQ(proc_value(*m, "/proc/vmstat", "drop_pagecache"), 1);
  EXPECT_EQ(proc_value(*m, "/proc/vmstat", "drop_slab"), 0);
  EXPECT_NE(m->dmesg().find("kmm (1): drop_caches: 1\n"), std::string::npos);
  // After writeback the rest goes too.
  kmm::writeback(*m);
  EXPECT_EQ(m->proc_write("/proc/sys/vm/drop_caches", "3"), 0);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "Cached"), 0);
  EXPECT_EQ(proc_value(*m, "/proc/vmstat", "drop_pagecache"), 2);
  EXPECT_EQ(proc_value(*m, "/proc/vmstat", "drop_slab"), 1);
  // 4 silences the log line from then on.
  EXPECT_EQ(m->proc_write("/proc/sys/vm/drop_caches", "4"), 0);
  EXPECT_NE(m->dmesg().find("kmm (1): drop_caches: 4\n"), std::string::npos);
  EXPECT_EQ(m->proc_write("/proc/sys/vm/drop_caches", "1"), 0);
  EXPECT_EQ(m->dmesg().find("kmm (1): drop_caches: 1\n", m->dmesg().find("drop_caches: 4")),
            std::string::npos);
  EXPECT_EQ(m->proc_write("/proc/sys/vm/drop_caches", "0"), -EINVAL);
  EXPECT_EQ(m->proc_write("/proc/sys/vm/drop_caches", "5"), -EINVAL);
  EXPECT_THROW(m->proc_read("/proc/sys/vm/drop_caches"), std::invalid_argument); // mode 0200
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Pressure, DropCachesKeepsPinnedPages) {
  auto m = Machine::boot("mem=64M");
  kmm::MachineScope scope(*m);
  int ino = kmm::file_create(*m, "f");
  ASSERT_EQ(kmm::file_read(*m, ino, 0, 10), 10);
  kmm::Kernel& k = m->kernel();
  struct page* pinned = nullptr;
  for (unsigned long pfn = 0; pfn < k.mem.nr_pages && !pinned; pfn++)
    if (k.mem.mem_map[pfn].owner == kmm::PageOwner::PageCache) pinned = &k.mem.mem_map[pfn];
  ASSERT_NE(pinned, nullptr);
  pinned->_refcount++; // get_page()
  EXPECT_EQ(m->proc_write("/proc/sys/vm/drop_caches", "1"), 0);
  EXPECT_EQ(kmm::file_cached_pages(*m, ino), 1);
  EXPECT_EQ(kmm::file_delete(*m, ino), 0); // the pinner keeps the page, no longer page cache
  EXPECT_EQ(pinned->owner, kmm::PageOwner::Kernel);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Pressure, VmSysctls) {
  auto m = Machine::boot("mem=64M vm.swappiness=10");
  EXPECT_EQ(m->proc_read("/proc/sys/vm/swappiness"), "10\n");
  EXPECT_EQ(m->proc_write("/proc/sys/vm/swappiness", "200"), 0);
  EXPECT_EQ(m->proc_write("/proc/sys/vm/swappiness", "201"), -EINVAL);
  EXPECT_EQ(m->proc_read("/proc/sys/vm/swappiness"), "200\n");
  EXPECT_EQ(m->proc_read("/proc/sys/vm/overcommit_ratio"), "50\n");
  EXPECT_EQ(m->proc_write("/proc/sys/vm/overcommit_ratio", "-1"), -EINVAL);
  EXPECT_THROW(Machine::boot("vm.swappiness=201"), kmm::BootError);
  // user_reserve_kbytes = min(free / 32, 128 MiB), admin_reserve_kbytes = min(free / 32, 8 MiB).
  long free_kb = proc_value(*m, "/proc/meminfo", "MemFree");
  EXPECT_NEAR(std::stol(m->proc_read("/proc/sys/vm/user_reserve_kbytes")), free_kb / 32, 64);
}

TEST(Pressure, ValidateCatchesAStrayOwner) {
  auto m = Machine::boot("mem=64M");
  kmm::MachineScope scope(*m);
  int pid = kmm::task_spawn(*m, "t", 0);
  ASSERT_EQ(kmm::task_touch(*m, pid, 3), 3);
  kmm::Kernel& k = m->kernel();
  struct page* anon = nullptr;
  for (unsigned long pfn = 0; pfn < k.mem.nr_pages && !anon; pfn++)
    if (k.mem.mem_map[pfn].owner == kmm::PageOwner::Anon) anon = &k.mem.mem_map[pfn];
  ASSERT_NE(anon, nullptr);
  anon->owner = kmm::PageOwner::PageCache; // corrupt: on the anon LRU but "page cache"
  auto errors = kmm::validate(*m);
  EXPECT_FALSE(errors.empty());
  bool lru = false, owners = false;
  for (auto& e : errors) {
    lru |= e.rfind("lru: inactive_anon: pfn", 0) == 0;
    owners |= e == "pressure: 2 anon pages in mem_map, owners account for 3";
  }
  EXPECT_TRUE(lru);
  EXPECT_TRUE(owners);
  anon->owner = kmm::PageOwner::Anon;
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Pressure, SysrqShowMemoryAndHelp) {
  auto m = Machine::boot("mem=16M");
  EXPECT_EQ(m->proc_write("/proc/sysrq-trigger", "m"), 0);
  std::string log = m->dmesg();
  size_t at = log.find("] sysrq: Show Memory\n");
  ASSERT_NE(at, std::string::npos) << log;
  EXPECT_NE(log.find("Mem-Info:", at), std::string::npos) << log.substr(at);
  EXPECT_EQ(m->proc_write("/proc/sysrq-trigger", "?"), 0);
  EXPECT_NE(m->dmesg().find("] sysrq: HELP : show-memory-usage(m) manual-oom-kill(f)\n"),
            std::string::npos);
  EXPECT_EQ(m->proc_write("/proc/sysrq-trigger", ""), 0); // nothing written, nothing done
  EXPECT_TRUE(m->reports().empty());
}

TEST(Pressure, ValidateCatchesACommittedAsDrift) {
  auto m = Machine::boot("mem=16M");
  int pid = kmm::task_spawn(*m, "t", 0);
  ASSERT_EQ(kmm::task_mmap(*m, pid, 10), 0);
  kmm::Kernel& k = m->kernel();
  long committed = k.vm_committed_as.load();
  k.vm_committed_as += 5;
  auto errors = kmm::validate(*m);
  EXPECT_EQ(errors,
            std::vector<std::string>{"meminfo: tasks reserve " + std::to_string(committed) +
                                     " pages but Committed_AS = " + std::to_string(committed + 5)});
  k.vm_committed_as -= 5;
  EXPECT_TRUE(kmm::validate(*m).empty());
}
