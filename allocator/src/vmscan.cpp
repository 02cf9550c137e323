// Page reclaim (see vmscan.h).
//
// Only the file LRU is scanned: without a swap device anonymous pages cannot be reclaimed, so
// get_scan_count() always picks SCAN_FILE, as the kernel does with no swap. A pass scans
// lru_size >> priority pages of each file list in SWAP_CLUSTER_MAX batches; the active list is
// aged only while the inactive list is "low" (inactive * inactive_ratio < active). An inactive
// page is reclaimed if clean and unpinned; a dirty one is activated and, if a batch held nothing
// but dirty pages, the flusher is woken (writeback_all_Locked). Then the shrinkers run.
#include "vmscan.h"

#include <algorithm>
#include <cstring>

#include "buddy.h"
#include "bug.h"
#include "kernel.h"
#include "page_alloc.h"
#include "pagecache.h"
#include "pcp.h"
#include "pfn_list.h"
#include "shrinker.h"
#include "watermark.h"

namespace kmm {

const char* const lru_list_names[NR_LRU_LISTS] = {"inactive_anon", "active_anon", "inactive_file",
                                                  "active_file"};

// PF_MEMALLOC: this thread is reclaiming; an allocation made meanwhile must not reclaim again.
static thread_local int reclaim_depth = 0;

namespace {
struct MemallocScope {
  MemallocScope() { reclaim_depth++; }
  ~MemallocScope() { reclaim_depth--; }
};

// struct scan_control, reduced.
struct scan_control {
  gfp_t gfp_mask = GFP_KERNEL;
  unsigned long nr_to_reclaim = SWAP_CLUSTER_MAX;
  int priority = DEF_PRIORITY;
  bool kswapd = false;
  unsigned long nr_scanned = 0;
  unsigned long nr_reclaimed = 0;
};
} // namespace

// --- LRU lists -------------------------------------------------------------------------------

lru_list page_lru(const struct page* p) {
  int base = p->owner == PageOwner::PageCache ? LRU_INACTIVE_FILE : LRU_INACTIVE_ANON;
  return static_cast<lru_list>(base + ((p->flags & PG_active) ? 1 : 0));
}

// The node counters NR_INACTIVE_ANON.. and zone counters NR_ZONE_INACTIVE_ANON.. follow the
// order of enum lru_list.
static void lru_account(Kernel& k, struct page* p, lru_list l, long delta) {
  k.reclaim->lru.nr[l] += static_cast<unsigned long>(delta);
  k.mod_node_page_state(static_cast<node_stat_item>(NR_INACTIVE_ANON + static_cast<int>(l)), delta);
  page_zone(k, k.mem.page_to_pfn(p))
      .vm_stat[NR_ZONE_INACTIVE_ANON + static_cast<int>(l)]
      .fetch_add(delta);
}

void lru_add_Locked(Kernel& k, struct page* p, lru_list l) {
  p->flags |= PG_lru;
  if (l == LRU_ACTIVE_ANON || l == LRU_ACTIVE_FILE) p->flags |= PG_active;
  else p->flags &= ~PG_active;
  pfn_list_add(k.mem, k.reclaim->lru.lists[l], static_cast<uint32_t>(k.mem.page_to_pfn(p)));
  lru_account(k, p, l, 1);
}

void lru_del_Locked(Kernel& k, struct page* p) {
  lru_list l = page_lru(p);
  pfn_list_del(k.mem, k.reclaim->lru.lists[l], static_cast<uint32_t>(k.mem.page_to_pfn(p)));
  lru_account(k, p, l, -1);
  p->flags &= ~(PG_lru | PG_active);
}

void lru_replace_Locked(Kernel& k, struct page* old_page, struct page* new_page) {
  lru_list l = page_lru(old_page);
  pfn_list& list = k.reclaim->lru.lists[l];
  uint32_t old_pfn = static_cast<uint32_t>(k.mem.page_to_pfn(old_page));
  uint32_t new_pfn = static_cast<uint32_t>(k.mem.page_to_pfn(new_page));
  new_page->lru_prev = old_page->lru_prev;
  new_page->lru_next = old_page->lru_next;
  if (old_page->lru_prev == PFN_NIL) list.head = new_pfn;
  else k.mem.mem_map[old_page->lru_prev].lru_next = new_pfn;
  if (old_page->lru_next == PFN_NIL) list.tail = new_pfn;
  else k.mem.mem_map[old_page->lru_next].lru_prev = new_pfn;
  (void)old_pfn;
  old_page->lru_prev = old_page->lru_next = 0;
  // Same list, but the zones may differ.
  zone& oz = page_zone(k, k.mem.page_to_pfn(old_page));
  zone& nz = page_zone(k, new_pfn);
  if (&oz != &nz) {
    oz.vm_stat[NR_ZONE_INACTIVE_ANON + static_cast<int>(l)].fetch_sub(1);
    nz.vm_stat[NR_ZONE_INACTIVE_ANON + static_cast<int>(l)].fetch_add(1);
  }
}

static void move_to_lru_Locked(Kernel& k, struct page* p, lru_list l) {
  lru_del_Locked(k, p);
  lru_add_Locked(k, p, l);
}

// inactive_is_low(): inactive_ratio = int_sqrt(10 * lru GiB), 1 below 1 GiB.
// Worked example: 4 GiB of file pages -> int_sqrt(40) = 6: keep active <= 6 * inactive.
static bool inactive_is_low_Locked(Kernel& k, lru_list inactive_lru) {
  unsigned long inactive = k.reclaim->lru.nr[inactive_lru];
  unsigned long active = k.reclaim->lru.nr[inactive_lru + 1];
  unsigned long gb = (inactive + active) >> (30 - PAGE_SHIFT_);
  unsigned long ratio = gb ? int_sqrt(10 * gb) : 1;
  return inactive * ratio < active;
}

// shrink_active_list(): move up to nr_to_scan pages from the tail of the active file list to
// the head of the inactive one. Unmapped page-cache pages are always deactivated; PG_referenced
// stays, so one more access re-activates them.
static void shrink_active_list_Locked(Kernel& k, scan_control& sc, unsigned long nr_to_scan) {
  lruvec& lru = k.reclaim->lru;
  unsigned long n = std::min(nr_to_scan, lru.nr[LRU_ACTIVE_FILE]), moved = 0;
  for (; moved < n; moved++) {
    struct page* p = k.mem.pfn_to_page(lru.lists[LRU_ACTIVE_FILE].tail);
    move_to_lru_Locked(k, p, LRU_INACTIVE_FILE);
  }
  (void)sc;
  k.count_event(PGREFILL, moved);
  k.count_event(PGDEACTIVATE, moved);
}

// shrink_inactive_list() + shrink_folio_list(): take up to nr_to_scan pages from the tail.
static void shrink_inactive_list_Locked(Kernel& k, scan_control& sc, unsigned long nr_to_scan) {
  lruvec& lru = k.reclaim->lru;
  unsigned long n = std::min(nr_to_scan, lru.nr[LRU_INACTIVE_FILE]);
  unsigned long reclaimed = 0, dirty = 0, activated = 0;
  uint32_t dirty_pfns[SWAP_CLUSTER_MAX];
  for (unsigned long i = 0; i < n; i++) {
    struct page* p = k.mem.pfn_to_page(lru.lists[LRU_INACTIVE_FILE].tail);
    if (p->flags & PG_dirty) {
      // Reclaim does not write page-cache pages itself: activate and leave them to the flusher.
      move_to_lru_Locked(k, p, LRU_ACTIVE_FILE);
      if (dirty < SWAP_CLUSTER_MAX) dirty_pfns[dirty] = static_cast<uint32_t>(k.mem.page_to_pfn(p));
      dirty++;
      activated++;
    } else if (p->_refcount > 1) {
      move_to_lru_Locked(k, p, LRU_INACTIVE_FILE); // pinned: rotate
    } else {
      delete_from_page_cache_Locked(k, p);
      __free_pages(k, p, 0);
      reclaimed++;
    }
  }
  // A batch of nothing but dirty pages wakes the flusher (wakeup_flusher_threads), which writes
  // back the pages reclaim skipped; they stay active, so clean pages still go first.
  if (n && dirty == n)
    for (unsigned long i = 0; i < std::min(dirty, SWAP_CLUSTER_MAX); i++)
      clear_page_dirty_Locked(k, k.mem.pfn_to_page(dirty_pfns[i]), true);
  k.count_event(sc.kswapd ? PGSCAN_KSWAPD : PGSCAN_DIRECT, n);
  k.count_event(PGSCAN_FILE, n);
  k.count_event(sc.kswapd ? PGSTEAL_KSWAPD : PGSTEAL_DIRECT, reclaimed);
  k.count_event(PGSTEAL_FILE, reclaimed);
  k.count_event(PGACTIVATE, activated);
  sc.nr_scanned += n;
  sc.nr_reclaimed += reclaimed;
}

// shrink_lruvec(): scan each file list lru_size >> priority pages, in SWAP_CLUSTER_MAX batches,
// until nr_to_reclaim pages are reclaimed.
static void shrink_lruvec(Kernel& k, scan_control& sc) {
  Reclaim& r = *k.reclaim;
  unsigned long nr_inactive, nr_active;
  {
    std::lock_guard<std::mutex> guard(r.lru_lock);
    nr_inactive = r.lru.nr[LRU_INACTIVE_FILE] >> sc.priority;
    nr_active = r.lru.nr[LRU_ACTIVE_FILE] >> sc.priority;
  }
  while (nr_inactive || nr_active) {
    std::lock_guard<std::mutex> guard(r.lru_lock);
    if (nr_inactive) {
      unsigned long batch = std::min(nr_inactive, SWAP_CLUSTER_MAX);
      nr_inactive -= batch;
      shrink_inactive_list_Locked(k, sc, batch);
    }
    if (nr_active) {
      unsigned long batch = std::min(nr_active, SWAP_CLUSTER_MAX);
      nr_active -= batch;
      if (inactive_is_low_Locked(k, LRU_INACTIVE_FILE)) shrink_active_list_Locked(k, sc, batch);
    }
    if (sc.nr_reclaimed >= sc.nr_to_reclaim) break;
  }
  std::lock_guard<std::mutex> guard(r.lru_lock);
  if (inactive_is_low_Locked(k, LRU_INACTIVE_FILE))
    shrink_active_list_Locked(k, sc, SWAP_CLUSTER_MAX);
}

static long slab_pages(const Kernel& k) {
  return (k.node_page_state(NR_SLAB_RECLAIMABLE_B) + k.node_page_state(NR_SLAB_UNRECLAIMABLE_B)) >>
         PAGE_SHIFT_;
}

// shrink_node(): the page cache, then the shrinkers; slab pages they gave back count as
// reclaimed (reclaim_state->reclaimed).
static void shrink_node(Kernel& k, scan_control& sc) {
  unsigned long before = sc.nr_reclaimed;
  shrink_lruvec(k, sc);
  long slab_before = slab_pages(k);
  shrink_slab(k, sc.gfp_mask, sc.priority);
  long slab_freed = slab_before - slab_pages(k);
  if (slab_freed > 0) sc.nr_reclaimed += static_cast<unsigned long>(slab_freed);
  // Reclaimed pages sit on this CPU's pcp lists; hand them to the buddy lists so the watermark
  // checks (which count buddy pages only) see them.
  if (sc.nr_reclaimed > before) drain_all_pages(k, nullptr);
  if (sc.nr_reclaimed > before) k.reclaim->kswapd_failures = 0;
}

// --- direct reclaim ----------------------------------------------------------------------

unsigned long reclaim_pages(Kernel& k, gfp_t gfp, unsigned long nr_to_reclaim) {
  if (reclaim_depth > 0) return 0; // PF_MEMALLOC: no recursion
  MemallocScope memalloc;
  scan_control sc;
  sc.gfp_mask = gfp;
  sc.nr_to_reclaim = nr_to_reclaim;
  // do_try_to_free_pages(): priority DEF_PRIORITY down to 0.
  for (sc.priority = DEF_PRIORITY; sc.priority >= 0; sc.priority--) {
    shrink_node(k, sc);
    if (sc.nr_reclaimed >= sc.nr_to_reclaim) break;
  }
  return sc.nr_reclaimed;
}

// The allocator counts allocstall_<zone> before calling this.
unsigned long try_to_free_pages(Kernel& k, gfp_t gfp, unsigned order) {
  (void)order;
  return reclaim_pages(k, gfp, SWAP_CLUSTER_MAX);
}

// --- kswapd --------------------------------------------------------------------------------

bool pgdat_balanced(Kernel& k, unsigned order, int highest_zoneidx) {
  for (int zi = 0; zi <= highest_zoneidx && zi < MAX_NR_ZONES; zi++) {
    zone& z = k.zones[zi];
    if (!z.managed_pages) continue;
    bool ok;
    if (order == 0) {
      ok = zone_watermark_ok(k, z, 0, z.wmark(WMARK_HIGH), highest_zoneidx, 0);
    } else { // the order > 0 check walks the free lists
      std::lock_guard<std::mutex> guard(z.lock);
      ok = zone_watermark_ok(k, z, order, z.wmark(WMARK_HIGH), highest_zoneidx, 0);
    }
    if (ok) return true;
  }
  return false;
}

unsigned long balance_pgdat(Kernel& k, unsigned order, int highest_zoneidx) {
  MemallocScope memalloc;
  Reclaim& r = *k.reclaim;
  k.count_event(PAGEOUTRUN);
  unsigned long total = 0;
  scan_control sc;
  sc.kswapd = true;
  sc.priority = DEF_PRIORITY;
  do {
    if (pgdat_balanced(k, order, highest_zoneidx)) break;
    // kswapd_shrink_node(): reclaim the high watermark's worth of each eligible zone.
    sc.nr_to_reclaim = 0;
    for (int zi = 0; zi <= highest_zoneidx; zi++)
      if (k.zones[zi].managed_pages)
        sc.nr_to_reclaim += std::max(k.zones[zi].wmark(WMARK_HIGH), SWAP_CLUSTER_MAX);
    unsigned long reclaimed_before = sc.nr_reclaimed;
    sc.nr_scanned = 0;
    shrink_node(k, sc);
    unsigned long pass = sc.nr_reclaimed - reclaimed_before;
    total += pass;
    // A high-order wake-up is satisfied at order 0 once enough was reclaimed for compaction.
    if (order && pass >= (2ul << order)) order = 0;
    bool raise_priority = sc.nr_scanned < sc.nr_to_reclaim;
    if (raise_priority || !pass) sc.priority--;
  } while (sc.priority >= 1);
  if (!total) r.kswapd_failures++;
  return total;
}

static bool in_atomic_context(Kernel& k) {
  const CpuState& c = k.cpu();
  return c.preempt_count > 0 || c.irq_disable_depth > 0 || c.in_irq > 0;
}

// Takes the pending wake-up and runs balance_pgdat (sync mode, on the calling CPU).
static unsigned long kswapd_run_pending(Kernel& k) {
  Reclaim& r = *k.reclaim;
  unsigned order;
  int zi;
  {
    std::lock_guard<std::mutex> guard(r.kswapd_lock);
    if (r.kswapd_running) return 0;
    order = r.kswapd_order;
    zi = r.kswapd_highest_zoneidx;
    r.kswapd_pending = false;
    r.kswapd_order = 0;
    r.kswapd_highest_zoneidx = 0;
    r.kswapd_running = true;
  }
  unsigned long n = balance_pgdat(k, order, zi);
  std::lock_guard<std::mutex> guard(r.kswapd_lock);
  r.kswapd_running = false;
  return n;
}

void wakeup_kswapd(Kernel& k, zone& z, gfp_t gfp, unsigned order) {
  (void)gfp;
  if (!z.managed_pages || !k.reclaim) return;
  Reclaim& r = *k.reclaim;
  int zi = static_cast<int>(z.idx);
  {
    std::lock_guard<std::mutex> guard(r.kswapd_lock);
    r.kswapd_order = std::max(r.kswapd_order, order);
    r.kswapd_highest_zoneidx = std::max(r.kswapd_highest_zoneidx, zi);
    if (r.kswapd_running) return; // not sleeping: it sees the new request when it looks again
  }
  // Hopeless node (kswapd_failures) or nothing to do: stay asleep.
  if (r.kswapd_failures >= MAX_RECLAIM_FAILURES || pgdat_balanced(k, order, zi)) return;
  {
    std::lock_guard<std::mutex> guard(r.kswapd_lock);
    r.kswapd_pending = true;
  }
  if (r.threaded) {
    r.kswapd_wait.notify_one();
    return;
  }
  // Sync mode: kswapd runs now on this CPU, unless this CPU may not sleep or is reclaiming
  // already; then the wake-up waits for the next one or for kswapd_run().
  if (in_atomic_context(k) || reclaim_depth > 0) return;
  kswapd_run_pending(k);
}

static constexpr int KSWAPD_PID = 35; // a kernel thread's pid, as kswapd0 has on a small box

static void kswapd_thread(Kernel* kp) {
  Kernel& k = *kp;
  Reclaim& r = *k.reclaim;
  Kernel::current = kp;
  Kernel::current_cpu = static_cast<int>(k.nr_cpus); // the hidden CPU slot
  k.cpu().current = TaskRef{KSWAPD_PID, "kswapd0"};
  std::unique_lock<std::mutex> lock(r.kswapd_lock);
  for (;;) {
    r.kswapd_wait.wait(lock, [&] { return r.kswapd_pending || r.kswapd_stop; });
    if (r.kswapd_stop) break;
    unsigned order = r.kswapd_order;
    int zi = r.kswapd_highest_zoneidx;
    r.kswapd_pending = false;
    r.kswapd_order = 0;
    r.kswapd_highest_zoneidx = 0;
    r.kswapd_running = true;
    lock.unlock();
    balance_pgdat(k, order, zi);
    lock.lock();
    r.kswapd_running = false;
    r.kswapd_idle.notify_all();
  }
  r.kswapd_running = false;
  r.kswapd_idle.notify_all();
}

void kswapd_start(Kernel& k) {
  Reclaim& r = *k.reclaim;
  r.threaded = true;
  r.thread = std::thread(kswapd_thread, &k);
}

void kswapd_stop(Kernel& k) {
  if (!k.reclaim || !k.reclaim->thread.joinable()) return;
  Reclaim& r = *k.reclaim;
  {
    std::lock_guard<std::mutex> guard(r.kswapd_lock);
    r.kswapd_stop = true;
  }
  r.kswapd_wait.notify_all();
  r.thread.join();
}

void kswapd_wait_idle_k(Kernel& k) {
  Reclaim& r = *k.reclaim;
  if (!r.threaded) return;
  std::unique_lock<std::mutex> lock(r.kswapd_lock);
  r.kswapd_idle.wait(lock, [&] { return !r.kswapd_pending && !r.kswapd_running; });
}

unsigned long kswapd_step(Kernel& k) {
  Reclaim& r = *k.reclaim;
  if (r.threaded) {
    kswapd_wait_idle_k(k);
    return 0;
  }
  bool pending;
  {
    std::lock_guard<std::mutex> guard(r.kswapd_lock);
    pending = r.kswapd_pending;
  }
  if (!pending) return 0;
  return kswapd_run_pending(k);
}

// --- drop_caches ---------------------------------------------------------------------------

unsigned long drop_pagecache(Kernel& k) {
  Reclaim& r = *k.reclaim;
  std::lock_guard<std::mutex> guard(r.lru_lock);
  unsigned long freed = 0;
  for (lru_list l : {LRU_INACTIVE_FILE, LRU_ACTIVE_FILE}) {
    // invalidate_mapping_pages(): skip dirty and pinned pages.
    uint32_t pfn = r.lru.lists[l].head;
    while (pfn != PFN_NIL) {
      struct page* p = k.mem.pfn_to_page(pfn);
      pfn = p->lru_next;
      if ((p->flags & PG_dirty) || p->_refcount > 1) continue;
      delete_from_page_cache_Locked(k, p);
      __free_pages(k, p, 0);
      freed++;
    }
  }
  return freed;
}

// --- validate ------------------------------------------------------------------------------

void lru_validate(Kernel& k, std::vector<std::string>& errors) {
  Reclaim& r = *k.reclaim;
  for (int l = 0; l < NR_LRU_LISTS; l++) {
    unsigned long n = 0;
    uint32_t prev = PFN_NIL;
    for (uint32_t pfn = r.lru.lists[l].head; pfn != PFN_NIL; pfn = k.mem.mem_map[pfn].lru_next) {
      const struct page& p = k.mem.mem_map[pfn];
      if (++n > k.mem.nr_pages) {
        errors.push_back(strprintf("lru: %s list is cyclic", lru_list_names[l]));
        break;
      }
      if (p.lru_prev != prev)
        errors.push_back(
            strprintf("lru: %s: pfn 0x%x has a bad back link", lru_list_names[l], pfn));
      prev = pfn;
      bool file = l >= LRU_INACTIVE_FILE, active = l & 1;
      if (!(p.flags & PG_alloc) || !(p.flags & PG_lru) || bool(p.flags & PG_active) != active ||
          p.owner != (file ? PageOwner::PageCache : PageOwner::Anon))
        errors.push_back(strprintf("lru: %s: pfn 0x%x has flags 0x%x owner %s", lru_list_names[l],
                                   pfn, p.flags, page_owner_name(p.owner)));
    }
    if (prev != r.lru.lists[l].tail)
      errors.push_back(strprintf("lru: %s: tail is not the last page", lru_list_names[l]));
    if (n != r.lru.nr[l])
      errors.push_back(
          strprintf("lru: %s holds %lu pages, nr says %lu", lru_list_names[l], n, r.lru.nr[l]));
    long counter =
        k.node_page_state(static_cast<node_stat_item>(NR_INACTIVE_ANON + static_cast<int>(l)));
    if (static_cast<long>(n) != counter)
      errors.push_back(strprintf("lru: %s holds %lu pages, node counter nr_%s says %ld",
                                 lru_list_names[l], n, lru_list_names[l], counter));
  }
}

void reclaim_init(Kernel& k) {
  k.reclaim = std::make_unique<Reclaim>();
  k.hooks.wakeup_kswapd = wakeup_kswapd;
  k.hooks.try_to_free_pages = try_to_free_pages;
}

} // namespace kmm
