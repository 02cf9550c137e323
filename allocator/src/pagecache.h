// The page cache (mm/filemap.c, reduced): files whose pages are cached by index, each page
// clean or dirty, on the file LRU lists. A read or write marks a cached page accessed
// (mark_page_accessed: the first access sets PG_referenced, the second activates); a dirty page
// cannot be reclaimed until it is written back (writeback(), or the flusher that reclaim wakes
// when it finds nothing but dirty pages).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

struct page;

namespace kmm {

struct Kernel;

// Invariants (pagecache_validate): every pfn in pages is an allocated PageCache page on a file
// LRU list whose mapped.mapping is this file and mapped.index its key; nr_dirty == the pages
// with PG_dirty.
struct File {
  int ino = 0;
  std::string name;
  std::map<uint64_t, uint32_t> pages; // index -> pfn (struct address_space's i_pages)
  unsigned long nr_dirty = 0;
};

struct PageCache {
  std::map<int, std::unique_ptr<File>> files; // by inode number; under Reclaim::lru_lock
  int next_ino = 1;
};

void pagecache_init(Kernel& k);
// Takes the page out of its file and off the LRU, fixing the counters; the caller holds lru_lock
// and then drops its reference. Dirty pages must be cleaned first.
void delete_from_page_cache_Locked(Kernel& k, struct page* p);
// Clears PG_dirty with the counters: written back (pgpgout) or cancelled by truncation.
void clear_page_dirty_Locked(Kernel& k, struct page* p, bool written);
// wakeup_flusher_threads(): write back every dirty page. Returns pages written.
unsigned long writeback_all_Locked(Kernel& k);

void pagecache_validate(Kernel& k, std::vector<std::string>& errors);

} // namespace kmm
