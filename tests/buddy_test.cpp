// Tests for allocator/src/buddy.cpp: the split (expand) and merge (__free_one_page) arithmetic
// on small machines, checked block by block through /proc/buddyinfo and struct page; maximal
// coalescing back to the boot state; real fragmentation; migratetype fallback and stealing.
//
// Most tests boot with kmm.pcp=0 so every free goes straight to the buddy lists and the counts
// are exact (pcp_test.cpp covers the per-CPU lists).
#include <gtest/gtest.h>

#include <algorithm>

#include "buddy.h"
#include "kernel.h"
#include "kmm/validate.h"
#include "page_test_util.h"

using kmm::Machine;
using kmm::test::buddyinfo;
using kmm::test::drain_machine;
using V = std::vector<long>;

namespace {

const char* const kBootBuddyinfo4M = "Node 0, zone      DMA      1      1      1      1      1     "
                                     " 1      0      0      0      0      0 \n"
                                     "Node 0, zone    DMA32      0      0      0      0      0     "
                                     " 0      1      1      1      0      0 \n"
                                     "Node 0, zone   Normal      0      0      0      0      0     "
                                     " 0      0      0      0      1      0 \n";

const struct page& page_rec(Machine& m, unsigned long pfn) { return m.kernel().mem.mem_map[pfn]; }

// The block at pfn is a free buddy block of exactly `order`.
bool is_free_block(Machine& m, unsigned long pfn, unsigned order) {
  const struct page& p = page_rec(m, pfn);
  return kmm::PageBuddy(p) && p.private_ == order;
}

} // namespace

TEST(Buddy, BootNeverMergesACmaPageblockWithAnotherType) {
  // mem=8M: Normal is pfns 0x400-0x7ff, one order-10 block; cma=2M is its upper pageblock.
  // Boot frees the CMA pageblock as a block of its own (found by WatermarkProp: it went onto the
  // Movable list inside the order-10 block, and an Unmovable request stole both pageblocks).
  auto m = Machine::boot("mem=8M nr_cpus=1 kmm.pcp=0 cma=2M");
  kmm::MachineScope scope(*m);
  EXPECT_TRUE(is_free_block(*m, 0x600, 9));
  EXPECT_FALSE(is_free_block(*m, 0x400, 10));
  struct page* p = alloc_pages(GFP_NOWAIT | __GFP_NOWARN, 4);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(m->kernel().mem.get_pageblock_migratetype(0x600), kmm::MIGRATE_CMA);
  auto errors = kmm::validate(*m);
  EXPECT_TRUE(errors.empty()) << errors[0];
  __free_pages(p, 4);
}

TEST(Buddy, BootBlocksAreTheLargestAlignedOnes) {
  // pfn 0 is reserved, so DMA [1,64) is 1 + 2 + 4 + 8 + 16 + 32; DMA32 [64,512) is 64+128+256.
  auto m = Machine::boot("mem=4M nr_cpus=1 kmm.pcp=0");
  EXPECT_EQ(m->proc_read("/proc/buddyinfo"), kBootBuddyinfo4M);
  for (auto [pfn, order] : {std::pair{1ul, 0u},
                            {2, 1},
                            {4, 2},
                            {8, 3},
                            {16, 4},
                            {32, 5},
                            {64, 6},
                            {128, 7},
                            {256, 8},
                            {512, 9}})
    EXPECT_TRUE(is_free_block(*m, pfn, order)) << "pfn " << pfn;
}

TEST(Buddy, SplitTakesTheLowestPartAndFreesUpperHalves) {
  auto m = Machine::boot("mem=4M nr_cpus=1 kmm.pcp=0");
  kmm::MachineScope scope(*m);
  // The first unmovable order-0 request steals Normal's movable order-9 block at 512 and splits
  // it: 512 is handed out, 513 (o0), 514 (o1), 516 (o2) ... 768 (o8) go back.
  struct page* a = alloc_pages(GFP_KERNEL, 0);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(page_to_pfn(a), 512u);
  EXPECT_EQ(buddyinfo(*m, "Normal"), (V{1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}));
  for (unsigned o = 0; o < 9; o++) EXPECT_TRUE(is_free_block(*m, 512 + (1ul << o), o));

  struct page* b = alloc_pages(GFP_KERNEL, 0); // the order-0 block 513
  EXPECT_EQ(page_to_pfn(b), 513u);
  EXPECT_EQ(buddyinfo(*m, "Normal"), (V{0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}));

  struct page* c = alloc_pages(GFP_KERNEL, 0); // splits the o1 at 514: 514 out, 515 free
  EXPECT_EQ(page_to_pfn(c), 514u);
  EXPECT_EQ(buddyinfo(*m, "Normal"), (V{1, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0}));
  EXPECT_TRUE(is_free_block(*m, 515, 0));

  // Free 513: its buddy 513 ^ 1 == 512 is allocated, so it stays an order-0 block.
  __free_pages(b, 0);
  EXPECT_EQ(buddyinfo(*m, "Normal"), (V{2, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0}));
  // Free 512: merges with 513 into the o1 at 512; 512 ^ 2 == 514 is allocated: stop.
  __free_pages(a, 0);
  EXPECT_EQ(buddyinfo(*m, "Normal"), (V{1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}));
  EXPECT_TRUE(is_free_block(*m, 512, 1));
  // Free 514: 514+515 -> o1, +512 -> o2 at 512, +516 -> o3 ... up to the order-9 block.
  __free_pages(c, 0);
  EXPECT_EQ(m->proc_read("/proc/buddyinfo"), kBootBuddyinfo4M);
  EXPECT_TRUE(is_free_block(*m, 512, 9));
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Buddy, MergesOnlyWithPfnXorOneShiftedByOrder) {
  auto m = Machine::boot("mem=4M nr_cpus=1 kmm.pcp=0");
  kmm::MachineScope scope(*m);
  struct page* p = alloc_pages(GFP_KERNEL, 3);
  ASSERT_NE(p, nullptr);
  const unsigned long B = page_to_pfn(p);
  ASSERT_EQ(B % 8, 0u);
  split_page(p, 3); // eight order-0 pages, each with its own reference
  const V before = buddyinfo(*m, "Normal");
  auto o0 = [&] { return buddyinfo(*m, "Normal")[0] - before[0]; };
  auto o1 = [&] { return buddyinfo(*m, "Normal")[1] - before[1]; };
  auto o2 = [&] { return buddyinfo(*m, "Normal")[2] - before[2]; };

  __free_pages(p + 1, 0); // buddy of B+1 at order 0 is (B+1) ^ 1 == B: allocated
  EXPECT_EQ(o0(), 1);
  EXPECT_TRUE(is_free_block(*m, B + 1, 0));
  __free_pages(p + 2, 0); // buddy (B+2) ^ 1 == B+3: allocated
  EXPECT_EQ(o0(), 2);
  __free_pages(p + 3, 0); // buddy B+2 is free: o1 at (B+3) & (B+2) == B+2; its buddy B: allocated
  EXPECT_EQ(o0(), 1);
  EXPECT_EQ(o1(), 1);
  EXPECT_TRUE(is_free_block(*m, B + 2, 1));
  EXPECT_EQ(page_rec(*m, B + 3).flags, 0u); // a merged-away head is a plain tail again
  __free_pages(p + 0, 0); // B + (B+1) -> o1 at B; B ^ 2 == B+2 is a free o1 -> o2 at B
  EXPECT_EQ(o0(), 0);
  EXPECT_EQ(o1(), 0);
  EXPECT_EQ(o2(), 1);
  EXPECT_TRUE(is_free_block(*m, B, 2));
  // B ^ 4 == B+4 is still allocated (pages 4..7): the o2 at B waits for it.
  for (int i = 4; i < 8; i++) __free_pages(p + i, 0);
  EXPECT_EQ(buddyinfo(*m, "Normal"), (V{0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0}));
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Buddy, FreeingEverythingCoalescesBackToTheBootState) {
  auto m = Machine::boot("mem=4M nr_cpus=1 kmm.pcp=0");
  kmm::MachineScope scope(*m);
  auto pages = drain_machine();
  ASSERT_EQ(pages.size(), 1023u); // every managed page: 63 + 448 + 512
  EXPECT_EQ(m->proc_read("/proc/buddyinfo"), "Node 0, zone      DMA      0      0      0      0    "
                                             "  0      0      0      0      0      0      0 \n"
                                             "Node 0, zone    DMA32      0      0      0      0    "
                                             "  0      0      0      0      0      0      0 \n"
                                             "Node 0, zone   Normal      0      0      0      0    "
                                             "  0      0      0      0      0      0      0 \n");
  // Free in a scrambled but fixed order (stride 7 over the array visits every page once).
  for (size_t i = 0, j = 0; i < pages.size(); i++, j = (j + 7) % pages.size())
    __free_pages(pages[j], 0);
  EXPECT_EQ(m->proc_read("/proc/buddyinfo"), kBootBuddyinfo4M);
  EXPECT_TRUE(kmm::validate(*m).empty());
  EXPECT_TRUE(m->reports().empty());
}

TEST(Buddy, HighOrderFailsWhileMostMemoryIsFreeInSmallBlocks) {
  // mem=8M: DMA [0,128), DMA32 [128,1024), Normal [1024,2048), 2047 managed pages.
  auto m = Machine::boot("mem=8M nr_cpus=1 kmm.pcp=0");
  kmm::MachineScope scope(*m);
  auto pages = drain_machine();
  ASSERT_EQ(pages.size(), 2047u);
  // Keep every pfn that is a multiple of 4 (511 pages) and free the rest: each group of four
  // becomes a free o0 at 4k+1 (its buddy 4k is held) and a free o1 at 4k+2 (its buddy 4k too).
  std::vector<struct page*> held;
  for (struct page* p : pages) {
    if (page_to_pfn(p) % 4 == 0) held.push_back(p);
    else __free_pages(p, 0);
  }
  ASSERT_EQ(held.size(), 511u);
  EXPECT_EQ(buddyinfo(*m, "DMA"), (V{32, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(buddyinfo(*m, "DMA32"), (V{224, 224, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(buddyinfo(*m, "Normal"), (V{256, 256, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  // 1536 of 2047 pages (75%) are free, none in a block above order 1.
  EXPECT_EQ(kmm::test::proc_value(*m, "/proc/meminfo", "MemFree"), 1536 * 4);

  m->clear_reports();
  EXPECT_EQ(alloc_pages(GFP_KERNEL, 9), nullptr);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title,
            "kmm: page allocation failure: order:9, mode:0xcc0(GFP_KERNEL), nodemask=(null)");
  EXPECT_EQ(alloc_pages(GFP_KERNEL | __GFP_NOWARN, 9), nullptr);
  EXPECT_EQ(m->reports().size(), 1u); // __GFP_NOWARN: silent

  // Free the 128 held pages of Normal's first pageblock [1024,1536): it coalesces to order 9.
  for (struct page* p : held)
    if (page_to_pfn(p) >= 1024 && page_to_pfn(p) < 1536) __free_pages(p, 0);
  EXPECT_EQ(buddyinfo(*m, "Normal"), (V{128, 128, 0, 0, 0, 0, 0, 0, 0, 1, 0}));
  struct page* big = alloc_pages(GFP_KERNEL, 9);
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(page_to_pfn(big), 1024u);
  EXPECT_EQ(m->reports().size(), 1u);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Buddy, UnmovableRequestStealsAWholeMovablePageblock) {
  auto m = Machine::boot("mem=4M nr_cpus=1 kmm.pcp=0");
  kmm::MachineScope scope(*m);
  // Every pageblock starts Movable. Normal has one pageblock [512,1024).
  auto blocks = [&](const std::string& zone) {
    for (auto& row : kmm::test::proc_rows(*m, "/proc/pagetypeinfo"))
      if (row.size() == 10 && row[0] == "Node" && row[3] == zone)
        return V{std::stol(row[4]), std::stol(row[5]), std::stol(row[6]),
                 std::stol(row[7]), std::stol(row[8]), std::stol(row[9])};
    return V{};
  };
  EXPECT_EQ(blocks("Normal"), (V{0, 1, 0, 0, 0, 0}));
  struct page* p = alloc_pages(GFP_KERNEL, 0);
  ASSERT_NE(p, nullptr);
  // The order-9 fallback block is the whole pageblock: its type changes to Unmovable and the
  // split-off remainder sits on the Unmovable lists.
  EXPECT_EQ(blocks("Normal"), (V{1, 0, 0, 0, 0, 0}));
  const std::string info = m->proc_read("/proc/pagetypeinfo");
  EXPECT_NE(
      info.find("Node    0, zone   Normal, type    Unmovable      1      1      1      1      1"
                "      1      1      1      1      0      0 \n"),
      std::string::npos)
      << info;
  EXPECT_NE(
      info.find("Node    0, zone   Normal, type      Movable      0      0      0      0      0"
                "      0      0      0      0      0      0 \n"),
      std::string::npos)
      << info;

  // A movable request now finds no movable memory in Normal and no whole pageblock to steal
  // there (ALLOC_NOFRAGMENT): it goes to DMA32 before it would mix a pageblock.
  struct page* mv = alloc_pages(GFP_HIGHUSER_MOVABLE, 0);
  ASSERT_NE(mv, nullptr);
  EXPECT_EQ(page_to_pfn(mv), 64u);
  EXPECT_EQ(blocks("Normal"), (V{1, 0, 0, 0, 0, 0}));
  __free_pages(mv, 0);
  __free_pages(p, 0);
  // Freed back into an Unmovable pageblock, the block lands on the Unmovable list.
  EXPECT_EQ(kmm::test::buddyinfo(*m, "Normal"), (V{0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0}));
  EXPECT_NE(m->proc_read("/proc/pagetypeinfo")
                .find("Node    0, zone   Normal, type    Unmovable      0      0      0      0"
                      "      0      0      0      0      0      1      0 \n"),
            std::string::npos);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

// Found by BuddyProp.FallbackOrder: on mem=4M, DMA is pfns [0,64) and DMA32 [64,512), so
// pageblock [0,512) straddles the boundary. Moving "its" free blocks from DMA32 must be refused
// (prep_move_freepages_block()); clipping the start to 64 and keeping the length walked on
// into pageblock [512,1024) and moved Normal's free blocks as well.
TEST(Buddy, PageblockStraddlingAZoneBoundaryIsNeverMovedWhole) {
  auto m = Machine::boot("mem=4M nr_cpus=1 kmm.pcp=0");
  kmm::MachineScope scope(*m);
  kmm::Kernel& k = m->kernel();
  kmm::zone& dma32 = k.zones[kmm::ZONE_DMA32];
  ASSERT_EQ(dma32.zone_start_pfn, 64u);
  EXPECT_FALSE(kmm::pageblock_within_zone(dma32, 64));
  EXPECT_TRUE(kmm::pageblock_within_zone(k.zones[kmm::ZONE_NORMAL], 512));
  const std::string before = m->proc_read("/proc/pagetypeinfo");
  {
    std::lock_guard<std::mutex> g(dma32.lock);
    EXPECT_EQ(kmm::move_freepages_block(k, dma32, 64, kmm::MIGRATE_UNMOVABLE), -1);
  }
  EXPECT_EQ(m->proc_read("/proc/pagetypeinfo"), before);
  // A whole pageblock inside its zone moves: Normal's [512,1024) is one free order-9 block.
  kmm::zone& normal = k.zones[kmm::ZONE_NORMAL];
  {
    std::lock_guard<std::mutex> g(normal.lock);
    EXPECT_EQ(kmm::move_freepages_block(k, normal, 512, kmm::MIGRATE_UNMOVABLE), 512);
  }
  EXPECT_EQ(k.mem.mem_map[512].list_mt, kmm::MIGRATE_UNMOVABLE);
}

TEST(Buddy, ReclaimableFallsBackToUnmovableFirst) {
  // fallbacks[RECLAIMABLE] = {UNMOVABLE, MOVABLE}: with an Unmovable pageblock present, a
  // reclaimable request takes it rather than a Movable one.
  auto m = Machine::boot("mem=8M nr_cpus=1 kmm.pcp=0");
  kmm::MachineScope scope(*m);
  // Normal [1024,2048) is one order-10 block spanning two Movable pageblocks. The first
  // unmovable order-0 request steals the whole order-10 block: both pageblocks turn Unmovable.
  struct page* u = alloc_pages(GFP_KERNEL, 0);
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(page_to_pfn(u), 1024u);
  struct page* r = alloc_pages(GFP_KERNEL | __GFP_RECLAIMABLE, 0);
  ASSERT_NE(r, nullptr);
  // The reclaimable request stole the largest Unmovable block, the order-9 at 1536, and with it
  // that pageblock.
  EXPECT_EQ(page_to_pfn(r), 1536u);
  EXPECT_EQ(m->kernel().mem.get_pageblock_migratetype(1024), kmm::MIGRATE_UNMOVABLE);
  EXPECT_EQ(m->kernel().mem.get_pageblock_migratetype(1536), kmm::MIGRATE_RECLAIMABLE);
  __free_pages(r, 0);
  __free_pages(u, 0);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Buddy, UnmovableFallsBackToReclaimableBeforeMovable) {
  // fallbacks[UNMOVABLE] = {RECLAIMABLE, MOVABLE}: offered a Reclaimable and a Movable pageblock
  // of the same order (and no Unmovable block), an unmovable request steals the Reclaimable one.
  // Whole pageblocks (order 9), so that ALLOC_NOFRAGMENT does not send the request to DMA32.
  auto m = Machine::boot("mem=16M nr_cpus=1 kmm.pcp=0");
  kmm::MachineScope scope(*m);
  ASSERT_EQ(buddyinfo(*m, "Normal"), (V{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}));
  // A movable order-9 request splits one Movable order-10 block: its upper half stays Movable.
  struct page* mov = alloc_pages(GFP_HIGHUSER_MOVABLE, 9);
  ASSERT_NE(mov, nullptr);
  const unsigned long movable_half = page_to_pfn(mov) + 512;
  // A reclaimable order-9 request steals the other order-10 block whole (both pageblocks turn
  // Reclaimable): its upper half stays free as a Reclaimable order-9 block.
  struct page* rec = alloc_pages(GFP_KERNEL | __GFP_RECLAIMABLE, 9);
  ASSERT_NE(rec, nullptr);
  const unsigned long reclaimable_half = page_to_pfn(rec) + 512;
  ASSERT_TRUE(is_free_block(*m, movable_half, 9));
  ASSERT_TRUE(is_free_block(*m, reclaimable_half, 9));
  ASSERT_EQ(m->kernel().mem.get_pageblock_migratetype(reclaimable_half), kmm::MIGRATE_RECLAIMABLE);
  ASSERT_EQ(m->kernel().mem.get_pageblock_migratetype(movable_half), kmm::MIGRATE_MOVABLE);
  // The unmovable request takes the Reclaimable block; the Movable one is untouched.
  struct page* u = alloc_pages(GFP_KERNEL, 0);
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(page_to_pfn(u), reclaimable_half);
  EXPECT_TRUE(is_free_block(*m, movable_half, 9));
  __free_pages(u, 0);
  __free_pages(rec, 9);
  __free_pages(mov, 9);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Buddy, PageblocksOfDifferentNonMergeableTypesDoNotMerge) {
  // At order >= pageblock_order, a HighAtomic pageblock does not merge with its Movable buddy.
  auto m = Machine::boot("mem=8M nr_cpus=1 kmm.pcp=0");
  kmm::Kernel& k = m->kernel();
  kmm::zone& z = k.zones[kmm::ZONE_NORMAL];
  {
    std::lock_guard<std::mutex> g(z.lock);
    kmm::del_page_from_free_list(k, z, 1024, 10);
    k.mem.set_pageblock_migratetype(1536, kmm::MIGRATE_HIGHATOMIC);
    kmm::__free_one_page(k, z, 1024, 9, kmm::MIGRATE_MOVABLE);
    kmm::__free_one_page(k, z, 1536, 9, kmm::MIGRATE_HIGHATOMIC);
  }
  EXPECT_EQ(buddyinfo(*m, "Normal"), (V{0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0}));
  EXPECT_TRUE(kmm::validate(*m).empty());
  {
    // Both Movable again: now they merge to order 10.
    std::lock_guard<std::mutex> g(z.lock);
    kmm::del_page_from_free_list(k, z, 1536, 9);
    k.mem.set_pageblock_migratetype(1536, kmm::MIGRATE_MOVABLE);
    kmm::__free_one_page(k, z, 1536, 9, kmm::MIGRATE_MOVABLE);
  }
  EXPECT_EQ(buddyinfo(*m, "Normal"), (V{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}));
  EXPECT_TRUE(kmm::validate(*m).empty());
}
