// The page cache (see pagecache.h) and its part of the public API (kmm/pressure.h).
//
// New pages are allocated with the mapping's default gfp (GFP_HIGHUSER_MOVABLE), filled with a
// pattern standing for the file data, added to the inactive file list and then marked accessed,
// as filemap_read() and generic_perform_write() do: one access leaves a page inactive and
// referenced, a second one activates it.
#include "pagecache.h"

#include <cerrno>
#include <cstring>

#include "buddy.h"
#include "bug.h"
#include "kernel.h"
#include "kmm/pressure.h"
#include "page_alloc.h"
#include "pressure_call.h"
#include "vmscan.h"

namespace kmm {

void pagecache_init(Kernel& k) { k.pagecache = std::make_unique<PageCache>(); }

static File* find_file_Locked(Kernel& k, int ino) {
  auto it = k.pagecache->files.find(ino);
  return it == k.pagecache->files.end() ? nullptr : it->second.get();
}

// folio_mark_accessed()
static void mark_page_accessed_Locked(Kernel& k, struct page* p) {
  if (!(p->flags & PG_referenced)) {
    p->flags |= PG_referenced;
  } else if (!(p->flags & PG_active)) {
    lru_del_Locked(k, p);
    lru_add_Locked(k, p, LRU_ACTIVE_FILE);
    p->flags &= ~PG_referenced;
    k.count_event(PGACTIVATE);
  }
}

static void set_page_dirty_Locked(Kernel& k, File& f, struct page* p) {
  if (p->flags & PG_dirty) return;
  p->flags |= PG_dirty;
  f.nr_dirty++;
  k.mod_node_page_state(NR_FILE_DIRTY, 1);
  page_zone(k, k.mem.page_to_pfn(p)).vm_stat[NR_ZONE_WRITE_PENDING].fetch_add(1);
}

void clear_page_dirty_Locked(Kernel& k, struct page* p, bool written) {
  if (!(p->flags & PG_dirty)) return;
  File& f = *static_cast<File*>(p->mapped.mapping);
  p->flags &= ~PG_dirty;
  f.nr_dirty--;
  k.mod_node_page_state(NR_FILE_DIRTY, -1);
  page_zone(k, k.mem.page_to_pfn(p)).vm_stat[NR_ZONE_WRITE_PENDING].fetch_sub(1);
  if (written) k.count_event(PGPGOUT, PAGE_SIZE_ >> 10); // pgpgout is in KiB
}

static unsigned long writeback_file_Locked(Kernel& k, File& f) {
  unsigned long n = 0;
  for (auto& [index, pfn] : f.pages) {
    struct page* p = k.mem.pfn_to_page(pfn);
    if (p->flags & PG_dirty) {
      clear_page_dirty_Locked(k, p, true);
      n++;
    }
  }
  return n;
}

unsigned long writeback_all_Locked(Kernel& k) {
  unsigned long n = 0;
  for (auto& [ino, f] : k.pagecache->files)
    if (f->nr_dirty) n += writeback_file_Locked(k, *f);
  return n;
}

void delete_from_page_cache_Locked(Kernel& k, struct page* p) {
  File& f = *static_cast<File*>(p->mapped.mapping);
  clear_page_dirty_Locked(k, p, false); // truncation cancels the dirty state
  lru_del_Locked(k, p);
  f.pages.erase(p->mapped.index);
  k.mod_node_page_state(NR_FILE_PAGES, -1);
  p->flags &= ~PG_referenced;
  p->mapped.mapping = nullptr;
  p->mapped.index = 0;
  p->owner_data = 0;
  // A pinned page stays with whoever pinned it, no longer page cache.
  if (p->_refcount > 1) p->owner = PageOwner::Kernel;
}

// The bytes a page of file `ino` at `index` holds: a recognisable pattern (migration tests
// compare it).
static void fill_file_page(Kernel& k, struct page* p, int ino, uint64_t index) {
  uint64_t* words = static_cast<uint64_t*>(k.mem.page_address(p));
  uint64_t tag = (uint64_t(ino) << 40) ^ index ^ 0x6b6d6d0000000000ull;
  for (size_t i = 0; i < PAGE_SIZE_ / sizeof(uint64_t); i += 64) words[i] = tag;
}

static long file_access(Kernel& k, int ino, unsigned long index, unsigned long pages, bool dirty) {
  Reclaim& r = *k.reclaim;
  {
    std::lock_guard<std::mutex> guard(r.lru_lock);
    if (!find_file_Locked(k, ino)) return -ENOENT;
  }
  long cached = 0;
  for (unsigned long i = index; i < index + pages; i++) {
    {
      std::lock_guard<std::mutex> guard(r.lru_lock);
      File* f = find_file_Locked(k, ino);
      if (!f) break;
      auto it = f->pages.find(i);
      if (it != f->pages.end()) {
        struct page* p = k.mem.pfn_to_page(it->second);
        mark_page_accessed_Locked(k, p);
        if (dirty) set_page_dirty_Locked(k, *f, p);
        cached++;
        continue;
      }
    }
    // Not cached: allocate outside lru_lock (the allocation may reclaim).
    struct page* p = __alloc_pages(k, GFP_HIGHUSER_MOVABLE, 0, PageOwner::PageCache);
    if (!p) break;
    fill_file_page(k, p, ino, i);
    std::lock_guard<std::mutex> guard(r.lru_lock);
    File* f = find_file_Locked(k, ino);
    if (!f || f->pages.count(i)) { // deleted, or cached by another CPU meanwhile
      __free_pages(k, p, 0);
      if (!f) break;
      continue;
    }
    p->mapped.mapping = f;
    p->mapped.index = i;
    p->owner_data = static_cast<uint32_t>(ino);
    f->pages[i] = static_cast<uint32_t>(k.mem.page_to_pfn(p));
    k.mod_node_page_state(NR_FILE_PAGES, 1);
    lru_add_Locked(k, p, LRU_INACTIVE_FILE);
    mark_page_accessed_Locked(k, p);
    if (dirty) set_page_dirty_Locked(k, *f, p);
    if (!dirty) k.count_event(PGPGIN, PAGE_SIZE_ >> 10);
    cached++;
  }
  return cached;
}

void pagecache_validate(Kernel& k, std::vector<std::string>& errors) {
  long total = 0, dirty = 0;
  for (auto& [ino, f] : k.pagecache->files) {
    unsigned long nr_dirty = 0;
    for (auto& [index, pfn] : f->pages) {
      const struct page& p = k.mem.mem_map[pfn];
      if (!(p.flags & PG_alloc) || p.owner != PageOwner::PageCache || p.mapped.mapping != f.get() ||
          p.mapped.index != index || !(p.flags & PG_lru))
        errors.push_back(strprintf("pagecache: file %d index %lu: pfn 0x%x is not its page "
                                   "(flags 0x%x owner %s)",
                                   ino, static_cast<unsigned long>(index), pfn, p.flags,
                                   page_owner_name(p.owner)));
      if (p.flags & PG_dirty) nr_dirty++;
    }
    if (nr_dirty != f->nr_dirty)
      errors.push_back(strprintf("pagecache: file %d has %lu dirty pages, nr_dirty says %lu", ino,
                                 nr_dirty, f->nr_dirty));
    total += static_cast<long>(f->pages.size());
    dirty += static_cast<long>(nr_dirty);
  }
  if (total != k.node_page_state(NR_FILE_PAGES))
    errors.push_back(strprintf("pagecache: files hold %ld pages, nr_file_pages says %ld", total,
                               k.node_page_state(NR_FILE_PAGES)));
  if (dirty != k.node_page_state(NR_FILE_DIRTY))
    errors.push_back(strprintf("pagecache: %ld dirty pages, nr_dirty says %ld", dirty,
                               k.node_page_state(NR_FILE_DIRTY)));
}

// --- public API ----------------------------------------------------------------------------

int file_create(Machine& m, const std::string& name) {
  PressureCall call(m);
  Kernel& k = m.kernel();
  std::lock_guard<std::mutex> guard(k.reclaim->lru_lock);
  auto f = std::make_unique<File>();
  f->ino = k.pagecache->next_ino++;
  f->name = name;
  int ino = f->ino;
  k.pagecache->files[ino] = std::move(f);
  return ino;
}

long file_read(Machine& m, int ino, unsigned long index, unsigned long pages) {
  PressureCall call(m);
  return file_access(m.kernel(), ino, index, pages, false);
}

long file_write(Machine& m, int ino, unsigned long index, unsigned long pages) {
  PressureCall call(m);
  return file_access(m.kernel(), ino, index, pages, true);
}

long writeback(Machine& m, int ino) {
  PressureCall call(m);
  Kernel& k = m.kernel();
  std::lock_guard<std::mutex> guard(k.reclaim->lru_lock);
  if (ino == 0) return static_cast<long>(writeback_all_Locked(k));
  File* f = find_file_Locked(k, ino);
  return f ? static_cast<long>(writeback_file_Locked(k, *f)) : -ENOENT;
}

int file_delete(Machine& m, int ino) {
  PressureCall call(m);
  Kernel& k = m.kernel();
  std::lock_guard<std::mutex> guard(k.reclaim->lru_lock);
  File* f = find_file_Locked(k, ino);
  if (!f) return -ENOENT;
  while (!f->pages.empty()) {
    struct page* p = k.mem.pfn_to_page(f->pages.begin()->second);
    delete_from_page_cache_Locked(k, p);
    put_page(k, p);
  }
  k.pagecache->files.erase(ino);
  return 0;
}

long file_cached_pages(Machine& m, int ino) {
  Kernel& k = m.kernel();
  std::lock_guard<std::mutex> guard(k.reclaim->lru_lock);
  File* f = find_file_Locked(k, ino);
  return f ? static_cast<long>(f->pages.size()) : -ENOENT;
}

} // namespace kmm
