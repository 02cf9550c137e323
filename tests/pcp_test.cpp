// Tests for allocator/src/pcp.cpp: the per-CPU page lists. Pages on a pcp list are neither
// free (MemFree, NR_FREE_PAGES, /proc/buddyinfo) nor allocated; a refill takes `batch` blocks
// from the buddy lists; a free that brings the count to `high` spills a batch back; draining
// returns everything; each CPU frees to its own list. The threaded test runs several host
// threads as CPUs of one machine (it is the one TSan checks).
//
// mem=1G, nr_cpus=2: Normal has 131072 managed pages, so zone_batchsize() is
// rounddown_pow_of_two(32 + 16) - 1 = 31 and high = max(low / 2 CPUs, 4 * batch) = 642 / 2 = 321.
#include <gtest/gtest.h>

#include <thread>

#include "kernel.h"
#include "kmm/validate.h"
#include "page_test_util.h"
#include "pcp.h"

using kmm::Machine;
using kmm::test::zoneinfo;

namespace {

int pcp_count(Machine& m, unsigned cpu, int zone = kmm::ZONE_NORMAL) {
  return m.kernel().zones[zone].pcp[cpu].count;
}

} // namespace

TEST(Pcp, BatchAndHighFromTheZoneSize) {
  auto m = Machine::boot("mem=1G nr_cpus=2");
  auto zi = zoneinfo(*m);
  EXPECT_EQ(zi["Normal"].pcp_batch, 31);
  EXPECT_EQ(zi["Normal"].pcp_high, 321);
  // DMA: 4095 managed: min(4095 >> 10, 256) / 4 == 0 -> 1 -> rounddown_pow_of_two(1) - 1 == 0,
  // and zone_set_pageset_high_and_batch() makes that max(1, 0).
  EXPECT_EQ(zi["DMA"].pcp_batch, 1);
  EXPECT_EQ(zi["DMA"].pcp_high, std::max(zi["DMA"].low / 2, 4l));
}

TEST(Pcp, PagesOnPcpListsAreNotCountedFree) {
  auto m = Machine::boot("mem=1G nr_cpus=2");
  kmm::MachineScope scope(*m);
  const std::string boot = m->proc_read("/proc/buddyinfo");
  const long free0 = zoneinfo(*m)["Normal"].free;
  const long memfree0 = kmm::test::proc_value(*m, "/proc/meminfo", "MemFree");
  struct page* p = alloc_pages(GFP_KERNEL, 0);
  ASSERT_NE(p, nullptr);
  // The refill took a batch of 31 pages off the buddy lists; 30 wait on CPU 0's list.
  auto zi = zoneinfo(*m);
  EXPECT_EQ(zi["Normal"].pcp_count, 30);
  EXPECT_EQ(zi["Normal"].free, free0 - 31);
  EXPECT_EQ(kmm::test::buddyinfo_pages(kmm::test::buddyinfo(*m, "Normal")), free0 - 31);
  EXPECT_EQ(kmm::test::proc_value(*m, "/proc/meminfo", "MemFree"), memfree0 - 31 * 4);
  EXPECT_EQ(kmm::test::proc_value(*m, "/proc/vmstat", "nr_free_pages"), memfree0 / 4 - 31);
  __free_pages(p, 0); // back onto the list: still not free
  EXPECT_EQ(pcp_count(*m, 0), 31);
  EXPECT_EQ(zoneinfo(*m)["Normal"].free, free0 - 31);
  kmm::drain_all_pages(m->kernel(), nullptr);
  EXPECT_EQ(pcp_count(*m, 0), 0);
  EXPECT_EQ(zoneinfo(*m)["Normal"].free, free0);
  EXPECT_EQ(m->proc_read("/proc/buddyinfo"), boot);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Pcp, CountStaysBelowHighAndSpillsBatches) {
  auto m = Machine::boot("mem=1G nr_cpus=2");
  kmm::MachineScope scope(*m);
  const long managed = zoneinfo(*m)["Normal"].managed;
  std::vector<struct page*> pages;
  int model = 0; // the kernel's rule: refill `batch` when empty; spill `batch` at `high`
  for (int i = 0; i < 1000; i++) {
    pages.push_back(alloc_pages(GFP_KERNEL, 0));
    if (model == 0) model = 31;
    model--;
    ASSERT_EQ(pcp_count(*m, 0), model);
  }
  for (struct page* p : pages) {
    __free_pages(p, 0);
    if (++model >= 321) model -= 31;
    ASSERT_EQ(pcp_count(*m, 0), model);
    ASSERT_LT(pcp_count(*m, 0), 321);
  }
  // Nothing is allocated: buddy + pcp == managed.
  EXPECT_EQ(zoneinfo(*m)["Normal"].free + pcp_count(*m, 0), managed);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

// A refill does not look at high: with the Movable list full, refilling the empty Unmovable one
// takes count past high, as in the kernel; the next free spills a batch.
TEST(Pcp, RefillOfAnotherListMayPassHigh) {
  auto m = Machine::boot("mem=1G nr_cpus=2");
  kmm::MachineScope scope(*m);
  std::vector<struct page*> pages;
  for (int i = 0; i < 330; i++) pages.push_back(alloc_pages(GFP_HIGHUSER_MOVABLE, 0));
  for (struct page* p : pages) __free_pages(p, 0);
  const int before = pcp_count(*m, 0);
  ASSERT_LT(before, 321);
  struct page* q = alloc_pages(GFP_KERNEL, 0);
  EXPECT_EQ(pcp_count(*m, 0), before + 30);
  EXPECT_GE(pcp_count(*m, 0), 321);
  EXPECT_TRUE(kmm::validate(*m).empty());
  __free_pages(q, 0);
  EXPECT_EQ(pcp_count(*m, 0), before); // +1, then a batch of 31 back to the buddy lists
  EXPECT_TRUE(kmm::validate(*m).empty());
}

// Lowering min_free_kbytes lowers low and so high; lists already above the new high are trimmed
// below it at once (the kernel waits for the next free), and the trimmed pages are free again.
TEST(Pcp, LoweringHighTrimsListsBelowIt) {
  auto m = Machine::boot("mem=1G nr_cpus=2");
  kmm::MachineScope scope(*m);
  const long managed = zoneinfo(*m)["Normal"].managed;
  std::vector<struct page*> pages;
  for (int i = 0; i < 400; i++) pages.push_back(alloc_pages(GFP_KERNEL, 0));
  for (struct page* p : pages) __free_pages(p, 0);
  ASSERT_GT(pcp_count(*m, 0), 200);
  ASSERT_EQ(m->proc_write("/proc/sys/vm/min_free_kbytes", "128"), 0);
  const auto zi = zoneinfo(*m)["Normal"];
  EXPECT_EQ(zi.pcp_high, 4 * 31); // low / 2 CPUs is now below four batches
  EXPECT_LT(pcp_count(*m, 0), zi.pcp_high);
  EXPECT_EQ(zi.free + pcp_count(*m, 0), managed);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Pcp, HigherOrdersRefillFewerBlocksAndCostlyOrdersBypass) {
  auto m = Machine::boot("mem=1G nr_cpus=2");
  kmm::MachineScope scope(*m);
  const long free0 = zoneinfo(*m)["Normal"].free;
  struct page* p3 = alloc_pages(GFP_KERNEL, 3);
  // batch >> order == 3 blocks of 8 pages: one handed out, two (16 pages) on the list.
  EXPECT_EQ(pcp_count(*m, 0), 16);
  EXPECT_EQ(zoneinfo(*m)["Normal"].free, free0 - 24);
  struct page* p4 = alloc_pages(GFP_KERNEL, 4); // above PAGE_ALLOC_COSTLY_ORDER: straight buddy
  EXPECT_EQ(pcp_count(*m, 0), 16);
  EXPECT_EQ(zoneinfo(*m)["Normal"].free, free0 - 24 - 16);
  __free_pages(p4, 4);
  EXPECT_EQ(pcp_count(*m, 0), 16);
  __free_pages(p3, 3);
  EXPECT_EQ(pcp_count(*m, 0), 24);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Pcp, EachCpuFreesToItsOwnList) {
  auto m = Machine::boot("mem=1G nr_cpus=2");
  kmm::MachineScope scope(*m);
  struct page* p = alloc_pages(GFP_KERNEL, 0);
  {
    kmm::CpuScope cpu1(*m, 1);
    __free_pages(p, 0);
  }
  EXPECT_EQ(pcp_count(*m, 0), 30);
  EXPECT_EQ(pcp_count(*m, 1), 1);
  EXPECT_NE(m->proc_read("/proc/zoneinfo").find("    cpu: 1\n              count: 1\n"),
            std::string::npos);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Pcp, DisabledByBootParameter) {
  auto m = Machine::boot("mem=1G nr_cpus=2 kmm.pcp=0");
  kmm::MachineScope scope(*m);
  const long free0 = zoneinfo(*m)["Normal"].free;
  struct page* p = alloc_pages(GFP_KERNEL, 0);
  EXPECT_EQ(zoneinfo(*m)["Normal"].free, free0 - 1);
  __free_pages(p, 0);
  EXPECT_EQ(zoneinfo(*m)["Normal"].free, free0);
  EXPECT_EQ(pcp_count(*m, 0), 0);
}

TEST(Pcp, DirectReclaimDrainsOtherCpusLists) {
  // Everything allocated; CPU 1 then frees five Normal pages onto its list. An atomic request
  // cannot use them (it never drains); a blocking one drains all CPUs' lists after reclaim.
  auto m = Machine::boot("mem=4M nr_cpus=2");
  kmm::MachineScope scope(*m);
  auto pages = kmm::test::drain_machine();
  ASSERT_EQ(pages.size(), 1023u);
  EXPECT_EQ(kmm::test::proc_value(*m, "/proc/meminfo", "MemFree"), 0);
  {
    kmm::CpuScope cpu1(*m, 1);
    int n = 0;
    for (auto it = pages.begin(); it != pages.end() && n < 5;)
      if (page_to_pfn(*it) >= 512) {
        __free_pages(*it, 0);
        it = pages.erase(it);
        n++;
      } else {
        ++it;
      }
  }
  EXPECT_EQ(pcp_count(*m, 1), 5);
  EXPECT_EQ(alloc_pages(GFP_ATOMIC | __GFP_MEMALLOC | __GFP_NOWARN, 0), nullptr);
  EXPECT_EQ(pcp_count(*m, 1), 5);
  struct page* p = alloc_pages(GFP_KERNEL | __GFP_MEMALLOC | __GFP_NORETRY, 0);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(pcp_count(*m, 1), 0);
  EXPECT_GE(page_to_pfn(p), 512u);
  EXPECT_TRUE(m->reports().empty());
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(PcpThreads, CpusAllocateAndFreeConcurrently) {
  constexpr unsigned kCpus = 4;
  auto m = Machine::boot("mem=64M nr_cpus=4");
  const std::string boot = m->proc_read("/proc/buddyinfo");
  std::vector<std::thread> threads;
  for (unsigned cpu = 0; cpu < kCpus; cpu++)
    threads.emplace_back([&m, cpu] {
      kmm::CpuScope scope(*m, cpu);
      std::vector<std::pair<struct page*, unsigned>> held;
      uint32_t x = 12345 + cpu; // xorshift: a fixed sequence per CPU
      for (int i = 0; i < 3000; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        if (held.size() < 64 && (x & 1)) {
          static const unsigned orders[8] = {0, 0, 0, 1, 2, 3, 0, 4};
          unsigned order = orders[(x >> 1) & 7];
          gfp_t gfp = (x & 0x100) ? GFP_HIGHUSER_MOVABLE : GFP_KERNEL;
          if (struct page* p = alloc_pages(gfp | __GFP_NOWARN, order)) {
            static_cast<uint8_t*>(page_address(p))[0] = static_cast<uint8_t>(cpu);
            held.emplace_back(p, order);
          }
        } else if (!held.empty()) {
          auto [p, order] = held[(x >> 4) % held.size()];
          EXPECT_EQ(static_cast<uint8_t*>(page_address(p))[0], cpu);
          __free_pages(p, order);
          held.erase(std::find(held.begin(), held.end(), std::pair{p, order}));
        }
      }
      for (auto [p, order] : held) __free_pages(p, order);
    });
  for (auto& t : threads) t.join();
  EXPECT_TRUE(kmm::validate(*m).empty());
  EXPECT_TRUE(m->reports().empty());
  EXPECT_EQ(kmm::test::proc_value(*m, "/proc/vmstat", "pgfree"),
            kmm::test::proc_value(*m, "/proc/vmstat", "pgalloc_normal") +
                kmm::test::proc_value(*m, "/proc/vmstat", "pgalloc_dma32") +
                kmm::test::proc_value(*m, "/proc/vmstat", "pgalloc_dma"));
  kmm::drain_all_pages(m->kernel(), nullptr);
  EXPECT_EQ(m->proc_read("/proc/buddyinfo"), boot);
}
