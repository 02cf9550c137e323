// The buddy allocator (mm/page_alloc.c): __free_one_page, expand, __rmqueue_smallest,
// __rmqueue_fallback and pageblock stealing, with the kernel's orders and rules.
//
// A free block of order n starts at a pfn that is a multiple of 2^n. Its buddy is the block it
// was split from: buddy of pfn 8 at order 1 is 8 ^ 2 == 10; of pfn 10 it is 10 ^ 2 == 8. Merging
// the two gives the order-2 block at 8 & 10 == 8.
//
// Free-page accounting (NR_FREE_PAGES, NR_FREE_CMA_PAGES) lives in add_to_free_list and
// del_page_from_free_list, keyed by the list the block is on, so a block moving between lists
// keeps the counters right. Blocks on the ISOLATE list are not counted as free (as the kernel's
// account_freepages()).
#include "buddy.h"

#include <algorithm>
#include <cstdio>

#include "kernel.h"
#include "pfn_list.h"

namespace kmm {

const char* const migratetype_names[MIGRATE_TYPES] = {"Unmovable",  "Movable", "Reclaimable",
                                                      "HighAtomic", "CMA",     "Isolate"};
const char* const zone_names[MAX_NR_ZONES] = {"DMA", "DMA32", "Normal", "Movable"};

// fallbacks[] (page_alloc.c): where each pcp type may steal from, in preference order.
static const int fallbacks[MIGRATE_PCPTYPES][2] = {
    {MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE},   // UNMOVABLE
    {MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE}, // MOVABLE
    {MIGRATE_UNMOVABLE, MIGRATE_MOVABLE},     // RECLAIMABLE
};

zone& page_zone(Kernel& k, unsigned long pfn) {
  for (int i = MAX_NR_ZONES - 1; i > 0; i--)
    if (k.zones[i].populated() && pfn >= k.zones[i].zone_start_pfn) return k.zones[i];
  return k.zones[ZONE_DMA];
}

static void account_freepages(zone& z, long nr, int mt) {
  if (mt == MIGRATE_ISOLATE) return;
  z.vm_stat[NR_FREE_PAGES].fetch_add(nr, std::memory_order_relaxed);
  if (mt == MIGRATE_CMA) z.vm_stat[NR_FREE_CMA_PAGES].fetch_add(nr, std::memory_order_relaxed);
}

void add_to_free_list(Kernel& k, zone& z, unsigned long pfn, unsigned order, int mt, bool tail) {
  struct page& p = k.mem.mem_map[pfn];
  p.flags = 0;
  p.page_type = PGTY_buddy;
  p.private_ = order;
  p.list_mt = static_cast<uint8_t>(mt);
  free_area& area = z.free_area_[order];
  pfn_list_add(k.mem, area.free_list[mt], static_cast<uint32_t>(pfn), tail);
  area.nr_free++;
  area.nr_free_mt[mt]++;
  account_freepages(z, 1l << order, mt);
}

void del_page_from_free_list(Kernel& k, zone& z, unsigned long pfn, unsigned order) {
  struct page& p = k.mem.mem_map[pfn];
  int mt = p.list_mt;
  free_area& area = z.free_area_[order];
  pfn_list_del(k.mem, area.free_list[mt], static_cast<uint32_t>(pfn));
  area.nr_free--;
  area.nr_free_mt[mt]--;
  account_freepages(z, -(1l << order), mt);
  p.page_type = 0;
  p.private_ = 0;
  p.list_mt = 0;
}

// move_to_free_list(): the block stays free, on another migratetype's list.
static void move_to_free_list(Kernel& k, zone& z, unsigned long pfn, unsigned order, int mt) {
  del_page_from_free_list(k, z, pfn, order);
  add_to_free_list(k, z, pfn, order, mt, true);
}

// page_is_buddy(): the block at buddy_pfn is a free block of exactly `order` in the same zone.
static bool page_is_buddy(Kernel& k, const zone& z, unsigned long buddy_pfn, unsigned order) {
  if (buddy_pfn < z.zone_start_pfn || buddy_pfn >= z.end_pfn()) return false;
  const struct page& b = k.mem.mem_map[buddy_pfn];
  return PageBuddy(b) && b.private_ == order;
}

// buddy_merge_likely(): if the block one order up would merge once its buddy is freed, queue this
// block at the tail so it is less likely to be handed out before that happens.
static bool buddy_merge_likely(Kernel& k, const zone& z, unsigned long pfn, unsigned long buddy_pfn,
                               unsigned order) {
  if (order >= MAX_PAGE_ORDER_ - 1) return false;
  unsigned long higher = buddy_pfn & pfn;
  return page_is_buddy(k, z, higher ^ (1ul << (order + 1)), order + 1);
}

void __free_one_page(Kernel& k, zone& z, unsigned long pfn, unsigned order, int mt, fpi_t fpi) {
  unsigned long buddy_pfn = 0;
  while (order < MAX_PAGE_ORDER_) {
    buddy_pfn = pfn ^ (1ul << order);
    if (!page_is_buddy(k, z, buddy_pfn, order)) break;
    // Do not merge across pageblocks of non-mergeable types (CMA, HighAtomic, Isolate).
    if (order >= pageblock_order) {
      int bmt = k.mem.get_pageblock_migratetype(buddy_pfn);
      if (mt != bmt && (!migratetype_is_mergeable(mt) || !migratetype_is_mergeable(bmt))) break;
    }
    del_page_from_free_list(k, z, buddy_pfn, order);
    pfn &= buddy_pfn; // the lower of the two: combined block
    order++;
  }
  const bool to_tail =
      (fpi & FPI_TO_TAIL) || buddy_merge_likely(k, z, pfn, pfn ^ (1ul << order), order);
  add_to_free_list(k, z, pfn, order, mt, to_tail);
}

// expand(): the block [pfn, pfn + 2^high) was taken for an order-`low` request; give back the
// upper halves. Worked example: order 0 from an order-2 block at 8 frees 10 (order 1) and 9
// (order 0), and returns 8.
static void expand(Kernel& k, zone& z, unsigned long pfn, unsigned low, unsigned high, int mt) {
  unsigned long size = 1ul << high;
  while (high > low) {
    high--;
    size >>= 1;
    add_to_free_list(k, z, pfn + size, high, mt, false);
  }
}

unsigned long __rmqueue_smallest(Kernel& k, zone& z, unsigned order, int mt) {
  for (unsigned cur = order; cur <= MAX_PAGE_ORDER_; cur++) {
    pfn_list& l = z.free_area_[cur].free_list[mt];
    if (l.empty()) continue;
    unsigned long pfn = l.head;
    del_page_from_free_list(k, z, pfn, cur);
    expand(k, z, pfn, order, cur, mt);
    return pfn;
  }
  return PFN_NIL;
}

static bool can_steal_fallback(unsigned order, int start_mt) {
  if (order >= pageblock_order) return true;
  return order >= pageblock_order / 2 || start_mt == MIGRATE_RECLAIMABLE ||
         start_mt == MIGRATE_UNMOVABLE;
}

static int find_suitable_fallback(const free_area& area, unsigned order, int mt, bool* can_steal) {
  if (area.nr_free == 0) return -1;
  *can_steal = false;
  for (int fmt : fallbacks[mt]) {
    if (area.free_list[fmt].empty()) continue;
    if (can_steal_fallback(order, mt)) *can_steal = true;
    return fmt;
  }
  return -1;
}

// prep_move_freepages_block(): a pageblock is moved only when it lies wholly in the zone. With
// mem=8M, DMA is pfns 0x0-0x7f, so pageblock 0x0-0x1ff straddles DMA and DMA32 and is never moved
// (clipping its start to 0x80 and keeping the length would walk into pageblock 0x200).
bool pageblock_within_zone(const zone& z, unsigned long pfn) {
  unsigned long start = pfn & ~(pageblock_nr_pages - 1);
  return start >= z.zone_start_pfn && start + pageblock_nr_pages <= z.end_pfn();
}

// Walks the pageblock of pfn: moves its free blocks to mt, and counts the allocated pages that
// are movable (on an LRU) in *movable. -1 when the pageblock straddles a zone boundary.
static long move_freepages(Kernel& k, zone& z, unsigned long pfn, int mt, unsigned long* movable) {
  if (movable) *movable = 0;
  if (!pageblock_within_zone(z, pfn)) return -1;
  unsigned long start = pfn & ~(pageblock_nr_pages - 1);
  unsigned long end = start + pageblock_nr_pages;
  long moved = 0;
  for (unsigned long p = start; p < end;) {
    const struct page& pg = k.mem.mem_map[p];
    if (PageBuddy(pg)) {
      unsigned order = pg.private_;
      if (pg.list_mt != mt) move_to_free_list(k, z, p, order, mt);
      moved += 1l << order;
      p += 1ul << order;
      continue;
    }
    if ((pg.flags & PG_alloc) && !(pg.flags & PG_tail)) {
      unsigned long n = 1ul << pg.private_;
      if (movable && (pg.flags & PG_lru)) *movable += n;
      p += n;
      continue;
    }
    p++;
  }
  return moved;
}

long move_freepages_block(Kernel& k, zone& z, unsigned long pfn, int mt) {
  return move_freepages(k, z, pfn, mt, nullptr);
}

// steal_suitable_fallback(): take the free block at pfn (on a fallback list) for start_mt, and
// claim its whole pageblock when at least half of it is free or already of start_mt's kind.
static void steal_suitable_fallback(Kernel& k, zone& z, unsigned long pfn, int start_mt,
                                    bool whole_block) {
  int old_mt = k.mem.get_pageblock_migratetype(pfn);
  unsigned order = k.mem.mem_map[pfn].private_;
  if (old_mt == MIGRATE_HIGHATOMIC) goto single_page;
  if (order >= pageblock_order) {
    // change_pageblock_range(): every pageblock of the block becomes start_mt.
    for (unsigned long p = pfn; p < pfn + (1ul << order); p += pageblock_nr_pages)
      k.mem.set_pageblock_migratetype(p, start_mt);
    goto single_page;
  }
  if (whole_block) {
    unsigned long movable = 0;
    long moved = move_freepages(k, z, pfn, start_mt, &movable);
    if (moved <= 0) goto single_page; // straddles the zone, or nothing free to claim
    unsigned long free_pages = static_cast<unsigned long>(moved);
    unsigned long alike;
    if (start_mt == MIGRATE_MOVABLE) alike = movable;
    else if (old_mt == MIGRATE_MOVABLE) alike = pageblock_nr_pages - (free_pages + movable);
    else alike = 0;
    if (free_pages + alike >= (1ul << (pageblock_order - 1)))
      k.mem.set_pageblock_migratetype(pfn, start_mt);
    return;
  }
single_page:
  move_to_free_list(k, z, pfn, order, start_mt);
}

static bool __rmqueue_fallback(Kernel& k, zone& z, unsigned order, int start_mt,
                               unsigned alloc_flags) {
  unsigned min_order = order;
  if ((alloc_flags & ALLOC_NOFRAGMENT) && order < pageblock_order) min_order = pageblock_order;
  bool can_steal = false;
  int fmt = -1;
  int cur;
  // Steal the largest block first, to take ownership of whole pageblocks and keep mixing down.
  for (cur = MAX_PAGE_ORDER_; cur >= static_cast<int>(min_order); --cur) {
    fmt = find_suitable_fallback(z.free_area_[cur], cur, start_mt, &can_steal);
    if (fmt == -1) continue;
    // A movable request that cannot claim the block takes the smallest one instead.
    if (!can_steal && start_mt == MIGRATE_MOVABLE && cur > static_cast<int>(order)) {
      for (cur = order; cur <= static_cast<int>(MAX_PAGE_ORDER_); cur++) {
        fmt = find_suitable_fallback(z.free_area_[cur], cur, start_mt, &can_steal);
        if (fmt != -1) break;
      }
    }
    break;
  }
  if (fmt == -1 || cur > static_cast<int>(MAX_PAGE_ORDER_) || cur < static_cast<int>(min_order))
    return false;
  unsigned long pfn = z.free_area_[cur].free_list[fmt].head;
  steal_suitable_fallback(k, z, pfn, start_mt, can_steal);
  return true;
}

unsigned long __rmqueue(Kernel& k, zone& z, unsigned order, int mt, unsigned alloc_flags) {
  unsigned long pfn;
  // Balance CMA use: take CMA pages first while they are more than half of the free memory.
  if ((alloc_flags & ALLOC_CMA) &&
      z.vm_stat[NR_FREE_CMA_PAGES].load(std::memory_order_relaxed) > z.free_pages() / 2) {
    pfn = __rmqueue_smallest(k, z, order, MIGRATE_CMA);
    if (pfn != PFN_NIL) return pfn;
  }
  for (;;) {
    pfn = __rmqueue_smallest(k, z, order, mt);
    if (pfn != PFN_NIL) return pfn;
    if (alloc_flags & ALLOC_CMA) {
      pfn = __rmqueue_smallest(k, z, order, MIGRATE_CMA);
      if (pfn != PFN_NIL) return pfn;
    }
    if (mt >= MIGRATE_PCPTYPES || !__rmqueue_fallback(k, z, order, mt, alloc_flags)) return PFN_NIL;
  }
}

// A boot block above pageblock_order may span pageblocks of different types only if all are
// mergeable, as __free_one_page() merges: a CMA pageblock (cma=2M on mem=8M: 0x600 inside the
// order-10 block 0x400) must not go onto the Movable list with its neighbour, where an
// Unmovable request would steal it whole.
static bool boot_block_mergeable(Kernel& k, unsigned long pfn, unsigned order) {
  if (order <= pageblock_order) return true;
  const int mt = k.mem.get_pageblock_migratetype(pfn);
  const unsigned long end = pfn + (1ul << order);
  for (unsigned long pb = pfn + pageblock_nr_pages; pb < end; pb += pageblock_nr_pages) {
    int bmt = k.mem.get_pageblock_migratetype(pb);
    if (bmt != mt && (!migratetype_is_mergeable(mt) || !migratetype_is_mergeable(bmt)))
      return false;
  }
  return true;
}

void free_range_at_boot(Kernel& k, zone& z, unsigned long start, unsigned long end) {
  unsigned long pfn = start;
  while (pfn < end) {
    unsigned order = MAX_PAGE_ORDER_;
    while (order > 0 && ((pfn & ((1ul << order) - 1)) || pfn + (1ul << order) > end ||
                         !boot_block_mergeable(k, pfn, order)))
      order--;
    // Boot memory goes to the tail, as __free_pages_core() does (FPI_TO_TAIL).
    add_to_free_list(k, z, pfn, order, k.mem.get_pageblock_migratetype(pfn), true);
    pfn += 1ul << order;
  }
}

unsigned long zone_nr_free(const zone& z, unsigned order) { return z.free_area_[order].nr_free; }

void buddy_check_zone(Kernel& k, zone& z, std::vector<std::string>& errors) {
  char buf[256];
  auto err = [&](const char* fmt, auto... args) {
    std::snprintf(buf, sizeof buf, fmt, args...);
    errors.push_back(std::string("buddy: zone ") + z.name + ": " + buf);
  };
  long free_pages = 0, free_cma = 0;
  for (unsigned order = 0; order <= MAX_PAGE_ORDER_; order++) {
    const free_area& area = z.free_area_[order];
    unsigned long total = 0;
    for (int mt = 0; mt < MIGRATE_TYPES; mt++) {
      unsigned long n = 0;
      uint32_t prev = PFN_NIL;
      for (uint32_t pfn = area.free_list[mt].head; pfn != PFN_NIL;
           prev = pfn, pfn = k.mem.mem_map[pfn].lru_next) {
        const struct page& p = k.mem.mem_map[pfn];
        if (++n > k.mem.nr_pages) {
          err("order %u %s list is cyclic", order, migratetype_names[mt]);
          break;
        }
        if (pfn < z.zone_start_pfn || pfn + (1ul << order) > z.end_pfn())
          err("pfn 0x%x order %u lies outside the zone", pfn, order);
        if (pfn & ((1u << order) - 1)) err("pfn 0x%x is not aligned to order %u", pfn, order);
        if (!PageBuddy(p) || p.private_ != order || p.list_mt != mt)
          err("pfn 0x%x on the order-%u %s list is not a free block of that order/type", pfn, order,
              migratetype_names[mt]);
        if (p.lru_prev != prev) err("pfn 0x%x has a broken back link", pfn);
        // Maximal coalescing: the buddy must not also be free at this order (unless a
        // pageblock-type boundary forbids the merge, or at the top order).
        if (order < MAX_PAGE_ORDER_) {
          unsigned long b = pfn ^ (1ul << order);
          bool forbidden = false;
          if (order >= pageblock_order) {
            int m1 = k.mem.get_pageblock_migratetype(pfn), m2 = k.mem.get_pageblock_migratetype(b);
            int lm = p.list_mt;
            forbidden = (lm != m2 || m1 != m2) &&
                        (!migratetype_is_mergeable(lm) || !migratetype_is_mergeable(m2));
          }
          if (!forbidden && page_is_buddy(k, z, b, order))
            err("pfn 0x%x and its buddy 0x%lx are both free at order %u (not coalesced)", pfn, b,
                order);
        }
        if (mt != MIGRATE_ISOLATE) free_pages += 1l << order;
        if (mt == MIGRATE_CMA) free_cma += 1l << order;
      }
      if (area.free_list[mt].tail != prev)
        err("order %u %s list tail is 0x%x, last entry is 0x%x", order, migratetype_names[mt],
            area.free_list[mt].tail, prev);
      if (n != area.nr_free_mt[mt])
        err("order %u %s list holds %lu blocks, counter says %lu", order, migratetype_names[mt], n,
            area.nr_free_mt[mt]);
      total += n;
    }
    if (total != area.nr_free)
      err("order %u holds %lu blocks, nr_free says %lu", order, total, area.nr_free);
  }
  if (free_pages != z.free_pages())
    err("free lists hold %ld pages, NR_FREE_PAGES says %ld", free_pages, z.free_pages());
  if (free_cma != z.vm_stat[NR_FREE_CMA_PAGES].load())
    err("CMA lists hold %ld pages, NR_FREE_CMA_PAGES says %ld", free_cma,
        z.vm_stat[NR_FREE_CMA_PAGES].load());
}

} // namespace kmm
