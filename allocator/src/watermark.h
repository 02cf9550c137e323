// Watermarks, lowmem_reserve and pcp sizing (mm/page_alloc.c): the min/low/high marks of each
// zone from min_free_kbytes and watermark_scale_factor, and __zone_watermark_ok().
#pragma once

#include "mmzone.h"

namespace kmm {

struct Kernel;

// calculate_min_free_kbytes() + setup_per_zone_wmarks() + lowmem_reserve + totalreserve, and the
// pcp high/batch that depend on them. Run at boot and after a sysctl write.
void init_per_zone_wmark_min(Kernel& k);
void setup_per_zone_wmarks(Kernel& k);

// __zone_watermark_ok(): may an allocation of `order` with `alloc_flags` leave the zone above
// `mark` (plus lowmem_reserve[highest_zoneidx])? free_pages is the zone's NR_FREE_PAGES.
// For order > 0 it walks the free lists: the caller holds z.lock.
bool __zone_watermark_ok(Kernel& k, const zone& z, unsigned order, unsigned long mark,
                         int highest_zoneidx, unsigned alloc_flags, long free_pages);
bool zone_watermark_ok(Kernel& k, const zone& z, unsigned order, unsigned long mark,
                       int highest_zoneidx, unsigned alloc_flags);

// int_sqrt(): floor of the square root.
unsigned long int_sqrt(unsigned long x);

} // namespace kmm
