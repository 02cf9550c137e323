// CMA, the contiguous memory allocator (mm/cma.c, mm/page_isolation.c, alloc_contig_range in
// mm/page_alloc.c): `cma=SIZE[@BASE]` reserves MIGRATE_CMA pageblocks at boot; movable
// allocations borrow them; cma_alloc() isolates a range, migrates the movable pages out and hands
// the range over; cma_release() gives it back.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

struct page;

struct cma {
  // Invariants: base_pfn and count are pageblock aligned and lie in one zone; every pageblock of
  // the range is MIGRATE_CMA (or MIGRATE_ISOLATE during cma_alloc); bit i of bitmap is set iff
  // page base_pfn + i has been handed out by cma_alloc (order_per_bit is 0).
  std::string name;
  unsigned long base_pfn = 0;
  unsigned long count = 0; // pages
  unsigned order_per_bit = 0;
  std::vector<bool> bitmap;        // one bit per page
  std::mutex lock;                 // the bitmap
  std::mutex alloc_mutex;          // one alloc_contig_range at a time (cma_mutex)
  unsigned long alloc_success = 0; // pages, /sys/kernel/mm/cma/<name>/alloc_pages_success
  unsigned long alloc_fail = 0;
  unsigned long release_success = 0;
};

namespace kmm {

struct Kernel;

struct CmaState {
  std::vector<std::unique_ptr<struct cma>> areas;
  struct cma* default_area = nullptr; // dma_contiguous_default_area
  unsigned long totalcma_pages = 0;
};

// Parses cma= and reserves the area: sets the pageblocks to MIGRATE_CMA. Runs before the boot
// memory is handed to the buddy allocator, so the free pages land on the CMA lists. Throws
// BootError on a bad or impossible reservation.
void cma_reserve(Kernel& k);
void register_cma_procfs(Kernel& k);

struct page* cma_alloc(Kernel& k, struct cma* cma, unsigned long count, unsigned align,
                       bool no_warn);
bool cma_release(Kernel& k, struct cma* cma, const struct page* pages, unsigned long count);

// alloc_contig_range(): isolate [start, end), migrate movable pages out, take the range off the
// free lists. 0 or -EBUSY / -ENOMEM. free_contig_range() gives each page back.
int alloc_contig_range(Kernel& k, unsigned long start, unsigned long end);
void free_contig_range(Kernel& k, unsigned long pfn, unsigned long nr);

// Self-check for kmm::validate: bitmap equals page states, nothing unmovable inside CMA.
void cma_validate(Kernel& k, std::vector<std::string>& errors);

} // namespace kmm
