// Tests for allocator/src/validate.cpp: kmm::validate() is empty on clean machines of every
// shape, and names each planted corruption (a struct page poked through the internal header,
// a counter off by one, a list broken or left uncoalesced) with its own message.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "buddy.h"
#include "bug.h"
#include "kernel.h"
#include "kmalloc.h"
#include "kmm/linux.h"
#include "kmm/validate.h"
#include "page_test_util.h"
#include "pfn_list.h"
#include "test_util.h"

using kmm::test::dump;
using kmm::test::has;

using kmm::Machine;

TEST(Validate, CleanMachinesHaveNoErrors) {
  for (const char* cmdline : {"", "mem=4M", "mem=4M nr_cpus=1 kmm.pcp=0", "mem=64M nr_cpus=8",
                              "mem=64M movablecore=16M", "mem=8M page_poison=1"}) {
    SCOPED_TRACE(cmdline);
    auto m = Machine::boot(cmdline);
    EXPECT_EQ(dump(kmm::validate(*m)), "");
    kmm::MachineScope scope(*m);
    std::vector<std::pair<struct page*, unsigned>> held;
    for (unsigned o = 0; o <= 10; o++)
      for (gfp_t g : {GFP_KERNEL, GFP_HIGHUSER_MOVABLE, GFP_KERNEL | __GFP_COMP | __GFP_RECLAIMABLE,
                      GFP_ATOMIC | GFP_DMA32})
        if (struct page* p = alloc_pages(g | __GFP_NOWARN, o)) held.emplace_back(p, o);
    EXPECT_EQ(dump(kmm::validate(*m)), "");
    for (size_t i = 0; i < held.size(); i += 2) __free_pages(held[i].first, held[i].second);
    EXPECT_EQ(dump(kmm::validate(*m)), "");
    for (size_t i = 1; i < held.size(); i += 2) __free_pages(held[i].first, held[i].second);
    EXPECT_EQ(dump(kmm::validate(*m)), "");
    EXPECT_TRUE(m->reports().empty());
  }
}

// mem=4M with no pcp: Normal is one free order-9 block at pfn 0x200 on the Movable list.
class ValidatePlanted : public ::testing::Test {
protected:
  void SetUp() override { m = Machine::boot("mem=4M nr_cpus=1 kmm.pcp=0"); }
  kmm::Kernel& k() { return m->kernel(); }
  kmm::zone& normal() { return k().zones[kmm::ZONE_NORMAL]; }
  std::unique_ptr<Machine> m;
};

TEST_F(ValidatePlanted, FreeBlockHeadWithoutTheBuddyType) {
  k().mem.mem_map[512].page_type = 0;
  auto e = kmm::validate(*m);
  EXPECT_TRUE(has(e, "buddy: zone Normal: pfn 0x200 on the order-9 Movable list is not a free "
                     "block of that order/type"))
      << dump(e);
  EXPECT_TRUE(has(e, "pages: pfn 0x200 is in no state (flags 0x0 page_type 0x0)")) << dump(e);
}

TEST_F(ValidatePlanted, FreeBlockHeadAlsoAllocated) {
  k().mem.mem_map[512].flags = kmm::PG_alloc;
  auto e = kmm::validate(*m);
  EXPECT_TRUE(has(e, "pages: pfn 0x200 is in more than one state (flags 0x4 page_type 0xf0)"))
      << dump(e);
}

TEST_F(ValidatePlanted, BuddyTypeOnATailPage) {
  k().mem.mem_map[513].page_type = kmm::PGTY_buddy;
  auto e = kmm::validate(*m);
  EXPECT_TRUE(has(e, "pages: pfn 0x201 inside the order-9 block at 0x200 has flags 0x0 "
                     "page_type 0xf0"))
      << dump(e);
}

TEST_F(ValidatePlanted, FreeBlockHeadWithWrongOrder) {
  k().mem.mem_map[512].private_ = 8;
  auto e = kmm::validate(*m);
  EXPECT_TRUE(has(e, "buddy: zone Normal: pfn 0x200 on the order-9 Movable list is not a free "
                     "block of that order/type"))
      << dump(e);
}

TEST_F(ValidatePlanted, BlockCountOffByOne) {
  normal().free_area_[9].nr_free++;
  normal().free_area_[9].nr_free_mt[kmm::MIGRATE_MOVABLE]++;
  auto e = kmm::validate(*m);
  EXPECT_EQ(e, (std::vector<std::string>{
                   "buddy: zone Normal: order 9 Movable list holds 1 blocks, counter says 2",
                   "buddy: zone Normal: order 9 holds 1 blocks, nr_free says 2"}));
}

TEST_F(ValidatePlanted, FreePageCounterOffByOne) {
  normal().vm_stat[kmm::NR_FREE_PAGES]++;
  auto e = kmm::validate(*m);
  EXPECT_EQ(e, (std::vector<std::string>{
                   "buddy: zone Normal: free lists hold 512 pages, NR_FREE_PAGES says 513"}));
}

TEST_F(ValidatePlanted, TwoFreeBuddiesNotCoalesced) {
  // Replace the order-9 block by its two order-8 halves without merging them.
  {
    std::lock_guard<std::mutex> g(normal().lock);
    kmm::del_page_from_free_list(k(), normal(), 512, 9);
    kmm::add_to_free_list(k(), normal(), 512, 8, kmm::MIGRATE_MOVABLE, false);
    kmm::add_to_free_list(k(), normal(), 768, 8, kmm::MIGRATE_MOVABLE, false);
  }
  auto e = kmm::validate(*m);
  EXPECT_TRUE(has(e, "buddy: zone Normal: pfn 0x200 and its buddy 0x300 are both free at order 8 "
                     "(not coalesced)"))
      << dump(e);
}

TEST_F(ValidatePlanted, MisalignedBlock) {
  {
    std::lock_guard<std::mutex> g(normal().lock);
    kmm::del_page_from_free_list(k(), normal(), 512, 9);
    kmm::add_to_free_list(k(), normal(), 513, 9, kmm::MIGRATE_MOVABLE, false);
  }
  auto e = kmm::validate(*m);
  EXPECT_TRUE(has(e, "buddy: zone Normal: pfn 0x201 is not aligned to order 9")) << dump(e);
  EXPECT_TRUE(has(e, "buddy: zone Normal: pfn 0x201 order 9 lies outside the zone")) << dump(e);
}

TEST_F(ValidatePlanted, CyclicFreeList) {
  {
    kmm::MachineScope scope(*m);
    // Two order-0 blocks on one list: 513 and 515 after allocating 512 and 514.
    struct page* a = alloc_pages(GFP_KERNEL, 0);
    struct page* b = alloc_pages(GFP_KERNEL, 0);
    struct page* c = alloc_pages(GFP_KERNEL, 0);
    __free_pages(b, 0);
    (void)a, (void)c;
  }
  kmm::pfn_list& l = normal().free_area_[0].free_list[kmm::MIGRATE_UNMOVABLE];
  ASSERT_NE(l.head, l.tail);
  k().mem.mem_map[l.tail].lru_next = l.head; // tail -> head
  auto e = kmm::validate(*m);
  EXPECT_TRUE(has(e, "buddy: zone Normal: order 0 Unmovable list is cyclic")) << dump(e);
}

TEST_F(ValidatePlanted, AllocatedPageWithoutReferenceOrOwner) {
  kmm::MachineScope scope(*m);
  struct page* p = alloc_pages(GFP_KERNEL, 0);
  p->_refcount = 0;
  p->owner = kmm::PageOwner::None;
  auto e = kmm::validate(*m);
  EXPECT_TRUE(has(e, "pages: allocated pfn 0x200 has refcount 0")) << dump(e);
  EXPECT_TRUE(has(e, "pages: allocated pfn 0x200 has no owner")) << dump(e);
}

TEST_F(ValidatePlanted, PageInTwoStatesOrNone) {
  kmm::MachineScope scope(*m);
  struct page* p = alloc_pages(GFP_KERNEL, 0);
  p->flags |= kmm::PG_reserved;
  struct page* q = alloc_pages(GFP_KERNEL, 0);
  q->flags = 0;
  auto e = kmm::validate(*m);
  EXPECT_TRUE(has(e, "pages: pfn 0x200 is in more than one state (flags 0xc page_type 0x0)"))
      << dump(e);
  EXPECT_TRUE(has(e, "pages: pfn 0x201 is in no state (flags 0x0 page_type 0x0)")) << dump(e);
}

TEST_F(ValidatePlanted, DirtyTailInsideABlock) {
  k().mem.mem_map[600].flags = kmm::PG_lru;
  auto e = kmm::validate(*m);
  EXPECT_TRUE(has(e, "pages: pfn 0x258 inside the order-9 block at 0x200 has flags 0x80"))
      << dump(e);
  k().mem.mem_map[600].flags = 0; // and the block's last tail
  k().mem.mem_map[0x3ff].flags = kmm::PG_lru;
  e = kmm::validate(*m);
  EXPECT_TRUE(has(e, "pages: pfn 0x3ff inside the order-9 block at 0x200 has flags 0x80"))
      << dump(e);
}

// The tail walk checks eight tails at a time, then the rest one by one: a compound block's tail
// pointing elsewhere, and one without PG_tail, are found past the first eight.
TEST_F(ValidatePlanted, CompoundTailWithAnotherHead) {
  kmm::MachineScope scope(*m);
  struct page* p = alloc_pages(GFP_KERNEL | __GFP_COMP, 4);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(kmm::validate(*m).empty());
  const unsigned long pfn = page_to_pfn(p);
  p[15].compound_head = uint32_t(pfn + 1);
  auto e = kmm::validate(*m);
  EXPECT_TRUE(has(e, kmm::strprintf("pages: pfn 0x%lx inside the order-4 block at 0x%lx has flags "
                                    "0x%x",
                                    pfn + 15, pfn, kmm::PG_tail)))
      << dump(e);
  p[15].compound_head = uint32_t(pfn);
  p[9].flags = 0;
  e = kmm::validate(*m);
  EXPECT_TRUE(has(e, kmm::strprintf("pages: pfn 0x%lx inside the order-4 block at 0x%lx has flags "
                                    "0x0",
                                    pfn + 9, pfn)))
      << dump(e);
}

TEST_F(ValidatePlanted, FreePageStillOwned) {
  k().mem.mem_map[512].owner = kmm::PageOwner::Slab;
  auto e = kmm::validate(*m);
  EXPECT_EQ(e, (std::vector<std::string>{"pages: free pfn 0x200 still has owner slab"}));
}

TEST_F(ValidatePlanted, WatermarksOutOfOrder) {
  normal()._watermark[kmm::WMARK_LOW] = normal()._watermark[kmm::WMARK_HIGH] + 1;
  auto e = kmm::validate(*m);
  const auto& w = normal()._watermark;
  EXPECT_EQ(
      e, (std::vector<std::string>{"watermark: zone Normal: min " + std::to_string(w[0]) + " low " +
                                   std::to_string(w[1]) + " high " + std::to_string(w[2]) +
                                   " promo " + std::to_string(w[3]) + " out of order"}));
}

TEST(ValidatePcp, CountMismatchAndForeignPages) {
  auto m = Machine::boot("mem=1G nr_cpus=2");
  kmm::MachineScope scope(*m);
  struct page* p = alloc_pages(GFP_KERNEL, 0);
  __free_pages(p, 0);
  kmm::per_cpu_pages& pcp = m->kernel().zones[kmm::ZONE_NORMAL].pcp[0];
  ASSERT_EQ(pcp.count, 31);
  pcp.count = 32;
  auto e = kmm::validate(*m);
  EXPECT_EQ(
      e, (std::vector<std::string>{"pcp: zone Normal cpu 0: lists hold 31 pages, count says 32"}));
  pcp.count = 31;
  m->kernel().mem.mem_map[pcp.lists[0].head].private_ = 1;
  e = kmm::validate(*m);
  EXPECT_FALSE(e.empty());
  EXPECT_TRUE(e[0].rfind("pcp: zone Normal cpu 0: pfn 0x", 0) == 0 &&
              e[0].find(" on the order-0 list is not a pcp block of that order") !=
                  std::string::npos)
      << dump(e);
}

TEST(ValidatePcp, CycleOutsideTheZoneAndAboveHigh) {
  auto m = Machine::boot("mem=1G nr_cpus=2");
  kmm::MachineScope scope(*m);
  __free_pages(alloc_pages(GFP_KERNEL, 0), 0); // 31 pages on cpu 0's Normal order-0 list
  kmm::Kernel& k = m->kernel();
  kmm::per_cpu_pages& pcp = k.zones[kmm::ZONE_NORMAL].pcp[0];
  ASSERT_EQ(pcp.count, 31);
  unsigned idx = kmm::order_to_pindex(kmm::MIGRATE_UNMOVABLE, 0);
  ASSERT_NE(pcp.lists[idx].head, kmm::PFN_NIL);

  // batch 1: one block per refill, at most 8 pages (order 3), so 12 lists allow 96 over high.
  int high = pcp.high, batch = pcp.batch;
  pcp.batch = 1;
  pcp.high = 1;
  EXPECT_TRUE(kmm::validate(*m).empty());
  pcp.count = 97; // the lists hold 31: the count mismatch and the high bound both fire
  EXPECT_EQ(kmm::validate(*m),
            (std::vector<std::string>{"pcp: zone Normal cpu 0: lists hold 31 pages, count says 97",
                                      "pcp: zone Normal cpu 0: count 97 past high 1 plus the "
                                      "refill slack 96"}));
  pcp.count = 31;
  pcp.high = high;
  pcp.batch = batch;

  // The same list seen from DMA32's cpu 0 as well: every page is outside that zone.
  kmm::per_cpu_pages& dma32 = k.zones[kmm::ZONE_DMA32].pcp[0];
  ASSERT_EQ(dma32.lists[idx].head, kmm::PFN_NIL);
  dma32.lists[idx] = pcp.lists[idx];
  dma32.count = 31;
  auto e = kmm::validate(*m);
  EXPECT_TRUE(has(e, kmm::strprintf("pcp: zone DMA32 cpu 0: pfn 0x%x is outside the zone",
                                    pcp.lists[idx].head)))
      << dump(e);
  dma32.lists[idx] = kmm::pfn_list{};
  dma32.count = 0;

  // The last page points back at the first.
  uint32_t tail = pcp.lists[idx].tail;
  k.mem.mem_map[tail].lru_next = pcp.lists[idx].head;
  e = kmm::validate(*m);
  EXPECT_TRUE(has(e, kmm::strprintf("pcp: zone Normal cpu 0 list %u is cyclic", idx))) << dump(e);
  k.mem.mem_map[tail].lru_next = kmm::PFN_NIL;
  EXPECT_EQ(dump(kmm::validate(*m)), "");
}

TEST(Validate, PageOwnerNames) {
  // The owner names validate() and the bad-page reports print.
  using kmm::PageOwner;
  const std::vector<std::pair<PageOwner, std::string>> names = {
      {PageOwner::None, "none"},
      {PageOwner::Kernel, "kernel"},
      {PageOwner::Slab, "slab"},
      {PageOwner::KmallocLarge, "kmalloc-large"},
      {PageOwner::Vmalloc, "vmalloc"},
      {PageOwner::Anon, "anon"},
      {PageOwner::PageCache, "pagecache"},
      {PageOwner::PageTable, "pagetable"},
      {PageOwner::Cma, "cma"},
      {PageOwner::Dma, "dma"},
      {PageOwner::Kfence, "kfence"}};
  for (auto& [owner, name] : names) EXPECT_EQ(kmm::page_owner_name(owner), name);
  EXPECT_STREQ(kmm::page_owner_name(static_cast<PageOwner>(200)), "?");
}

TEST_F(ValidatePlanted, FreeListTailNotTheLastEntry) {
  normal().free_area_[9].free_list[kmm::MIGRATE_MOVABLE].tail = 0x300;
  auto e = kmm::validate(*m);
  EXPECT_EQ(e,
            std::vector<std::string>{
                "buddy: zone Normal: order 9 Movable list tail is 0x300, last entry is 0x200"})
      << dump(e);
  normal().free_area_[9].free_list[kmm::MIGRATE_MOVABLE].tail = 0x200;
  EXPECT_EQ(dump(kmm::validate(*m)), "");
}

TEST(Validate, FreeCmaCounterOffByOne) {
  auto m = Machine::boot("mem=32M cma=8M nr_cpus=1 kmm.pcp=0");
  kmm::zone& normal = m->kernel().zones[kmm::ZONE_NORMAL];
  long cma = normal.vm_stat[kmm::NR_FREE_CMA_PAGES].load();
  ASSERT_EQ(cma, 2048);
  normal.vm_stat[kmm::NR_FREE_CMA_PAGES]++;
  auto e = kmm::validate(*m);
  EXPECT_TRUE(has(e, "buddy: zone Normal: CMA lists hold 2048 pages, NR_FREE_CMA_PAGES says 2049"))
      << dump(e);
  normal.vm_stat[kmm::NR_FREE_CMA_PAGES]--;
  EXPECT_EQ(dump(kmm::validate(*m)), "");
}

// The context counters: validate() names a CPU whose atomic_depth is not the sum of the three
// (the slab fast path reads only the sum), and one with a counter below zero.
TEST(Validate, CpuAtomicDepthIsTheSumOfTheContextCounters) {
  auto m = Machine::boot("mem=16M nr_cpus=2");
  {
    kmm::MachineScope scope(*m);
    spinlock_t lock;
    spin_lock_init(&lock);
    spin_lock_irq(&lock);
    preempt_disable();
    EXPECT_EQ(m->kernel().cpus[0].atomic_depth, 3);
    EXPECT_EQ(dump(kmm::validate(*m)), "");
    preempt_enable();
    spin_unlock_irq(&lock);
    kmm_run_in_irq([](void*) { EXPECT_EQ(kmm::current_kernel()->cpu().atomic_depth, 2); }, nullptr);
  }
  kmm::CpuState& c1 = m->kernel().cpus[1];
  EXPECT_EQ(c1.atomic_depth, 0);
  EXPECT_EQ(m->kernel().cpus[0].atomic_depth, 0);
  c1.preempt_count = 1; // changed without preempt_count_add()
  auto e = kmm::validate(*m);
  EXPECT_TRUE(has(e, "cpu 1: atomic_depth 0, but preempt_count 1 + irq_disable_depth 0 + in_irq 0"))
      << dump(e);
  c1.preempt_count = 0;
  c1.in_irq = -1;
  c1.atomic_depth = -1;
  e = kmm::validate(*m);
  EXPECT_TRUE(
      has(e, "cpu 1: atomic_depth -1, but preempt_count 0 + irq_disable_depth 0 + in_irq -1"))
      << dump(e);
  c1.in_irq = 0;
  c1.atomic_depth = 0;
  EXPECT_EQ(dump(kmm::validate(*m)), "");
  EXPECT_TRUE(m->reports().empty());
}

// The slab layer's walk over mem_map: a page marked as a slab must belong to a live cache and be
// on one of its lists or CPUs. (The walk steps over free blocks; a slab planted inside one is
// check_pages()'s flagged tail.)
TEST_F(ValidatePlanted, SlabPagesOfNoCacheOrOnNoList) {
  kmm::MachineScope scope(*m);
  struct page* p = alloc_pages(GFP_KERNEL, 0);
  ASSERT_TRUE(p);
  const unsigned long pfn = k().mem.page_to_pfn(p);
  const uint32_t flags = p->flags;
  p->flags |= kmm::PG_slab;
  p->slab.slab_cache = reinterpret_cast<kmem_cache*>(uintptr_t(0x1000));
  auto e = kmm::validate(*m);
  EXPECT_TRUE(has(e, kmm::strprintf("slub: pfn 0x%lx is a slab of no live cache", pfn))) << dump(e);
  p->slab.slab_cache = kmm::kmalloc_slab(k(), 64, GFP_KERNEL);
  p->slab.slab_cpu = 0;
  e = kmm::validate(*m);
  EXPECT_TRUE(
      has(e, kmm::strprintf("slub: pfn 0x%lx (cache kmalloc-64) is on no list and no cpu", pfn)))
      << dump(e);
  p->flags = flags;
  p->slab = {};
  EXPECT_EQ(dump(kmm::validate(*m)), "");
  __free_pages(p, 0);
}
