// The buddy allocator proper (mm/page_alloc.c): free lists per zone, order and migratetype,
// merging on free, splitting on allocation, migratetype fallback and pageblock stealing.
// Every function here expects zone->lock held (the "Locked" rule of the kernel's __ functions).
#pragma once

#include <string>
#include <vector>

#include "mmzone.h"

namespace kmm {

struct Kernel;

// ALLOC_* flags (mm/internal.h).
enum : unsigned {
  ALLOC_WMARK_MIN = WMARK_MIN,
  ALLOC_WMARK_LOW = WMARK_LOW,
  ALLOC_WMARK_HIGH = WMARK_HIGH,
  ALLOC_NO_WATERMARKS = 0x04,
  ALLOC_WMARK_MASK = ALLOC_NO_WATERMARKS - 1,
  ALLOC_OOM = 0x08,
  ALLOC_NON_BLOCK = 0x10,
  ALLOC_MIN_RESERVE = 0x20,
  ALLOC_CPUSET = 0x40,
  ALLOC_CMA = 0x80,
  ALLOC_NOFRAGMENT = 0x100,
  ALLOC_HIGHATOMIC = 0x200,
  ALLOC_KSWAPD = 0x800,
  ALLOC_RESERVES = ALLOC_NON_BLOCK | ALLOC_MIN_RESERVE | ALLOC_HIGHATOMIC | ALLOC_OOM,
};

zone& page_zone(Kernel& k, unsigned long pfn);

// For the checkers' walks over mem_map that look at pages in use: how far to step from pfn, the
// whole free block that starts there (when its order is sane), else 1. A page in use hidden
// inside a free block is check_pages()'s to report (validate.cpp, where this is defined).
unsigned long buddy_span(const Kernel& k, unsigned long pfn);

// Free lists. The block at pfn is free, of `order`; list_mt says which list holds it.
void add_to_free_list(Kernel& k, zone& z, unsigned long pfn, unsigned order, int mt, bool tail);
void del_page_from_free_list(Kernel& k, zone& z, unsigned long pfn, unsigned order);

// How a block is freed: the kernel's fpi_t flags that kmm models.
using fpi_t = unsigned;
constexpr fpi_t FPI_NONE = 0;
constexpr fpi_t FPI_TO_TAIL = 1u << 1; // the (merged) block goes to the tail of its free list

// Returns a free block of `order` (pfn) to the zone, merging with free buddies. The merged block
// goes to the tail of its list with FPI_TO_TAIL, or when a further merge is likely.
void __free_one_page(Kernel& k, zone& z, unsigned long pfn, unsigned order, int mt,
                     fpi_t fpi = FPI_NONE);

// Takes a block of `order` off the free lists: the smallest fitting block of mt, split down.
// Returns the pfn or PFN_NIL.
unsigned long __rmqueue_smallest(Kernel& k, zone& z, unsigned order, int mt);
// As the kernel's __rmqueue: CMA balancing, then mt, then fallback stealing.
unsigned long __rmqueue(Kernel& k, zone& z, unsigned order, int mt, unsigned alloc_flags);

// Moves the free blocks of pfn's pageblock to mt's lists; the pages moved, or -1 when the
// pageblock straddles a zone boundary (nothing is moved then).
long move_freepages_block(Kernel& k, zone& z, unsigned long pfn, int mt);
bool pageblock_within_zone(const zone& z, unsigned long pfn);

// Adds the pages [start, end) of a zone to the buddy lists at boot, in the largest aligned
// blocks possible (one write per block).
void free_range_at_boot(Kernel& k, zone& z, unsigned long start, unsigned long end);

// Self-check of a zone's free lists: appends one line per broken invariant. Caller holds lock.
void buddy_check_zone(Kernel& k, zone& z, std::vector<std::string>& errors);

// Free blocks of each order in the zone (for tests and /proc/buddyinfo).
unsigned long zone_nr_free(const zone& z, unsigned order);

} // namespace kmm
