// Page migration of reclaim-layer pages (mm/migrate.c, reduced), for CMA and compaction.
#pragma once

struct page;

namespace kmm {

struct Kernel;

// Moves an Anon or PageCache page to `new_page` (allocated by the caller, order 0, refcount 1):
// copies the 4 KiB contents, moves the owner's reference (the task's page slot or the file's
// index entry) and the LRU position, and the page state (PG_lru, PG_active, PG_referenced,
// PG_dirty), so counters do not change. Afterwards new_page is the owner's page and old_page is
// an unowned allocation (owner Kernel, refcount 1, no links) for the caller to free.
// Returns false and changes nothing if old_page is pinned (refcount > 1, e.g. get_page()),
// is not an order-0 Anon/PageCache page on the LRU, or new_page is not a fresh order-0 page.
bool migrate_page_owner(Kernel& k, struct page* old_page, struct page* new_page);

} // namespace kmm
