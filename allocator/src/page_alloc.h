// The page allocator's entry points (mm/page_alloc.c): __alloc_pages with the zonelist walk,
// watermark checks and slow path; __free_pages with the free-time checks; compound pages,
// split_page, alloc_pages_exact and page references.
#pragma once

#include "buddy.h"
#include "kmm/gfp.h"
#include "kmm/page.h"
#include "mmzone.h"

namespace kmm {

struct Kernel;

// gfp_zone(): the highest zone the flags allow, or -1 for an impossible combination.
int gfp_zone(gfp_t gfp);
// gfp_migratetype(): Unmovable, Movable or Reclaimable.
int gfp_migratetype(gfp_t gfp);

// get_order(): the smallest order whose block holds `size` bytes (0 for 0). It never overflows:
// a size past 2^63 is order 52, as the kernel's ilog2-based get_order gives, and __alloc_pages
// then warns that it is above MAX_PAGE_ORDER.
inline unsigned get_order(size_t size) {
  unsigned order = 0;
  while (order < 64 - PAGE_SHIFT_ && (size_t(PAGE_SIZE_) << order) < size) order++;
  return order;
}

// Allocates 2^order pages. Returns the head page, or nullptr (with the kernel's warning unless
// __GFP_NOWARN). The block is owned by `owner` until freed.
struct page* __alloc_pages(Kernel& k, gfp_t gfp, unsigned order,
                           PageOwner owner = PageOwner::Kernel);
// Drops a reference; frees the block when it was the last. Bad frees are reported, never
// carried out.
void __free_pages(Kernel& k, struct page* page, unsigned order);
// Frees a block whose refcount already reached zero (put_page path, slab, vmalloc).
void free_the_page(Kernel& k, struct page* page, unsigned order);
// __free_pages_ok(): frees such a block straight to the buddy lists, past the per-CPU lists.
void __free_pages_ok(Kernel& k, struct page* page, unsigned order, fpi_t fpi);

void get_page(Kernel& k, struct page* page);
void put_page(Kernel& k, struct page* page);
struct page* compound_head(Kernel& k, struct page* page);

// split_page(): an order-n non-compound block becomes 2^n order-0 pages, each with refcount 1.
void split_page(Kernel& k, struct page* page, unsigned order);
void* alloc_pages_exact(Kernel& k, size_t size, gfp_t gfp);
void free_pages_exact(Kernel& k, void* virt, size_t size);

// Checks that the head page's allocation is live and of `order`; false if it would be a bad free
// (and reports it).
bool check_free_page(Kernel& k, struct page* page, unsigned order);

} // namespace kmm
