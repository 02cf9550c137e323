// Per-CPU page lists (mm/page_alloc.c rmqueue_pcplist / free_unref_page / drain_all_pages).
// Orders 0..PAGE_ALLOC_COSTLY_ORDER are cached per CPU: a free goes to the freeing CPU's list and
// spills `batch` pages back to the buddy lists when the list reaches `high`; an allocation takes
// from the list and refills `batch` blocks at a time. Pages on pcp lists are not counted as
// free (NR_FREE_PAGES, MemFree, /proc/buddyinfo), as in the kernel.
#pragma once

#include "mmzone.h"

namespace kmm {

struct Kernel;

inline bool pcp_allowed_order(unsigned order) { return order <= PAGE_ALLOC_COSTLY_ORDER; }

// rmqueue_bulk()'s refill for an empty list: `batch` pages' worth of blocks, at least two.
inline int pcp_refill_blocks(int batch, unsigned order) {
  if (batch <= 1) return batch;
  int blocks = batch >> order;
  return blocks > 2 ? blocks : 2;
}
// The most pages one refill can add, over the pcp orders.
inline int pcp_refill_max_pages(int batch) {
  int most = 0;
  for (unsigned o = 0; o < NR_PCP_ORDERS; o++) {
    int pages = pcp_refill_blocks(batch, o) << o;
    most = pages > most ? pages : most;
  }
  return most;
}
// How far count may rise above high. A refill does not look at high (the kernel's does not
// either), so each list refilled in turn may add a refill's worth before the next free spills;
// frees at or above high always spill at least the block they add.
inline int pcp_count_slack(int batch) {
  return static_cast<int>(NR_PCP_LISTS) * pcp_refill_max_pages(batch);
}

// Takes a block from this CPU's list for (order, mt), refilling from the buddy lists if empty.
unsigned long rmqueue_pcplist(Kernel& k, zone& z, unsigned order, int mt, unsigned alloc_flags);
// Puts a freed block on this CPU's list; `mt` is its pageblock's migratetype.
void free_unref_page(Kernel& k, zone& z, unsigned long pfn, unsigned order, int mt);
// zone_pcp_update()'s store: new high and batch on every CPU of `z`, and any list now at or
// above its high trimmed below it.
void pcp_set_high_and_batch(Kernel& k, zone& z, int high, int batch);
// Returns every page on the pcp lists of `z` (or of all zones when z is null) to the buddy lists.
void drain_all_pages(Kernel& k, zone* only);
// Pages on pcp lists, all CPUs.
long zone_pcp_pages(const Kernel& k, const zone& z);

} // namespace kmm
