// Tests for allocator/src/physmem.cpp: the zone layout for every size of mem= (scaled below
// 4 GiB, PC-like above), movablecore, the reserved first page, and the direct map: real shared
// memory whose offsets are physical addresses, recycled from one machine to the next.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "kernel.h"
#include "kmm/scenario.h"
#include "page_test_util.h"
#include "scenario_run.h"

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
  EXPECT_EQ(
      zones(*Machine::boot("mem=1G")),
      (std::vector<Span>{
          {0, 4096, 4095}, {4096, 131072, 126976}, {131072, 262144, 131072}, {262144, 262144, 0}}));
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

// A host pointer is as aligned as the kernel address it stands for: the direct map sits on a
// MAX_ORDER boundary, so an order-N block's page_address is 2^N pages aligned on every run, and
// fresh and recycled machines alike (the host's mmap placement never shows).
TEST(Physmem, DirectMapIsAlignedToTheLargestBlock) {
  for (int run = 0; run < 3; run++) {
    auto m = Machine::boot(run == 2 ? "mem=24M" : "mem=16M");
    kmm::MachineScope scope(*m);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(m->kernel().mem.direct_map) % (PAGE_SIZE << 10), 0u);
    for (unsigned order : {0u, 3u, 9u, 10u}) {
      struct page* p = alloc_pages(GFP_KERNEL, order);
      ASSERT_NE(p, nullptr) << order;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(page_address(p)) % (PAGE_SIZE << order), 0u) << order;
      __free_pages(p, order);
    }
  }
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

// Recycled host memory (physmem.h): a machine booted on the memory of a destroyed one is byte for
// byte a freshly booted one, whatever the previous machine did, so a fuzz input gives the same
// result on either (issue #8).
namespace {

// What a scenario leaves visible: what `kmm run` prints, then /proc at the end.
std::string observe(const std::string& boot, const std::string& ops) {
  kmm::Scenario s =
      kmm::parse_scenario((boot.empty() ? "" : "boot " + boot + "\n") + ops, "reset.kmm");
  std::string procs;
  kmm::RunOptions opts;
  opts.at_end = [&](Machine& m) {
    for (const char* path :
         {"/proc/buddyinfo", "/proc/meminfo", "/proc/pagetypeinfo", "/proc/zoneinfo",
          "/proc/vmstat", "/proc/slabinfo", "/proc/vmallocinfo"})
      procs += std::string("--- ") + path + "\n" + m.proc_read(path);
  };
  return kmm::format_run(kmm::run_scenario(s, opts)) + procs;
}

// A booted machine's RAM as the machine sees it (a stale page reads as the fill it is cleaned to
// when handed out) and its struct pages.
std::string image(Machine& m) {
  const kmm::PhysMem& mem = m.kernel().mem;
  std::string out(reinterpret_cast<const char*>(mem.direct_map), mem.bytes);
  for (unsigned long pfn = 0; pfn < mem.nr_pages; pfn++)
    if (kmm::PhysMem::test_bit(mem.stale, pfn))
      std::fill_n(out.begin() + std::ptrdiff_t(pfn * kmm::PAGE_SIZE_), kmm::PAGE_SIZE_,
                  char(mem.fill));
  out.append(reinterpret_cast<const char*>(mem.mem_map), mem.mem_map_bytes);
  return out;
}

// Touches RAM and struct pages everywhere it can, and leaves some of it allocated.
const char* const kDirty = R"(t0 = task_spawn comm=dirty
task_touch t0 pages=300
fill t0 byte=0x5a
o0 = kzalloc size=3000
o1 = kmalloc size=64
fill o1 byte=0x33
v0 = vzalloc size=20000
fill v0 byte=0x77
p0 = alloc_pages order=3 gfp=GFP_KERNEL
fill p0 byte=0x11
f0 = file_create name=dirty
file_write f0 pages=40
p1 = alloc_pages order=0 gfp=GFP_KERNEL
free_pages p1
)";

const char* const kProbe = R"(p0 = alloc_pages order=1 gfp=GFP_KERNEL
o0 = kmalloc size=200
read o0+0 len=16
read p0+4096 len=16
v0 = vmalloc size=9000
read v0+0 len=16
proc_read /proc/buddyinfo
free_pages p0
)";

} // namespace

TEST(Physmem, RecycledMachineIsAFreshOne) {
  std::vector<std::string> lines = kmm::fuzz_machines();
  lines.push_back(
      "mem=16M kfence.sample_interval=1"); // guard pages are PROT_NONE in the direct map
  for (const std::string& line : lines) {
    SCOPED_TRACE(line);
    kmm::physmem_drain_pool();
    const std::string fresh = observe(line, kProbe);
    observe(line, kDirty);
    const uint64_t reuses = kmm::physmem_reuse_count();
    const std::string recycled = observe(line, kProbe);
    EXPECT_GT(kmm::physmem_reuse_count(), reuses);
    EXPECT_EQ(recycled, fresh);
  }
}

// The invariant that lets an allocation skip zeroing a pristine page: nothing writes RAM without
// its pages being marked written, whatever a scenario does.
TEST(Physmem, PristinePagesHoldTheBootFill) {
  for (const std::string& line : kmm::fuzz_machines()) {
    SCOPED_TRACE(line);
    kmm::Scenario s = kmm::parse_scenario((line.empty() ? "" : "boot " + line + "\n") + kDirty +
                                              "o2 = kmalloc size=100000\nkfree o2\n",
                                          "dirty.kmm");
    kmm::RunOptions opts;
    unsigned long bad = 0, nr = 1;
    opts.at_end = [&](Machine& m) {
      bad = m.kernel().mem.first_unclean_pristine();
      nr = m.kernel().mem.nr_pages;
    };
    kmm::run_scenario(s, opts);
    EXPECT_EQ(bad, nr) << "pfn " << bad << " is pristine but does not hold the boot fill";
  }
}

// The check above finds a byte written behind the machine's back, in the middle of RAM or in
// its last page, whatever the fill.
TEST(Physmem, FirstUncleanPristineFindsAStrayByte) {
  for (const char* line : {"mem=16M", "mem=8M page_poison=1"}) {
    SCOPED_TRACE(line);
    auto m = Machine::boot(line);
    kmm::PhysMem& mem = m->kernel().mem;
    ASSERT_EQ(mem.first_unclean_pristine(), mem.nr_pages);
    for (unsigned long pfn : {mem.nr_pages / 2, mem.nr_pages - 1}) {
      ASSERT_TRUE(mem.pristine(pfn));
      uint8_t& b = mem.direct_map[pfn * kmm::PAGE_SIZE_ + kmm::PAGE_SIZE_ - 1];
      b = uint8_t(mem.fill ^ 1);
      EXPECT_EQ(mem.first_unclean_pristine(), pfn);
      b = mem.fill;
    }
    EXPECT_EQ(mem.first_unclean_pristine(), mem.nr_pages);
  }
}

// Pages handed out to a scenario's kernel code stay pristine until the scenario writes them (it
// marks what it writes, kernel.h); a page written and freed is zeroed when a __GFP_ZERO request
// gets it back; when the scenario ends, the pages still allocated count as written, as any code
// may write them from then on.
TEST(Physmem, AScenarioMarksThePagesItWrites) {
  auto m = Machine::boot("mem=16M");
  const kmm::PhysMem& mem = m->kernel().mem;
  // Per allocated kernel block (head pfn): how many of its pages are not pristine.
  auto written_pages = [&mem] {
    std::map<unsigned long, unsigned> out;
    for (unsigned long pfn = 0; pfn < mem.nr_pages; pfn++) {
      const struct page* p = mem.pfn_to_page(pfn);
      if (!(p->flags & kmm::PG_alloc) || p->owner != kmm::PageOwner::Kernel) continue;
      unsigned& n = out[pfn];
      for (unsigned long i = 0; i < (1ul << p->private_); i++) n += !mem.pristine(pfn + i);
    }
    return out;
  };
  const kmm::Scenario s = kmm::parse_scenario(R"(p0 = alloc_pages order=2
p1 = alloc_pages order=2
write p1+4000 len=200 byte=0x5a
p2 = alloc_pages order=0
fill p2 byte=0x33
free_pages p2
p3 = alloc_pages order=0 gfp=GFP_KERNEL|__GFP_ZERO
read p3+0 len=4
)",
                                              "marks.kmm");
  // The operations one by one, as the fuzz harness runs them.
  kmm::MachineScope scope(*m);
  kmm::RunResult out;
  kmm::scn::Runner r(s, *m, out);
  for (const kmm::Op& op : s.ops) kmm::scn::op_table()[op.code].exec(r, op);
  EXPECT_EQ(r.detail, "00 00 00 00"); // p3 reads as zeroes
  std::vector<unsigned> counts;
  for (auto [pfn, n] : written_pages()) counts.push_back(n);
  std::sort(counts.begin(), counts.end());
  // p0 untouched; p3 is p2's page, written by the fill, then zeroed for p3; p1 written across
  // its first two pages.
  EXPECT_EQ(counts, (std::vector<unsigned>{0, 1, 2}));
  r.end_marking(); // the scenario is over: other code may write the pages still allocated
  for (auto [pfn, n] : written_pages())
    EXPECT_EQ(n, 1u << mem.pfn_to_page(pfn)->private_) << "pfn " << pfn;
  r.cpu_scope.reset();
}

// Recycled RAM is never cleaned wholesale: pages the old machine handed out are stale, and set
// to the fill when the new machine hands them out.
TEST(Physmem, StalePagesAreCleanedWhenHandedOut) {
  kmm::physmem_drain_pool();
  observe("mem=16M", kDirty);
  auto m = Machine::boot("mem=16M");
  kmm::MachineScope scope(*m);
  const kmm::PhysMem& mem = m->kernel().mem;
  const std::vector<uint64_t> stale_at_boot = mem.stale;
  std::vector<struct page*> blocks;
  for (int i = 0; i < 64; i++)
    if (struct page* p = alloc_pages(GFP_KERNEL, 3)) blocks.push_back(p);
  unsigned long were_stale = 0;
  for (struct page* p : blocks) {
    for (unsigned long i = 0; i < 8; i++)
      were_stale += kmm::PhysMem::test_bit(stale_at_boot, page_to_pfn(p) + i);
    const auto* b = static_cast<const uint8_t*>(page_address(p));
    EXPECT_TRUE(std::all_of(b, b + 8 * kmm::PAGE_SIZE_, [](uint8_t x) { return x == 0; }));
    __free_pages(p, 3);
  }
  EXPECT_GT(were_stale, 0u); // the dirty scenario's pages came back stale, and were handed out
}

TEST(Physmem, RecycledMemoryIsByteForByteAFreshBoot) {
  for (const std::string& line : kmm::fuzz_machines()) {
    SCOPED_TRACE(line);
    kmm::physmem_drain_pool();
    std::string fresh;
    const uint8_t* ram = nullptr;
    {
      auto m = Machine::boot(line);
      fresh = image(*m);
      ram = m->kernel().mem.direct_map;
    }
    observe(line, kDirty);
    auto m = Machine::boot(line);
    EXPECT_EQ(m->kernel().mem.direct_map, ram); // the same host memory, cleaned
    EXPECT_TRUE(image(*m) == fresh);            // (not EXPECT_EQ: megabytes)
  }
}
