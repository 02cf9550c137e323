// Migration of Anon and PageCache pages (see migrate.h): what migrate_folio_move() and
// folio_migrate_mapping() do for an unmapped page, under lru_lock so the owner cannot drop or
// reclaim the page meanwhile.
#include "migrate.h"

#include <cstring>

#include "buddy.h"
#include "kernel.h"
#include "pagecache.h"
#include "task.h"
#include "vmscan.h"

namespace kmm {

bool migrate_page_owner(Kernel& k, struct page* old_page, struct page* new_page) {
  if (!k.reclaim || old_page == new_page) return false;
  std::lock_guard<std::mutex> guard(k.reclaim->lru_lock);
  const uint32_t order0_alloc = PG_alloc;
  if ((old_page->flags & (PG_alloc | PG_head | PG_tail)) != order0_alloc ||
      old_page->private_ != 0 || !(old_page->flags & PG_lru) ||
      (old_page->owner != PageOwner::Anon && old_page->owner != PageOwner::PageCache))
    return false;
  if (old_page->_refcount != 1) return false; // pinned (get_page): cannot move
  if ((new_page->flags & ~PG_poisoned) != order0_alloc || new_page->private_ != 0 ||
      new_page->_refcount != 1)
    return false;

  std::memcpy(k.mem.page_address(new_page), k.mem.page_address(old_page), PAGE_SIZE_);
  const uint32_t moved = PG_lru | PG_active | PG_referenced | PG_dirty;
  new_page->flags = PG_alloc | (old_page->flags & moved);
  new_page->owner = old_page->owner;
  new_page->owner_data = old_page->owner_data;
  new_page->mapped = old_page->mapped;
  lru_replace_Locked(k, old_page, new_page);

  const uint32_t new_pfn = static_cast<uint32_t>(k.mem.page_to_pfn(new_page));
  if (old_page->owner == PageOwner::Anon) {
    static_cast<Task*>(old_page->mapped.mapping)->anon[old_page->mapped.index] = new_pfn;
  } else {
    static_cast<File*>(old_page->mapped.mapping)->pages[old_page->mapped.index] = new_pfn;
    if (old_page->flags & PG_dirty) { // the write-pending count follows the page's zone
      page_zone(k, k.mem.page_to_pfn(old_page)).vm_stat[NR_ZONE_WRITE_PENDING].fetch_sub(1);
      page_zone(k, new_pfn).vm_stat[NR_ZONE_WRITE_PENDING].fetch_add(1);
    }
  }
  old_page->flags = PG_alloc;
  old_page->owner = PageOwner::Kernel;
  old_page->owner_data = 0;
  old_page->mapped.mapping = nullptr;
  old_page->mapped.index = 0;
  return true;
}

} // namespace kmm
