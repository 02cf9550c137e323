// Tests for allocator/src/meminfo.cpp: /proc/meminfo's layout (show_val_kb: the label padded
// to 16 columns, the value in 8, " kB") and its arithmetic: MemTotal is the managed pages,
// MemFree the buddy free pages (pcp lists excluded), MemAvailable si_mem_available().
#include <gtest/gtest.h>

#include <regex>

#include "kmm/validate.h"
#include "page_test_util.h"

using kmm::Machine;
using kmm::test::proc_value;

namespace {

// totalreserve_pages by calculate_totalreserve_pages(): per zone, the highest lowmem_reserve
// plus the high mark, at most the zone's managed pages.
long ref_totalreserve(Machine& m) {
  long total = 0;
  for (auto& [name, z] : kmm::test::zoneinfo(m)) {
    long max = *std::max_element(z.protection.begin(), z.protection.end()) + z.high;
    total += std::min(max, z.managed);
  }
  return total;
}

} // namespace

TEST(Meminfo, LayoutAndOrder) {
  auto m = Machine::boot("mem=4M nr_cpus=1");
  const std::string t = m->proc_read("/proc/meminfo");
  EXPECT_EQ(t.rfind("MemTotal:           4092 kB\n", 0), 0u);
  std::vector<std::string> labels;
  std::istringstream in(t);
  std::string line;
  const std::regex kb("([A-Za-z0-9_()]+:) *([0-9]+) kB");
  const std::regex plain("(HugePages_[A-Za-z]+:) *[0-9]+");
  while (std::getline(in, line)) {
    std::smatch sm;
    if (std::regex_match(line, sm, kb)) {
      // "%-16s%8lu kB": the value ends in column 24 unless it is wider than 8 digits.
      EXPECT_EQ(line.size(), 16u + std::max<size_t>(8, sm[2].length()) + 3) << line;
    } else {
      ASSERT_TRUE(std::regex_match(line, sm, plain)) << line;
      EXPECT_EQ(line.size(), 24u) << line; // "%-16s   %5lu"
    }
    labels.push_back(sm[1].str());
  }
  // The kernel's order for the lines kmm shows (fs/proc/meminfo.c).
  const std::vector<std::string> order = {
      "MemTotal:",       "MemFree:",        "MemAvailable:",   "Buffers:",      "Cached:",
      "SwapCached:",     "Active:",         "Inactive:",       "Active(anon):", "Inactive(anon):",
      "Active(file):",   "Inactive(file):", "Unevictable:",    "Mlocked:",      "SwapTotal:",
      "SwapFree:",       "Dirty:",          "Writeback:",      "AnonPages:",    "Mapped:",
      "Shmem:",          "KReclaimable:",   "Slab:",           "SReclaimable:", "SUnreclaim:",
      "KernelStack:",    "PageTables:",     "SecPageTables:",  "NFS_Unstable:", "Bounce:",
      "WritebackTmp:",   "CommitLimit:",    "Committed_AS:",   "VmallocTotal:", "VmallocUsed:",
      "VmallocChunk:",   "Percpu:",         "CmaTotal:",       "CmaFree:",      "HugePages_Total:",
      "HugePages_Free:", "HugePages_Rsvd:", "HugePages_Surp:", "Hugepagesize:", "Hugetlb:",
      "DirectMap4k:"};
  size_t at = 0;
  for (const auto& want : order) {
    auto it = std::find(labels.begin() + at, labels.end(), want);
    ASSERT_NE(it, labels.end()) << want << " missing or out of order";
    at = it - labels.begin() + 1;
  }
}

TEST(Meminfo, ArithmeticMatchesTheZones) {
  auto m = Machine::boot("mem=64M nr_cpus=2");
  auto zi = kmm::test::zoneinfo(*m);
  long managed = 0, free = 0;
  for (auto& [name, z] : zi) {
    managed += z.managed;
    free += z.free;
  }
  EXPECT_EQ(managed, 16383);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "MemTotal"), managed * 4);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "MemFree"), free * 4);
  // No page cache or reclaimable slab yet: MemAvailable = free - totalreserve_pages.
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "MemAvailable"), (free - ref_totalreserve(*m)) * 4);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "DirectMap4k"), 64 * 1024);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "CmaTotal"), 0);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "SwapTotal"), 0);
}

TEST(Meminfo, MemFreeFollowsAllocationsAndIgnoresPcp) {
  auto m = Machine::boot("mem=64M nr_cpus=1");
  kmm::MachineScope scope(*m);
  const long free0 = proc_value(*m, "/proc/meminfo", "MemFree");
  struct page* big = alloc_pages(GFP_KERNEL, 5); // no pcp at order 5: exactly 32 pages
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "MemFree"), free0 - 32 * 4);
  struct page* small = alloc_pages(GFP_KERNEL, 0);
  const long pcp = kmm::test::zoneinfo(*m)["Normal"].pcp_count;
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "MemFree"), free0 - (32 + 1 + pcp) * 4);
  __free_pages(big, 5);
  __free_pages(small, 0);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "MemFree"),
            free0 - kmm::test::zoneinfo(*m)["Normal"].pcp_count * 4);
}

TEST(Meminfo, MemAvailableIsFlooredAtZero) {
  auto m = Machine::boot("mem=4M nr_cpus=1 kmm.pcp=0");
  kmm::MachineScope scope(*m);
  auto pages = kmm::test::drain_machine();
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "MemFree"), 0);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "MemAvailable"), 0);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "MemTotal"), 4092);
  for (struct page* p : pages) __free_pages(p, 0);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "MemFree"), 4092);
}
