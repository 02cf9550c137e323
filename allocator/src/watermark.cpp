// Watermarks (see watermark.h). Worked example, one 1 GiB Normal zone (262144 pages):
// min_free_kbytes = int_sqrt(1048576 * 16) = 4096 -> pages_min 1024 -> MIN 1024;
// delta = max(1024 >> 2, 262144 * 10 / 10000) = 262 -> LOW 1286, HIGH 1548, PROMO 1810.
#include "watermark.h"

#include <algorithm>

#include "buddy.h"
#include "kernel.h"
#include "pcp.h"

namespace kmm {

// sysctl_lowmem_reserve_ratio: DMA 256, DMA32 256, Normal 32, Movable 0.
static const unsigned long lowmem_reserve_ratio[MAX_NR_ZONES] = {256, 256, 32, 0};

unsigned long int_sqrt(unsigned long x) {
  if (x < 2) return x;
  unsigned long r = 0, m = 1ul << ((63 - __builtin_clzl(x)) & ~1);
  while (m) {
    unsigned long b = r + m;
    r >>= 1;
    if (x >= b) {
      x -= b;
      r += m;
    }
    m >>= 2;
  }
  return r;
}

// nr_free_buffer_pages(): managed pages above the high mark in zones usable by GFP_USER.
static unsigned long nr_free_buffer_pages(const Kernel& k) {
  unsigned long sum = 0;
  for (int i = 0; i <= ZONE_NORMAL; i++) {
    const zone& z = k.zones[i];
    unsigned long high = z._watermark[WMARK_HIGH];
    if (z.managed_pages > high) sum += z.managed_pages - high;
  }
  return sum;
}

static void calculate_min_free_kbytes(Kernel& k) {
  unsigned long lowmem_kbytes = nr_free_buffer_pages(k) * (PAGE_SIZE_ >> 10);
  long new_min = static_cast<long>(int_sqrt(lowmem_kbytes * 16));
  if (new_min > k.user_min_free_kbytes) {
    k.min_free_kbytes = static_cast<int>(std::clamp(new_min, 128l, 262144l));
  } else {
    k.min_free_kbytes = k.user_min_free_kbytes;
    if (k.params.min_free_kbytes < 0) // the sysctl was written, not the boot line
      k.log.printk("min_free_kbytes is not updated to " + std::to_string(new_min) +
                   " because user defined value " + std::to_string(k.user_min_free_kbytes) +
                   " is preferred");
  }
}

static void setup_per_zone_lowmem_reserve(Kernel& k) {
  for (int i = 0; i < MAX_NR_ZONES; i++) {
    zone& z = k.zones[i];
    unsigned long managed = 0;
    z.lowmem_reserve[i] = 0;
    for (int j = i + 1; j < MAX_NR_ZONES; j++) {
      managed += k.zones[j].managed_pages;
      z.lowmem_reserve[j] =
          (lowmem_reserve_ratio[i] && z.managed_pages) ? managed / lowmem_reserve_ratio[i] : 0;
    }
  }
}

static void calculate_totalreserve_pages(Kernel& k) {
  unsigned long total = 0;
  for (auto& z : k.zones) {
    unsigned long max = 0;
    for (int j = 0; j < MAX_NR_ZONES; j++) max = std::max(max, z.lowmem_reserve[j]);
    max += z._watermark[WMARK_HIGH];
    total += std::min(max, z.managed_pages);
  }
  k.totalreserve_pages = total;
}

// zone_batchsize(): about a quarter of a MiB of pages per refill, a power of two minus one.
static int zone_batchsize(const zone& z) {
  unsigned long batch = std::min(z.managed_pages >> 10, (1ul << 20) / PAGE_SIZE_);
  batch /= 4;
  if (batch < 1) batch = 1;
  unsigned long v = batch + batch / 2;
  unsigned long pow2 = 1ul << (63 - __builtin_clzl(v)); // rounddown_pow_of_two
  return static_cast<int>(pow2 - 1);
}

// zone_highsize() with no high fraction: the low watermark split across CPUs, at least 4 batches.
static void zone_pcp_update(Kernel& k, zone& z) {
  int batch = std::max(1, zone_batchsize(z));
  long high = static_cast<long>(z._watermark[WMARK_LOW] / k.nr_cpus);
  high = std::max(high, static_cast<long>(batch) << 2);
  pcp_set_high_and_batch(k, z, static_cast<int>(high), batch);
}

void setup_per_zone_wmarks(Kernel& k) {
  unsigned long pages_min = static_cast<unsigned long>(k.min_free_kbytes) >> (PAGE_SHIFT_ - 10);
  unsigned long lowmem_pages = 0;
  for (int i = 0; i < ZONE_MOVABLE; i++) lowmem_pages += k.zones[i].managed_pages;
  for (auto& z : k.zones) {
    std::lock_guard<std::mutex> guard(z.lock);
    unsigned long tmp = lowmem_pages ? pages_min * z.managed_pages / lowmem_pages : 0;
    if (z.idx == ZONE_MOVABLE) // no lowmem reserve duty: a small fixed floor
      z._watermark[WMARK_MIN] = std::clamp(z.managed_pages / 1024, 32ul, 128ul);
    else z._watermark[WMARK_MIN] = tmp;
    // mult_frac(managed, watermark_scale_factor, 10000)
    unsigned long scaled = z.managed_pages / 10000 * k.watermark_scale_factor +
                           z.managed_pages % 10000 * k.watermark_scale_factor / 10000;
    tmp = std::max(tmp >> 2, scaled);
    z.watermark_boost = 0;
    z._watermark[WMARK_LOW] = z._watermark[WMARK_MIN] + tmp;
    z._watermark[WMARK_HIGH] = z._watermark[WMARK_LOW] + tmp;
    z._watermark[WMARK_PROMO] = z._watermark[WMARK_HIGH] + tmp;
  }
  calculate_totalreserve_pages(k);
  for (auto& z : k.zones) zone_pcp_update(k, z);
}

void init_per_zone_wmark_min(Kernel& k) {
  calculate_min_free_kbytes(k);
  setup_per_zone_wmarks(k);
  setup_per_zone_lowmem_reserve(k);
  calculate_totalreserve_pages(k);
}

bool __zone_watermark_ok(Kernel& k, const zone& z, unsigned order, unsigned long mark,
                         int highest_zoneidx, unsigned alloc_flags, long free_pages) {
  (void)k;
  long min = static_cast<long>(mark);
  free_pages -= (1l << order) - 1;
  if (!(alloc_flags & ALLOC_RESERVES)) free_pages -= static_cast<long>(z.nr_reserved_highatomic);
  if (!(alloc_flags & ALLOC_CMA))
    free_pages -= z.vm_stat[NR_FREE_CMA_PAGES].load(std::memory_order_relaxed);
  if (alloc_flags & ALLOC_RESERVES) {
    // __GFP_HIGH may dip into half of the min reserve, and a non-blocking (atomic) request a
    // further quarter of what is left: GFP_ATOMIC's floor is 3/8 of min.
    if (alloc_flags & ALLOC_MIN_RESERVE) {
      min -= min / 2;
      if (alloc_flags & ALLOC_NON_BLOCK) min -= min / 4;
    }
    if (alloc_flags & ALLOC_OOM) min -= min / 2;
  }
  if (free_pages <= min + static_cast<long>(z.lowmem_reserve[highest_zoneidx])) return false;
  if (!order) return true;
  for (unsigned o = order; o <= MAX_PAGE_ORDER_; o++) {
    const free_area& area = z.free_area_[o];
    if (!area.nr_free) continue;
    for (int mt = 0; mt < MIGRATE_PCPTYPES; mt++)
      if (!area.free_list[mt].empty()) return true;
    if ((alloc_flags & ALLOC_CMA) && !area.free_list[MIGRATE_CMA].empty()) return true;
    if ((alloc_flags & (ALLOC_HIGHATOMIC | ALLOC_OOM)) &&
        !area.free_list[MIGRATE_HIGHATOMIC].empty())
      return true;
  }
  return false;
}

bool zone_watermark_ok(Kernel& k, const zone& z, unsigned order, unsigned long mark,
                       int highest_zoneidx, unsigned alloc_flags) {
  return __zone_watermark_ok(k, z, order, mark, highest_zoneidx, alloc_flags, z.free_pages());
}

} // namespace kmm
