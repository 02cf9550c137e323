// Tests for allocator/src/vmstat.cpp: /proc/buddyinfo, /proc/pagetypeinfo, /proc/zoneinfo and
// /proc/vmstat in the kernel's layout (mm/vmstat.c formats), parsed back and checked against the
// allocator's counters; and the event counting rules (pgalloc_<zone> += 1 << order at hand-out,
// pgfree += 1 << order, allocstall_<zone> per direct reclaim).
#include <gtest/gtest.h>

#include "kernel.h"
#include "kmm/validate.h"
#include "page_test_util.h"

using kmm::Machine;
using kmm::test::proc_value;
using kmm::test::zoneinfo;

TEST(Vmstat, BuddyinfoLayout) {
  auto m = Machine::boot("mem=4M nr_cpus=1");
  // "Node %d, zone %8s " then "%6lu " per order, ending in a space before the newline.
  EXPECT_EQ(m->proc_read("/proc/buddyinfo"), "Node 0, zone      DMA      1      1      1      1    "
                                             "  1      1      0      0      0      0      0 \n"
                                             "Node 0, zone    DMA32      0      0      0      0    "
                                             "  0      0      1      1      1      0      0 \n"
                                             "Node 0, zone   Normal      0      0      0      0    "
                                             "  0      0      0      0      0      1      0 \n");
  // An empty zone has no line: movablecore gives Movable a line of its own.
  auto mv = Machine::boot("mem=8M movablecore=2M");
  EXPECT_NE(mv->proc_read("/proc/buddyinfo")
                .find("Node 0, zone  Movable      0      0      0      0"
                      "      0      0      0      0      0      1      0 \n"),
            std::string::npos);
}

TEST(Vmstat, PagetypeinfoLayout) {
  auto m = Machine::boot("mem=4M nr_cpus=1");
  const std::string t = m->proc_read("/proc/pagetypeinfo");
  const std::string head =
      "Page block order: 9\n"
      "Pages per block:  512\n"
      "\n"
      "Free pages count per migrate type at order       0      1      2      3      4      5      6"
      "      7      8      9     10 \n"
      "Node    0, zone      DMA, type    Unmovable      0      0      0      0      0      0      0"
      "      0      0      0      0 \n"
      "Node    0, zone      DMA, type      Movable      1      1      1      1      1      1      0"
      "      0      0      0      0 \n";
  EXPECT_EQ(t.substr(0, head.size()), head);
  const std::string tail =
      "\nNumber of blocks type     Unmovable      Movable  Reclaimable   HighAtomic          CMA"
      "      Isolate \n"
      "Node 0, zone      DMA            0            1            0            0            0"
      "            0 \n"
      "Node 0, zone    DMA32            0            1            0            0            0"
      "            0 \n"
      "Node 0, zone   Normal            0            1            0            0            0"
      "            0 \n";
  ASSERT_GE(t.size(), tail.size());
  EXPECT_EQ(t.substr(t.size() - tail.size()), tail);
  // 3 zones x 6 migratetypes of free counts.
  size_t rows = 0;
  for (size_t pos = 0; (pos = t.find(", type ", pos)) != std::string::npos; pos++) rows++;
  EXPECT_EQ(rows, 18u);
}

TEST(Vmstat, PagetypeinfoRowsSumToBuddyinfo) {
  auto m = Machine::boot("mem=64M nr_cpus=2");
  {
    kmm::MachineScope scope(*m);
    // Mix the migratetypes a little.
    for (gfp_t g : {GFP_KERNEL, GFP_HIGHUSER_MOVABLE, GFP_KERNEL | __GFP_RECLAIMABLE})
      for (unsigned o = 0; o < 5; o++) ASSERT_NE(alloc_pages(g, o), nullptr);
  }
  for (const char* zone : {"DMA", "DMA32", "Normal"}) {
    SCOPED_TRACE(zone);
    std::vector<long> sum(11, 0);
    for (auto& row : kmm::test::proc_rows(*m, "/proc/pagetypeinfo"))
      if (row.size() == 17 && row[3] == std::string(zone) + ",")
        for (int o = 0; o < 11; o++) sum[o] += std::stol(row[6 + o]);
    EXPECT_EQ(sum, kmm::test::buddyinfo(*m, zone));
  }
}

TEST(Vmstat, ZoneinfoAgreesWithTheCounters) {
  auto m = Machine::boot("mem=64M nr_cpus=2");
  kmm::MachineScope scope(*m);
  struct page* p = alloc_pages(GFP_KERNEL, 2);
  ASSERT_NE(p, nullptr);
  auto zi = zoneinfo(*m);
  long total_free = 0;
  for (const char* zone : {"DMA", "DMA32", "Normal"}) {
    SCOPED_TRACE(zone);
    const auto& z = zi[zone];
    EXPECT_EQ(z.free, kmm::test::buddyinfo_pages(kmm::test::buddyinfo(*m, zone)));
    EXPECT_EQ(z.spanned, z.present);
    EXPECT_EQ(z.boost, 0);
    total_free += z.free;
  }
  EXPECT_EQ(zi["DMA"].start_pfn, 0);
  EXPECT_EQ(zi["DMA32"].start_pfn, 1024);
  EXPECT_EQ(zi["Normal"].start_pfn, 8192);
  EXPECT_EQ(zi["DMA"].managed, 1023);
  EXPECT_EQ(zi["DMA32"].managed, 7168);
  EXPECT_EQ(zi["Normal"].managed, 8192);
  EXPECT_EQ(zi["Movable"].managed, 0);
  EXPECT_EQ(proc_value(*m, "/proc/vmstat", "nr_free_pages"), total_free);
  // The zone's own nr_free_pages line repeats "pages free".
  const std::string t = m->proc_read("/proc/zoneinfo");
  EXPECT_NE(t.find("\n      nr_free_pages " + std::to_string(zi["Normal"].free) + "\n"),
            std::string::npos);
  EXPECT_NE(t.find("Node 0, zone   Normal\n  pages free     " + std::to_string(zi["Normal"].free) +
                   "\n        boost    0\n        min      127\n"),
            std::string::npos)
      << t;
  __free_pages(p, 2);
}

TEST(Vmstat, EventCountingRules) {
  auto m = Machine::boot("mem=64M nr_cpus=1");
  kmm::MachineScope scope(*m);
  auto ev = [&](const char* name) { return proc_value(*m, "/proc/vmstat", name); };
  EXPECT_EQ(ev("pgalloc_normal"), 0);
  EXPECT_EQ(ev("pgfree"), 0);
  struct page* a = alloc_pages(GFP_KERNEL, 0); // a pcp refill takes more, but counts 1
  struct page* b = alloc_pages(GFP_KERNEL, 3);
  struct page* c = alloc_pages(GFP_KERNEL | GFP_DMA, 1);
  struct page* d = alloc_pages(GFP_DMA32, 5);
  EXPECT_EQ(ev("pgalloc_normal"), 1 + 8);
  EXPECT_EQ(ev("pgalloc_dma"), 2);
  EXPECT_EQ(ev("pgalloc_dma32"), 32);
  EXPECT_EQ(ev("pgalloc_movable"), 0);
  __free_pages(a, 0);
  __free_pages(b, 3);
  __free_pages(c, 1);
  __free_pages(d, 5);
  EXPECT_EQ(ev("pgfree"), 1 + 8 + 2 + 32);
  EXPECT_EQ(ev("allocstall_normal"), 0);
}

TEST(Vmstat, AllocstallCountsDirectReclaimEntries) {
  // mem=4M has no order-10 block and DMA32 none above order 8: each request below enters
  // direct reclaim once, then gives up (costly order).
  auto m = Machine::boot("mem=4M nr_cpus=1");
  kmm::MachineScope scope(*m);
  EXPECT_EQ(alloc_pages(GFP_KERNEL | __GFP_NOWARN, 10), nullptr);
  EXPECT_EQ(proc_value(*m, "/proc/vmstat", "allocstall_normal"), 1);
  EXPECT_EQ(alloc_pages(GFP_KERNEL | GFP_DMA32 | __GFP_NOWARN, 9), nullptr);
  EXPECT_EQ(proc_value(*m, "/proc/vmstat", "allocstall_dma32"), 1);
  EXPECT_EQ(alloc_pages(GFP_NOWAIT | __GFP_NOWARN, 10), nullptr); // cannot reclaim: no stall
  EXPECT_EQ(proc_value(*m, "/proc/vmstat", "allocstall_normal"), 1);
}

TEST(Vmstat, VmstatListsCountersInTheKernelOrder) {
  auto m = Machine::boot("mem=16M");
  auto rows = kmm::test::proc_rows(*m, "/proc/vmstat");
  std::vector<std::string> names;
  for (auto& r : rows) {
    ASSERT_EQ(r.size(), 2u);
    names.push_back(r[0]);
  }
  ASSERT_GE(names.size(), 11u);
  const std::vector<std::string> zone_items = {"nr_free_pages",
                                               "nr_zone_inactive_anon",
                                               "nr_zone_active_anon",
                                               "nr_zone_inactive_file",
                                               "nr_zone_active_file",
                                               "nr_zone_unevictable",
                                               "nr_zone_write_pending",
                                               "nr_mlock",
                                               "nr_bounce",
                                               "nr_zspages",
                                               "nr_free_cma"};
  EXPECT_EQ(std::vector<std::string>(names.begin(), names.begin() + 11), zone_items);
  auto pos = [&](const char* n) {
    return std::find(names.begin(), names.end(), n) - names.begin();
  };
  EXPECT_LT(pos("nr_free_cma"), pos("nr_inactive_anon"));
  EXPECT_LT(pos("nr_inactive_anon"), pos("nr_dirty_threshold"));
  EXPECT_LT(pos("nr_dirty_background_threshold"), pos("pgpgin"));
  EXPECT_LT(pos("pgalloc_dma"), pos("pgalloc_dma32"));
  EXPECT_LT(pos("pgalloc_movable"), pos("allocstall_dma"));
  EXPECT_LT(pos("allocstall_movable"), pos("pgfree"));
  EXPECT_LT(pos("pgfree"), pos("oom_kill"));
  EXPECT_LT(pos("oom_kill"), static_cast<long>(names.size()));
}
