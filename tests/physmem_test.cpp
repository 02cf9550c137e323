// Tests for allocator/src/physmem.cpp: the zone layout for every size of mem= (scaled below
// 4 GiB, PC-like above), movablecore, the reserved first page, and the direct map: real shared
// memory whose offsets are physical addresses.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>

#include "kernel.h"
#include "page_test_util.h"

using kmm::Machine;

namespace {

struct Span {
  unsigned long start, end, managed;
  bool operator==(const Span&) const = default;
};

std::vector<Span> zones(Machine& m) {
  std::vector<Span> v;
  for (auto& z : m.kernel().zones) v.push_back({z.zone_start_pfn, z.end_pfn(), z.managed_pages});
  return v;
}

} // namespace

TEST(Physmem, ScaledZonesBelowFourGigabytes) {
  // DMA is mem/16 (at most 16 MiB), DMA32 ends at mem/2, both on 64-page multiples.
  EXPECT_EQ(zones(*Machine::boot("mem=4M")),
            (std::vector<Span>{{0, 64, 63}, {64, 512, 448}, {512, 1024, 512}, {1024, 1024, 0}}));
  EXPECT_EQ(zones(*Machine::boot("mem=5M")), // 1280 pfns: 80 -> 64, 640
            (std::vector<Span>{{0, 64, 63}, {64, 640, 576}, {640, 1280, 640}, {1280, 1280, 0}}));
  EXPECT_EQ(zones(*Machine::boot("mem=1G")),
            (std::vector<Span>{{0, 4096, 4095}, {4096, 131072, 126976}, {131072, 262144, 131072},
                               {262144, 262144, 0}}));
  EXPECT_EQ(zones(*Machine::boot("mem=4G"))[1], (Span{4096, 524288, 520192}));
}

TEST(Physmem, PcLayoutAboveFourGigabytes) {
  auto m = Machine::boot("mem=6G nr_cpus=1");
  EXPECT_EQ(zones(*m), (std::vector<Span>{{0, 4096, 4095},
                                          {4096, 1048576, 1044480},
                                          {1048576, 1572864, 524288},
                                          {1572864, 1572864, 0}}));
  EXPECT_NE(m->dmesg().find("  DMA32    [mem 0x0000000001000000-0x00000000ffffffff]\n"),
            std::string::npos);
  EXPECT_NE(m->dmesg().find("  Normal   [mem 0x0000000100000000-0x000000017fffffff]\n"),
            std::string::npos);
  EXPECT_NE(m->dmesg().find("  Movable  empty\n"), std::string::npos);
}

TEST(Physmem, MovablecoreTakesTheTopInPageblocks) {
  // 3M rounds up to two 2 MiB pageblocks (1024 pages) off the top of Normal.
  auto m = Machine::boot("mem=64M movablecore=3M");
  EXPECT_EQ(zones(*m)[2], (Span{8192, 15360, 7168}));
  EXPECT_EQ(zones(*m)[3], (Span{15360, 16384, 1024}));
  // Never into DMA32: capped at the Normal zone.
  auto all = Machine::boot("mem=64M movablecore=60M");
  EXPECT_EQ(zones(*all)[2], (Span{8192, 8192, 0}));
  EXPECT_EQ(zones(*all)[3], (Span{8192, 16384, 8192}));
  kmm::MachineScope scope(*m);
  // GFP_HIGHUSER_MOVABLE may use ZONE_MOVABLE; GFP_KERNEL never does.
  struct page* mv = alloc_pages(GFP_HIGHUSER_MOVABLE, 0);
  EXPECT_GE(page_to_pfn(mv), 15360u);
  struct page* k = alloc_pages(GFP_KERNEL, 0);
  EXPECT_LT(page_to_pfn(k), 15360u);
}

TEST(Physmem, FirstPageIsReserved) {
  auto m = Machine::boot("mem=4M");
  EXPECT_EQ(m->kernel().mem.mem_map[0].flags, kmm::PG_reserved);
  EXPECT_NE(m->dmesg().find("Memory: 4092K/4096K available\n"), std::string::npos);
  EXPECT_NE(m->dmesg().find("Built 1 zonelists, mobility grouping on.  Total pages: 1023\n"),
            std::string::npos);
}

TEST(Physmem, DirectMapIsRealSharedMemory) {
  auto m = Machine::boot("mem=16M");
  kmm::PhysMem& mem = m->kernel().mem;
  EXPECT_EQ(mem.nr_pages, 4096u);
  EXPECT_EQ(sizeof(struct page), 64u);
  kmm::MachineScope scope(*m);
  struct page* p = alloc_pages(GFP_KERNEL, 1);
  char* v = static_cast<char*>(page_address(p));
  std::memcpy(v + PAGE_SIZE - 3, "kmm!!!", 6); // across the two pages of the block
  EXPECT_EQ(std::memcmp(static_cast<char*>(page_address(p + 1)), "!!!", 3), 0);
  // The memfd is the RAM: reading it at the physical address sees the same bytes.
  char buf[6];
  ASSERT_EQ(pread(mem.memfd, buf, 6, static_cast<off_t>(page_to_phys(p) + PAGE_SIZE - 3)), 6);
  EXPECT_EQ(std::memcmp(buf, "kmm!!!", 6), 0);
  EXPECT_EQ(mem.kva(v), 0xffff888000000000ull + page_to_phys(p));
  EXPECT_EQ(mem.page_kva(p), 0xffffea0000000000ull + page_to_pfn(p) * 64);
  EXPECT_TRUE(mem.is_page(p));
  EXPECT_FALSE(mem.is_page(reinterpret_cast<struct page*>(reinterpret_cast<char*>(p) + 8)));
  EXPECT_FALSE(mem.is_direct(&buf));
  __free_pages(p, 1);
}
