// Tests for allocator/src/watermark.cpp: min_free_kbytes, the per-zone min/low/high/promo marks
// and lowmem_reserve, each compared with the kernel's formulas written out independently in
// page_test_util.h; the sysctls that recompute them; and __zone_watermark_ok() at its exact
// boundaries, including how far GFP_ATOMIC and __GFP_HIGH may dip below the min mark.
#include <gtest/gtest.h>

#include <cerrno>

#include "buddy.h"
#include "kernel.h"
#include "kmm/validate.h"
#include "page_test_util.h"
#include "watermark.h"

using kmm::Machine;
using kmm::test::ref_min_free_kbytes;
using kmm::test::ref_wmarks;
using kmm::test::zoneinfo;

namespace {

const char* const kZones[] = {"DMA", "DMA32", "Normal", "Movable"};

// Checks every zone's marks and protection against the formulas for `min_free_kbytes`.
void expect_formulas(Machine& m, long min_free_kbytes, long scale = 10) {
  auto zi = zoneinfo(m);
  long lowmem = zi["DMA"].managed + zi["DMA32"].managed + zi["Normal"].managed;
  for (int i = 0; i < 3; i++) {
    SCOPED_TRACE(kZones[i]);
    const auto& z = zi[kZones[i]];
    auto w = ref_wmarks(min_free_kbytes, z.managed, lowmem, scale);
    EXPECT_EQ(z.min, w.min);
    EXPECT_EQ(z.low, w.low);
    EXPECT_EQ(z.high, w.high);
    EXPECT_EQ(z.promo, w.promo);
  }
  // setup_per_zone_lowmem_reserve(): ratios DMA 256, DMA32 256, Normal 32.
  const long ratio[4] = {256, 256, 32, 0};
  for (int i = 0; i < 4; i++) {
    SCOPED_TRACE(kZones[i]);
    long sum = 0;
    for (int j = 0; j < 4; j++) {
      long want = 0;
      if (j > i) {
        sum += zi[kZones[j]].managed;
        want = ratio[i] && zi[kZones[i]].managed ? sum / ratio[i] : 0;
      }
      EXPECT_EQ(zi[kZones[i]].protection[j], want) << "protection[" << j << "]";
    }
  }
}

long sysctl(Machine& m, const char* name) {
  return std::stol(m.proc_read(std::string("/proc/sys/vm/") + name));
}

} // namespace

TEST(Watermark, IntSqrtIsTheFloorOfTheSquareRoot) {
  for (unsigned long x : {0ul, 1ul, 2ul, 3ul, 4ul, 15ul, 16ul, 17ul, 65472ul, 1048576ul, 16777152ul,
                          268435392ul, 999999999999ul})
    EXPECT_EQ(kmm::int_sqrt(x), kmm::test::ref_int_sqrt(x)) << x;
  EXPECT_EQ(kmm::int_sqrt(~0ul), 4294967295ul);
  EXPECT_EQ(kmm::int_sqrt(1ul << 62), 1ul << 31);
}

TEST(Watermark, BootMarksFollowTheKernelFormulas) {
  // min_free_kbytes = clamp(int_sqrt(lowmem_kb * 16), 128, 262144), pfn 0 being reserved:
  // 4M: sqrt(4092*16) = 255; 64M: sqrt(65532*16) = 1023; 1G: sqrt(1048572*16) = 4095.
  for (auto [cmdline, mfk] : {std::pair{"mem=4M", 255l},
                              {"mem=64M", 1023l},
                              {"mem=1G", 4095l},
                              {"mem=64M movablecore=16M", 0l}}) {
    SCOPED_TRACE(cmdline);
    auto m = Machine::boot(cmdline);
    auto zi = zoneinfo(*m);
    long lowmem = zi["DMA"].managed + zi["DMA32"].managed + zi["Normal"].managed;
    EXPECT_EQ(sysctl(*m, "min_free_kbytes"), ref_min_free_kbytes(lowmem));
    if (mfk) {
      EXPECT_EQ(sysctl(*m, "min_free_kbytes"), mfk);
    }
    EXPECT_EQ(sysctl(*m, "watermark_scale_factor"), 10);
    expect_formulas(*m, sysctl(*m, "min_free_kbytes"));
  }
}

TEST(Watermark, WorkedExampleOfOneGigabyte) {
  // mem=1G: DMA [0,16M) 4095 managed, DMA32 [16M,512M) 126976, Normal [512M,1G) 131072.
  auto m = Machine::boot("mem=1G");
  auto zi = zoneinfo(*m);
  EXPECT_EQ(zi["Normal"].managed, 131072);
  // pages_min = 4095 >> 2 = 1023; Normal min = 1023 * 131072 / 262143 = 511;
  // delta = max(511 >> 2, 131072 * 10 / 10000) = 131.
  EXPECT_EQ(zi["Normal"].min, 511);
  EXPECT_EQ(zi["Normal"].low, 642);
  EXPECT_EQ(zi["Normal"].high, 773);
  EXPECT_EQ(zi["Normal"].promo, 904);
  EXPECT_EQ(zi["DMA"].protection, (std::array<long, 4>{0, 496, 1008, 1008}));
  EXPECT_EQ(zi["DMA32"].protection, (std::array<long, 4>{0, 0, 512, 512}));
}

TEST(Watermark, MovableZoneMinIsClampedNotProportional) {
  auto m = Machine::boot("mem=64M movablecore=16M");
  auto zi = zoneinfo(*m);
  ASSERT_EQ(zi["Movable"].managed, 4096);
  long lowmem = zi["DMA"].managed + zi["DMA32"].managed + zi["Normal"].managed;
  long pages_min = sysctl(*m, "min_free_kbytes") >> 2;
  long tmp = pages_min * 4096 / lowmem;
  EXPECT_EQ(zi["Movable"].min, 32); // clamp(4096 / 1024, SWAP_CLUSTER_MAX, 128)
  EXPECT_EQ(zi["Movable"].low, 32 + std::max(tmp >> 2, 4096l * 10 / 10000));
}

TEST(Watermark, BootParametersSetTheSysctls) {
  auto m = Machine::boot("mem=64M min_free_kbytes=2000 watermark_scale_factor=200");
  EXPECT_EQ(sysctl(*m, "min_free_kbytes"), 2000);
  EXPECT_EQ(sysctl(*m, "watermark_scale_factor"), 200);
  expect_formulas(*m, 2000, 200);
}

TEST(Watermark, SysctlWritesRecomputeTheMarks) {
  auto m = Machine::boot("mem=64M nr_cpus=1");
  EXPECT_EQ(m->proc_write("/proc/sys/vm/min_free_kbytes", "4096\n"), 0);
  EXPECT_EQ(m->proc_read("/proc/sys/vm/min_free_kbytes"), "4096\n");
  expect_formulas(*m, 4096);
  EXPECT_EQ(zoneinfo(*m)["Normal"].min, 4096 / 4 * 8192 / 16383);
  EXPECT_EQ(m->proc_write("/proc/sys/vm/watermark_scale_factor", "1000"), 0);
  expect_formulas(*m, 4096, 1000);
  // min = 1024 * 8192 / 16383 = 512; delta = max(512 >> 2, 8192 * 1000 / 10000) = 819
  EXPECT_EQ(zoneinfo(*m)["Normal"].low, 512 + 819);
  // pcp high follows the new low mark (zone_pcp_update after setup_per_zone_wmarks).
  EXPECT_EQ(zoneinfo(*m)["Normal"].pcp_high, 512 + 819);
  EXPECT_EQ(m->proc_write("/proc/sys/vm/min_free_kbytes", "0"), 0); // SYSCTL_ZERO is allowed
  expect_formulas(*m, 0, 1000);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Watermark, BadSysctlValuesAreEinvalAndChangeNothing) {
  auto m = Machine::boot("mem=64M");
  const std::string before = m->proc_read("/proc/zoneinfo");
  for (const char* bad :
       {"-1", "abc", "", "\n", "12abc", "1.5", "99999999999999999999", "2147483648"})
    EXPECT_EQ(m->proc_write("/proc/sys/vm/min_free_kbytes", bad), -EINVAL) << '"' << bad << '"';
  for (const char* bad : {"0", "3001", "-5", "ten", ""})
    EXPECT_EQ(m->proc_write("/proc/sys/vm/watermark_scale_factor", bad), -EINVAL)
        << '"' << bad << '"';
  EXPECT_EQ(m->proc_read("/proc/zoneinfo"), before);
  EXPECT_EQ(m->proc_read("/proc/sys/vm/min_free_kbytes"), "1023\n");
  EXPECT_EQ(m->proc_read("/proc/sys/vm/watermark_scale_factor"), "10\n");
  EXPECT_EQ(m->proc_write("/proc/sys/vm/watermark_scale_factor", "3000"), 0);
  EXPECT_EQ(m->proc_write("/proc/sys/vm/watermark_scale_factor", "1"), 0);
  EXPECT_TRUE(m->reports().empty());
}

TEST(Watermark, AtomicDipsBelowMinWhereKernelDoesNot) {
  // ZONE_DMA of mem=64M: GFP_DMA requests see only this zone and lowmem_reserve[DMA] == 0, so
  // the marks are the whole story. M = min; GFP_ATOMIC's floor is M - M/2 - (M - M/2)/4,
  // a blocking __GFP_HIGH request's is M - M/2, and everything else's is M. "free > floor".
  auto m = Machine::boot("mem=64M nr_cpus=1 kmm.pcp=0");
  kmm::MachineScope scope(*m);
  const long M = zoneinfo(*m)["DMA"].min;
  ASSERT_EQ(M, 15);                                      // 255 * 1023 / 16383
  const long high_floor = M - M / 2;                     // 8
  const long atomic_floor = high_floor - high_floor / 4; // 6
  auto dma_free = [&] { return zoneinfo(*m)["DMA"].free; };
  kmm::Kernel& k = m->kernel();

  std::vector<struct page*> held;
  while (struct page* p = alloc_pages(GFP_ATOMIC | GFP_DMA | __GFP_NOWARN, 0)) held.push_back(p);
  EXPECT_EQ(dma_free(), atomic_floor);
  EXPECT_EQ(held.size(), 1023u - atomic_floor);
  // Give back pages until the zone sits exactly on its min mark.
  for (long i = 0; i < M - atomic_floor; i++) {
    __free_pages(held.back(), 0);
    held.pop_back();
  }
  ASSERT_EQ(dma_free(), M);

  m->clear_reports();
  EXPECT_EQ(alloc_pages(GFP_KERNEL | GFP_DMA | __GFP_NORETRY, 0), nullptr);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title,
            "kmm: page allocation failure: order:0, "
            "mode:0x10cc1(GFP_KERNEL|GFP_DMA|__GFP_NORETRY), nodemask=(null)");
  EXPECT_EQ(alloc_pages(GFP_NOWAIT | GFP_DMA | __GFP_NOWARN, 0), nullptr); // no __GFP_HIGH
  const unsigned long wakeups = k.kswapd_wakeups;
  struct page* a = alloc_pages(GFP_ATOMIC | GFP_DMA, 0);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(k.kswapd_wakeups, wakeups + 1); // below LOW with __GFP_KSWAPD_RECLAIM: kswapd woken
  EXPECT_EQ(dma_free(), M - 1);
  __free_pages(a, 0);
  struct page* h = alloc_pages(GFP_KERNEL | __GFP_HIGH | GFP_DMA | __GFP_NORETRY, 0);
  ASSERT_NE(h, nullptr);
  __free_pages(h, 0);
  // One page above min: now the ordinary request passes.
  __free_pages(held.back(), 0);
  held.pop_back();
  ASSERT_EQ(dma_free(), M + 1);
  struct page* kpage = alloc_pages(GFP_KERNEL | GFP_DMA | __GFP_NORETRY, 0);
  ASSERT_NE(kpage, nullptr);
  held.push_back(kpage);
  // __GFP_HIGH stops exactly at M - M/2, and GFP_ATOMIC still gets below that.
  while (struct page* p =
             alloc_pages(GFP_KERNEL | __GFP_HIGH | GFP_DMA | __GFP_NORETRY | __GFP_NOWARN, 0))
    held.push_back(p);
  EXPECT_EQ(dma_free(), high_floor);
  struct page* b = alloc_pages(GFP_ATOMIC | GFP_DMA, 0);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(dma_free(), high_floor - 1);
  // Without __GFP_KSWAPD_RECLAIM nobody wakes kswapd.
  const unsigned long w2 = k.kswapd_wakeups;
  struct page* c = alloc_pages(__GFP_HIGH | GFP_DMA, 0);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(k.kswapd_wakeups, w2);
  EXPECT_EQ(m->reports().size(), 1u);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Watermark, ZoneWatermarkOkBoundaries) {
  // mem=4M ZONE_DMA: free blocks of order 0..5 (63 pages).
  auto m = Machine::boot("mem=4M nr_cpus=1 kmm.pcp=0");
  kmm::Kernel& k = m->kernel();
  kmm::zone& z = k.zones[kmm::ZONE_DMA];
  using kmm::__zone_watermark_ok;
  // order 5: free - (32 - 1) = 32 must be > mark, and a block of order >= 5 must exist.
  EXPECT_TRUE(__zone_watermark_ok(k, z, 5, 31, kmm::ZONE_DMA, 0, z.free_pages()));
  EXPECT_FALSE(__zone_watermark_ok(k, z, 5, 32, kmm::ZONE_DMA, 0, z.free_pages()));
  EXPECT_FALSE(__zone_watermark_ok(k, z, 6, 0, kmm::ZONE_DMA, 0, z.free_pages()));
  // Enough pages (a made-up count) but no block of order >= 6 on any list: still false.
  EXPECT_FALSE(__zone_watermark_ok(k, z, 6, 0, kmm::ZONE_DMA, 0, 1000));
  // lowmem_reserve of the requested zone index is added to the mark: DMA protects 3 pages
  // against Normal requests on mem=4M ((448 + 512) / 256).
  EXPECT_EQ(z.lowmem_reserve[kmm::ZONE_NORMAL], 3u);
  EXPECT_TRUE(__zone_watermark_ok(k, z, 0, 59, kmm::ZONE_NORMAL, 0, 63));
  EXPECT_FALSE(__zone_watermark_ok(k, z, 0, 60, kmm::ZONE_NORMAL, 0, 63));
  // The high-atomic reserve is unusable except to ALLOC_RESERVES requests.
  z.nr_reserved_highatomic = 10;
  EXPECT_FALSE(__zone_watermark_ok(k, z, 0, 53, kmm::ZONE_DMA, 0, 63));
  EXPECT_TRUE(__zone_watermark_ok(k, z, 0, 52, kmm::ZONE_DMA, 0, 63));
  EXPECT_TRUE(__zone_watermark_ok(k, z, 0, 53, kmm::ZONE_DMA, kmm::ALLOC_NON_BLOCK, 63));
  z.nr_reserved_highatomic = 0;
  // ALLOC_OOM halves the mark: 100 -> 50.
  EXPECT_TRUE(__zone_watermark_ok(k, z, 0, 100, kmm::ZONE_DMA, kmm::ALLOC_OOM, 51));
  EXPECT_FALSE(__zone_watermark_ok(k, z, 0, 100, kmm::ZONE_DMA, kmm::ALLOC_OOM, 50));
  // ALLOC_MIN_RESERVE | ALLOC_NON_BLOCK: 100 -> 50 -> 38 (the 3/8 rule).
  const unsigned atomic = kmm::ALLOC_MIN_RESERVE | kmm::ALLOC_NON_BLOCK;
  EXPECT_TRUE(__zone_watermark_ok(k, z, 0, 100, kmm::ZONE_DMA, atomic, 39));
  EXPECT_FALSE(__zone_watermark_ok(k, z, 0, 100, kmm::ZONE_DMA, atomic, 38));
  // ALLOC_NON_BLOCK alone does not lower the mark.
  EXPECT_FALSE(__zone_watermark_ok(k, z, 0, 100, kmm::ZONE_DMA, kmm::ALLOC_NON_BLOCK, 100));
}

TEST(Watermark, FreeCmaPagesCountOnlyForAllocCma) {
  // __zone_watermark_ok(): free CMA pages are usable only by ALLOC_CMA (movable) requests, so
  // for every other request they are subtracted from the free count before the mark is tested.
  auto m = Machine::boot("mem=32M nr_cpus=1 cma=8M kmm.pcp=0");
  kmm::Kernel& k = m->kernel();
  kmm::zone& z = k.zones[kmm::ZONE_NORMAL];
  using kmm::__zone_watermark_ok;
  const long cma = z.vm_stat[kmm::NR_FREE_CMA_PAGES].load();
  ASSERT_EQ(cma, 2048); // cma=8M sits in Normal
  const long free = z.free_pages();
  ASSERT_GT(free, cma + 100);
  ASSERT_EQ(z.lowmem_reserve[kmm::ZONE_NORMAL], 0u);
  // Without ALLOC_CMA: free - cma must stay above the mark.
  EXPECT_TRUE(__zone_watermark_ok(k, z, 0, free - cma - 1, kmm::ZONE_NORMAL, 0, free));
  EXPECT_FALSE(__zone_watermark_ok(k, z, 0, free - cma, kmm::ZONE_NORMAL, 0, free));
  // With ALLOC_CMA the whole free count counts.
  EXPECT_TRUE(__zone_watermark_ok(k, z, 0, free - 1, kmm::ZONE_NORMAL, kmm::ALLOC_CMA, free));
  EXPECT_FALSE(__zone_watermark_ok(k, z, 0, free, kmm::ZONE_NORMAL, kmm::ALLOC_CMA, free));
}
