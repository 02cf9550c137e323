// The plain model of physical memory: one state per page frame (free, ours, the machine's own),
// the zones' bounds and watermarks, and the rule that decides when a page allocation must
// succeed.
//
// The machine chooses which frames an allocation gets, so this model is updated with what the
// machine answered (in each command's run) and checks the answer before accepting it: the block
// lies in an allowed zone, is aligned to its order and every frame of it was free. The generation
// model (names and orders, updated in apply) lives with each property.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "model_machine.h"

#include "page_alloc.h"
#include "physmem.h"

namespace kmm::prop {

enum class Frame : uint8_t { Free, Ours, Machine };

struct PageModel {
  struct Zone {
    bool populated = false;
    unsigned long start = 0, end = 0;         // pfns [start, end)
    unsigned long min = 0;                    // WMARK_MIN
    unsigned long managed = 0;                // managed_pages
    unsigned long reserve[MAX_NR_ZONES] = {}; // lowmem_reserve, computed by the model
    long free = 0;                            // model free frames in the zone
  };
  Zone zones[MAX_NR_ZONES];
  unsigned long first = 0, last = 0; // pfn range covered
  std::vector<Frame> frames;
  std::string boot_buddyinfo; // after draining the pcp lists

  Frame& at(unsigned long pfn) { return frames[pfn - first]; }
  Frame at(unsigned long pfn) const { return frames[pfn - first]; }

  int zone_of(unsigned long pfn) const {
    for (int z = 0; z < MAX_NR_ZONES; z++)
      if (zones[z].populated && pfn >= zones[z].start && pfn < zones[z].end) return z;
    return -1;
  }

  // The boot state: after drain_all_pages, every frame inside a PGTY_buddy block is free and
  // everything else is the machine's.
  static PageModel from_boot(Sut& s) {
    PageModel pm;
    Kernel& k = s.k();
    s.drain();
    bool any = false;
    for (int zi = 0; zi < MAX_NR_ZONES; zi++) {
      zone& z = k.zones[zi];
      if (!z.managed_pages) continue;
      auto& mz = pm.zones[zi];
      mz.populated = true;
      mz.start = z.zone_start_pfn;
      mz.end = z.end_pfn();
      mz.min = z.wmark(WMARK_MIN);
      mz.managed = z.managed_pages;
      if (!any || mz.start < pm.first) pm.first = mz.start;
      if (!any || mz.end > pm.last) pm.last = mz.end;
      any = true;
    }
    pm.setup_lowmem_reserve();
    pm.frames.assign(pm.last - pm.first, Frame::Machine);
    for (unsigned long pfn = pm.first; pfn < pm.last;) {
      struct page* p = pfn_to_page(pfn);
      if (p && PageBuddy(*p)) {
        unsigned long n = 1ul << p->private_;
        for (unsigned long i = 0; i < n; i++) pm.at(pfn + i) = Frame::Free;
        int zi = pm.zone_of(pfn);
        if (zi >= 0) pm.zones[zi].free += static_cast<long>(n);
        pfn += n;
      } else {
        pfn++;
      }
    }
    pm.boot_buddyinfo = buddyinfo(s);
    return pm;
  }

  // setup_per_zone_lowmem_reserve() (mm/page_alloc.c), computed here rather than read from the
  // machine: zone i keeps back from a request whose highest zone is j > i the pages managed by
  // the zones i+1..j divided by sysctl_lowmem_reserve_ratio[i] (DMA 256, DMA32 256, Normal 32).
  // mem=8M: DMA32 keeps 1024 / 256 = 4 pages from a GFP_KERNEL request, DMA (1920) / 256 = 7.
  void setup_lowmem_reserve() {
    static const unsigned long ratio[MAX_NR_ZONES] = {256, 256, 32, 0};
    for (int i = 0; i < MAX_NR_ZONES; i++) {
      unsigned long above = 0;
      for (int j = 0; j < MAX_NR_ZONES; j++) {
        if (j > i) above += zones[j].managed;
        zones[i].reserve[j] = (j > i && ratio[i] && zones[i].managed) ? above / ratio[i] : 0;
      }
    }
  }

  // __zone_watermark_ok() (mm/page_alloc.c) at ALLOC_WMARK_MIN, the most a request is ever
  // allowed (no __GFP_MEMALLOC, no OOM victim, no __GFP_NOFAIL here): the pages zone zi must
  // still count as usable after serving `gfp`. __GFP_HIGH (ALLOC_MIN_RESERVE) may take half of
  // min, and a non-blocking one (ALLOC_NON_BLOCK: GFP_ATOMIC) a quarter of the rest; then the
  // lowmem reserve for the request's highest zone. Min 40: GFP_KERNEL keeps 40, __GFP_HIGH 20,
  // GFP_ATOMIC 15 (plus the reserve).
  long floor_after(int zi, gfp_t gfp) const {
    long m = static_cast<long>(zones[zi].min);
    if (gfp & __GFP_HIGH) {
      m -= m / 2;
      if (non_blocking(gfp)) m -= m / 4;
    }
    return m + static_cast<long>(zones[zi].reserve[highest_zone(gfp)]);
  }
  // ALLOC_NON_BLOCK: no direct reclaim and not __GFP_NOMEMALLOC.
  static bool non_blocking(gfp_t gfp) {
    return !(gfp & __GFP_DIRECT_RECLAIM) && !(gfp & __GFP_NOMEMALLOC);
  }
  // ALLOC_RESERVES: __GFP_HIGH or non-blocking; such a request may count the highatomic reserve.
  static bool uses_reserves(gfp_t gfp) { return (gfp & __GFP_HIGH) || non_blocking(gfp); }
  // ALLOC_CMA: only a movable request may count free CMA pages.
  static bool may_use_cma(gfp_t gfp) { return gfp_migratetype(gfp) == MIGRATE_MOVABLE; }

  // Zones a request may use: gfp_zone() and every populated zone below it (the zonelist).
  static int highest_zone(gfp_t gfp) { return gfp_zone(gfp); }

  bool block_free(unsigned long pfn, unsigned order) const {
    for (unsigned long i = 0; i < (1ul << order); i++)
      if (at(pfn + i) != Frame::Free) return false;
    return true;
  }

  // Must an allocation of `order` with `gfp` succeed? Exact precondition (documented in
  // properties/README.md): gfp may reclaim directly (so the slow path drains every pcp list and
  // retries at the min watermark), no __GFP_HIGH/ATOMIC/CMA reserves are involved, and some zone
  // Z the request may use has
  //   - a free, order-aligned block of 2^order frames in the model (the frames on pcp lists count
  //     as free: the drain returns them and the buddy allocator coalesces eagerly), and
  //   - model_free(Z) - (2^order - 1) > min(Z) + lowmem_reserve(Z)[highest zone of gfp]
  //     (__zone_watermark_ok at ALLOC_WMARK_MIN).
  bool must_succeed(gfp_t gfp, unsigned order) const {
    if (!(gfp & __GFP_DIRECT_RECLAIM) || (gfp & __GFP_HIGH)) return false;
    int hz = highest_zone(gfp);
    if (hz < 0) return false;
    for (int zi = hz; zi >= 0; zi--) {
      const Zone& z = zones[zi];
      if (!z.populated) continue;
      long need = static_cast<long>(z.min + z.reserve[hz]);
      if (z.free - static_cast<long>((1ul << order) - 1) <= need) continue;
      unsigned long n = 1ul << order;
      unsigned long pfn = (z.start + n - 1) & ~(n - 1);
      for (; pfn + n <= z.end; pfn += n)
        if (block_free(pfn, order)) return true;
    }
    return false;
  }

  void take(unsigned long pfn, unsigned order) {
    int zi = zone_of(pfn);
    for (unsigned long i = 0; i < (1ul << order); i++) {
      if (at(pfn + i) == Frame::Free) zones[zi].free--;
      at(pfn + i) = Frame::Ours;
    }
  }
  void give(unsigned long pfn, unsigned order) {
    int zi = zone_of(pfn);
    for (unsigned long i = 0; i < (1ul << order); i++) at(pfn + i) = Frame::Free;
    zones[zi].free += static_cast<long>(1ul << order);
  }
};

// Checks a block the machine handed out against the model; returns what is wrong or "".
inline std::string check_new_block(const PageModel& pm, unsigned long pfn, unsigned order,
                                   gfp_t gfp) {
  unsigned long n = 1ul << order;
  if (pfn % n) return "block pfn " + hex(pfn) + " not aligned to order " + std::to_string(order);
  if (pfn < pm.first || pfn + n > pm.last) return "block pfn " + hex(pfn) + " outside every zone";
  int zi = pm.zone_of(pfn);
  if (zi < 0 || pm.zone_of(pfn + n - 1) != zi) return "block pfn " + hex(pfn) + " spans zones";
  if (zi > PageModel::highest_zone(gfp))
    return "block in zone " + std::to_string(zi) + " above what gfp allows";
  // A frame the machine owned at boot may have been freed by reclaim (a slab shrunk), so only
  // our own live blocks are certain not to be free.
  for (unsigned long i = 0; i < n; i++)
    if (pm.at(pfn + i) == Frame::Ours)
      return "pfn " + hex(pfn + i) + " handed out while still allocated";
  return "";
}

// Zone free pages counting the pcp lists (which the kernel does not count as free).
inline long zone_free_with_pcp(Sut& s, int zi) {
  zone& z = s.k().zones[zi];
  return z.free_pages() + zone_pcp_pages(s.k(), z);
}

// What __zone_watermark_ok() does not let `gfp` count of zone zi's free pages (besides the
// 2^order - 1 of its own block): the highatomic reserve unless it uses reserves, the free CMA
// pages unless it is movable. Both are the machine's counters; the rule is the model's.
inline long zone_unusable(Sut& s, int zi, gfp_t gfp) {
  zone& z = s.k().zones[zi];
  long x = 0;
  if (!PageModel::uses_reserves(gfp)) x += static_cast<long>(z.nr_reserved_highatomic);
  if (!PageModel::may_use_cma(gfp))
    x += z.vm_stat[NR_FREE_CMA_PAGES].load(std::memory_order_relaxed);
  return x;
}

} // namespace kmm::prop
