// The page allocator's entry points (see page_alloc.h).
//
// Allocation: __alloc_pages -> get_page_from_freelist (fast path, LOW watermark, zonelist from
// the highest allowed zone down) -> __alloc_pages_slowpath (MIN watermark and reserves, kswapd
// wake-up, direct reclaim, drain pcp, OOM) -> warn_alloc on failure.
// Free: __free_pages -> refcount -> free_pages_prepare (checks, poison, init_on_free) -> the
// CPU's pcp list for small orders, the buddy lists otherwise.
//
// One kmm rule the kernel does not have: a request the kernel would retry forever waiting for
// another task to free memory ("too small to fail", __GFP_NOFAIL) fails after
// MAX_RECLAIM_RETRIES rounds without progress, with the allocation-failure warning. A simulated
// machine has nobody else to free memory, so waiting would hang the host.
#include "page_alloc.h"

#include <algorithm>
#include <cstring>

#include "buddy.h"
#include "bug.h"
#include "kasan.h"
#include "kasan_asan.h"
#include "kernel.h"
#include "pcp.h"
#include "watermark.h"

namespace kmm {

inline constexpr int MAX_RECLAIM_RETRIES = 16;
inline constexpr uint8_t PAGE_POISON = 0xaa;

int gfp_zone(gfp_t gfp) {
  // GFP_ZONE_TABLE for x86_64 without HIGHMEM; two zone modifiers at once are GFP_ZONE_BAD.
  switch (gfp & (__GFP_DMA | __GFP_HIGHMEM | __GFP_DMA32 | __GFP_MOVABLE)) {
  case 0: return ZONE_NORMAL;
  case __GFP_DMA: return ZONE_DMA;
  case __GFP_DMA32: return ZONE_DMA32;
  case __GFP_HIGHMEM: return ZONE_NORMAL;
  case __GFP_MOVABLE: return ZONE_NORMAL;
  case __GFP_MOVABLE | __GFP_HIGHMEM: return ZONE_MOVABLE;
  case __GFP_MOVABLE | __GFP_DMA: return ZONE_DMA;
  case __GFP_MOVABLE | __GFP_DMA32: return ZONE_DMA32;
  default: return -1;
  }
}

int gfp_migratetype(gfp_t gfp) {
  return static_cast<int>((gfp & (__GFP_RECLAIMABLE | __GFP_MOVABLE)) >> 3);
}

// might_alloc(): a blocking allocation from atomic context.
static void might_alloc(Kernel& k, gfp_t gfp) {
  if (!gfpflags_allow_blocking(gfp)) return;
  const CpuState& c = k.cpu();
  if (c.preempt_count > 0 || c.irq_disable_depth > 0 || c.in_irq > 0)
    report_sleep_in_atomic(k, "include/linux/sched/mm.h");
}

// --- struct page preparation -------------------------------------------------------------

static void prep_compound_page(Kernel& k, unsigned long pfn, unsigned order) {
  struct page* head = k.mem.pfn_to_page(pfn);
  head->flags |= PG_head;
  head->compound_order = static_cast<uint8_t>(order);
  for (unsigned long i = 1; i < (1ul << order); i++) {
    struct page* t = head + i;
    t->flags = PG_tail;
    t->compound_head = static_cast<uint32_t>(pfn);
  }
}

// check_poison_mem(): a freed page must still hold PAGE_POISON in every byte.
static void check_page_poison(Kernel& k, struct page* p) {
  const uint8_t* mem = static_cast<const uint8_t*>(k.mem.page_address(p));
  size_t first = PAGE_SIZE_, last = 0;
  for (size_t i = 0; i < PAGE_SIZE_; i++)
    if (mem[i] != PAGE_POISON) {
      first = std::min(first, i);
      last = i;
    }
  if (first == PAGE_SIZE_) return;
  uint8_t x = mem[first] ^ PAGE_POISON;
  bool single_bit = first == last && (x & (x - 1)) == 0;
  report_page_poison(k, p, first, last - first + 1, single_bit);
}

static void prep_new_page(Kernel& k, unsigned long pfn, unsigned order, gfp_t gfp,
                          PageOwner owner) {
  struct page* p = k.mem.pfn_to_page(pfn);
  const unsigned long n = 1ul << order;
  // Host bytes a previous machine left become what this one has there (physmem.h). A pristine
  // page holds RAM's boot fill: PAGE_POISON under page_poison, else zero.
  const bool stale = k.mem.has_stale(pfn, n);
  if (stale && k.params.page_poison) { // the poison check reads them
    KasanMetadataAccess scope(k.mem.page_address(p), n << PAGE_SHIFT_); // free pages are poisoned
    k.mem.clean_stale(pfn, n);
  }
  if (k.params.page_poison) {
    KasanMetadataAccess scope(k.mem.page_address(p), n << PAGE_SHIFT_); // free pages are poisoned
    for (unsigned long i = 0; i < n; i++)
      if (!k.mem.pristine(pfn + i)) check_page_poison(k, p + i);
  }
  p->flags = PG_alloc;
  p->private_ = order;
  p->_refcount = 1;
  p->owner = owner;
  p->owner_data = 0;
  std::memset(p->words, 0, sizeof p->words);
  kasan_alloc_pages(k, p, order);
  const bool zero = (gfp & __GFP_ZERO) || k.params.init_on_alloc;
  if (zero) {
    // Zeroed whatever they hold (a stale page is not pristine): no cleaning first.
    auto* mem = static_cast<uint8_t*>(k.mem.page_address(p));
    for (unsigned long i = 0; i < n; i++)
      if (k.mem.fill != 0 || !k.mem.pristine(pfn + i))
        std::memset(mem + (i << PAGE_SHIFT_), 0, PAGE_SIZE_);
    if (stale) k.mem.forget_stale(pfn, n);
  } else if (stale) {
    k.mem.clean_stale(pfn, n); // accessible now; a no-op if cleaned above
  }
  // The new owner may write any byte, unless it marks what it writes (kernel.h): then the pages
  // hold the fill still, or zeroes, which are the fill on all RAM but page_poison's.
  if (owner != PageOwner::Kernel || !k.kernel_page_writes_marked.load(std::memory_order_relaxed) ||
      (zero && k.mem.fill != 0))
    k.mem.mark_written(pfn, n);
  if ((gfp & __GFP_COMP) && order) prep_compound_page(k, pfn, order);
}

// --- allocation ----------------------------------------------------------------------------

static void count_pgalloc(Kernel& k, const zone& z, unsigned order) {
  k.count_event(static_cast<vm_event_item>(PGALLOC_DMA + static_cast<int>(z.idx)), 1ul << order);
}

// reserve_highatomic_pageblock(): after a high-order atomic allocation, keep its pageblock for
// such requests (at most ~1% of the zone plus one block).
static void reserve_highatomic_pageblock(Kernel& k, zone& z, unsigned long pfn) {
  unsigned long max_managed = z.managed_pages / 100 + pageblock_nr_pages;
  std::lock_guard<std::mutex> guard(z.lock);
  if (z.nr_reserved_highatomic >= max_managed) return;
  int mt = k.mem.get_pageblock_migratetype(pfn);
  if (mt == MIGRATE_HIGHATOMIC || mt == MIGRATE_ISOLATE || mt == MIGRATE_CMA) return;
  if (!pageblock_within_zone(z, pfn)) return; // move_freepages_block() would refuse it
  z.nr_reserved_highatomic += pageblock_nr_pages;
  k.mem.set_pageblock_migratetype(pfn, MIGRATE_HIGHATOMIC);
  move_freepages_block(k, z, pfn, MIGRATE_HIGHATOMIC);
}

// unreserve_highatomic_pageblock(): give reserved blocks back before failing or OOM-killing.
static bool unreserve_highatomic_pageblock(Kernel& k, int highest_zoneidx, int mt, bool force) {
  bool ret = false;
  for (int zi = highest_zoneidx; zi >= 0; zi--) {
    zone& z = k.zones[zi];
    if (!force && z.nr_reserved_highatomic <= pageblock_nr_pages) continue;
    std::lock_guard<std::mutex> guard(z.lock);
    for (unsigned o = 0; o <= MAX_PAGE_ORDER_ && !ret; o++) {
      uint32_t pfn = z.free_area_[o].free_list[MIGRATE_HIGHATOMIC].head;
      if (pfn == PFN_NIL) continue;
      if (k.mem.get_pageblock_migratetype(pfn) == MIGRATE_HIGHATOMIC) {
        z.nr_reserved_highatomic -= std::min(pageblock_nr_pages, z.nr_reserved_highatomic);
        k.mem.set_pageblock_migratetype(pfn, mt);
      }
      move_freepages_block(k, z, pfn, mt);
      ret = true;
    }
    if (ret) break;
  }
  return ret;
}

static unsigned long rmqueue_buddy(Kernel& k, zone& z, unsigned order, int mt,
                                   unsigned alloc_flags) {
  std::lock_guard<std::mutex> guard(z.lock);
  unsigned long pfn = PFN_NIL;
  if (order > 0 && (alloc_flags & ALLOC_HIGHATOMIC))
    pfn = __rmqueue_smallest(k, z, order, MIGRATE_HIGHATOMIC);
  if (pfn == PFN_NIL) {
    pfn = __rmqueue(k, z, order, mt, alloc_flags);
    if (pfn == PFN_NIL && (alloc_flags & (ALLOC_OOM | ALLOC_HIGHATOMIC)))
      pfn = __rmqueue_smallest(k, z, order, MIGRATE_HIGHATOMIC);
  }
  return pfn;
}

static unsigned long rmqueue(Kernel& k, zone& z, unsigned order, int mt, unsigned alloc_flags) {
  unsigned long pfn = PFN_NIL;
  // The Movable pcp list may hold CMA pages: only CMA-capable requests use it.
  if (pcp_allowed_order(order) && k.params.pcp &&
      ((alloc_flags & ALLOC_CMA) || mt != MIGRATE_MOVABLE))
    pfn = rmqueue_pcplist(k, z, order, mt, alloc_flags);
  if (pfn == PFN_NIL) pfn = rmqueue_buddy(k, z, order, mt, alloc_flags);
  if (pfn != PFN_NIL) count_pgalloc(k, z, order);
  return pfn;
}

// alloc_flags_nofragment(): a request whose preferred zone is Normal (with DMA32 below it) first
// refuses to mix pageblocks, falling back to lower zones before fragmenting.
static unsigned alloc_flags_nofragment(Kernel& k, int preferred, gfp_t gfp) {
  unsigned flags = (gfp & __GFP_KSWAPD_RECLAIM) ? unsigned(ALLOC_KSWAPD) : 0u;
  if (preferred == ZONE_NORMAL && k.zones[ZONE_DMA32].populated()) flags |= ALLOC_NOFRAGMENT;
  return flags;
}

static int preferred_zone(Kernel& k, int highest_zoneidx) {
  for (int zi = highest_zoneidx; zi >= 0; zi--)
    if (k.zones[zi].populated()) return zi;
  return -1;
}

// The watermark check of get_page_from_freelist(). For order > 0 __zone_watermark_ok() walks
// the free lists, which change under zone->lock; the kernel reads them racily, a C++ program may
// not (TSan reports it), so that walk takes the lock. Order 0 reads only the atomic counters.
static bool zone_watermark_ok_free_lists(Kernel& k, zone& z, unsigned order, unsigned long mark,
                                         int highest_zoneidx, unsigned alloc_flags) {
  if (order == 0) return zone_watermark_ok(k, z, 0, mark, highest_zoneidx, alloc_flags);
  std::lock_guard<std::mutex> guard(z.lock);
  return zone_watermark_ok(k, z, order, mark, highest_zoneidx, alloc_flags);
}

static unsigned long get_page_from_freelist(Kernel& k, gfp_t gfp, unsigned order,
                                            unsigned alloc_flags, int highest_zoneidx, int mt,
                                            PageOwner owner) {
  for (;;) {
    for (int zi = highest_zoneidx; zi >= 0; zi--) {
      zone& z = k.zones[zi];
      if (!z.managed_pages) continue;
      if (!(alloc_flags & ALLOC_NO_WATERMARKS)) {
        unsigned long mark = z.wmark(alloc_flags & ALLOC_WMARK_MASK);
        if (!zone_watermark_ok_free_lists(k, z, order, mark, highest_zoneidx, alloc_flags))
          continue;
      }
      unsigned long pfn = rmqueue(k, z, order, mt, alloc_flags);
      if (pfn == PFN_NIL) continue;
      prep_new_page(k, pfn, order, gfp, owner);
      if ((alloc_flags & ALLOC_HIGHATOMIC) && order) reserve_highatomic_pageblock(k, z, pfn);
      return pfn;
    }
    if (!(alloc_flags & ALLOC_NOFRAGMENT)) return PFN_NIL;
    alloc_flags &= ~ALLOC_NOFRAGMENT;
  }
}

static unsigned gfp_to_alloc_flags(gfp_t gfp, unsigned order) {
  unsigned flags = ALLOC_WMARK_MIN | ALLOC_CPUSET;
  if (gfp & __GFP_HIGH) flags |= ALLOC_MIN_RESERVE;
  if (gfp & __GFP_KSWAPD_RECLAIM) flags |= ALLOC_KSWAPD;
  if (!(gfp & __GFP_DIRECT_RECLAIM)) {
    if (!(gfp & __GFP_NOMEMALLOC)) {
      flags |= ALLOC_NON_BLOCK;
      if (order > 0 && (flags & ALLOC_MIN_RESERVE)) flags |= ALLOC_HIGHATOMIC;
    }
    if (flags & ALLOC_MIN_RESERVE) flags &= ~ALLOC_CPUSET;
  }
  if (gfp_migratetype(gfp) == MIGRATE_MOVABLE) flags |= ALLOC_CMA;
  return flags;
}

static void wake_all_kswapds(Kernel& k, gfp_t gfp, unsigned order, int highest_zoneidx) {
  for (int zi = highest_zoneidx; zi >= 0; zi--) {
    zone& z = k.zones[zi];
    if (!z.managed_pages) continue;
    k.kswapd_wakeups++;
    if (k.hooks.wakeup_kswapd) k.hooks.wakeup_kswapd(k, z, gfp, order);
    break; // one node: kswapd is woken once, for the preferred zone
  }
}

// should_reclaim_retry(): worth another round if some zone would pass the min watermark with
// its free and reclaimable pages, and we have not gone MAX_RECLAIM_RETRIES rounds for nothing.
static bool should_reclaim_retry(Kernel& k, unsigned order, int highest_zoneidx,
                                 unsigned alloc_flags, unsigned long progress, int* no_progress,
                                 int mt) {
  if (progress && order <= PAGE_ALLOC_COSTLY_ORDER) *no_progress = 0;
  else (*no_progress)++;
  if (*no_progress > MAX_RECLAIM_RETRIES)
    return unreserve_highatomic_pageblock(k, highest_zoneidx, mt, true);
  if (!progress) return false; // nothing reclaimable here: retrying cannot help
  for (int zi = highest_zoneidx; zi >= 0; zi--) {
    zone& z = k.zones[zi];
    if (!z.managed_pages) continue;
    if (zone_watermark_ok_free_lists(k, z, order, z._watermark[WMARK_MIN], highest_zoneidx,
                                     alloc_flags))
      return true;
  }
  return false;
}

// The OOM killer entry when no reclaim layer installed one: with no user tasks there is nothing
// to kill, which the kernel reports and then panics on.
static bool no_oom_killer(Kernel& k, gfp_t gfp, unsigned order) {
  std::string t = strprintf("%s invoked oom-killer: gfp_mask=%#x(%s), order=%u, oom_score_adj=0\n",
                            k.cpu().current.comm.c_str(), gfp, gfp_names(gfp).c_str(), order);
  t += cpu_line(k) + show_mem(k);
  t += "Tasks state (memory values in pages):\n";
  t += "[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes "
       "swapents oom_score_adj name\n";
  t += "Out of memory and no killable processes...\n";
  emit_report(k, Report{ReportKind::Oom, "Out of memory and no killable processes...", t});
  report_panic(k, "System is deadlocked on memory");
  return false;
}

// __alloc_pages_may_oom(): the OOM killer, unless the request is one it must not serve.
static bool alloc_pages_may_oom(Kernel& k, gfp_t gfp, unsigned order, int highest_zoneidx) {
  if (order > PAGE_ALLOC_COSTLY_ORDER) return false;
  if (gfp & (__GFP_RETRY_MAYFAIL | __GFP_THISNODE)) return false;
  if (highest_zoneidx < ZONE_NORMAL) return false;
  if (!(gfp & __GFP_FS)) return true; // the kernel assumes progress and retries
  if (k.hooks.out_of_memory) return k.hooks.out_of_memory(k, gfp, order);
  return no_oom_killer(k, gfp, order);
}

static unsigned long alloc_pages_slowpath(Kernel& k, gfp_t gfp, unsigned order, int highest_zoneidx,
                                          int mt, PageOwner owner) {
  const bool can_direct_reclaim = gfp & __GFP_DIRECT_RECLAIM;
  const bool costly_order = order > PAGE_ALLOC_COSTLY_ORDER;
  unsigned alloc_flags = gfp_to_alloc_flags(gfp, order);
  int no_progress_loops = 0, rounds = 0;
  bool drained = false;
  unsigned long pfn;

  if (alloc_flags & ALLOC_KSWAPD) wake_all_kswapds(k, gfp, order, highest_zoneidx);
  pfn = get_page_from_freelist(k, gfp, order, alloc_flags, highest_zoneidx, mt, owner);
  if (pfn != PFN_NIL) return pfn;

  for (;;) {
    if (alloc_flags & ALLOC_KSWAPD) wake_all_kswapds(k, gfp, order, highest_zoneidx);
    if ((gfp & __GFP_MEMALLOC) && !(gfp & __GFP_NOMEMALLOC))
      alloc_flags = ALLOC_NO_WATERMARKS | (alloc_flags & (ALLOC_KSWAPD | ALLOC_CMA));
    pfn = get_page_from_freelist(k, gfp, order, alloc_flags, highest_zoneidx, mt, owner);
    if (pfn != PFN_NIL) return pfn;
    if (!can_direct_reclaim) break;

    // Direct reclaim, then drain the pcp lists once and retry.
    k.count_event(static_cast<vm_event_item>(ALLOCSTALL_DMA + highest_zoneidx));
    unsigned long progress =
        k.hooks.try_to_free_pages ? k.hooks.try_to_free_pages(k, gfp, order) : 0;
    pfn = get_page_from_freelist(k, gfp, order, alloc_flags, highest_zoneidx, mt, owner);
    if (pfn == PFN_NIL && !drained) {
      unreserve_highatomic_pageblock(k, highest_zoneidx, mt, false);
      drain_all_pages(k, nullptr);
      drained = true;
      pfn = get_page_from_freelist(k, gfp, order, alloc_flags, highest_zoneidx, mt, owner);
    }
    if (pfn != PFN_NIL) return pfn;

    if (gfp & __GFP_NORETRY) break;
    if (costly_order && !(gfp & __GFP_RETRY_MAYFAIL)) break;
    if (++rounds > MAX_RECLAIM_RETRIES) break; // kmm: never spin forever (see the file comment)
    if (should_reclaim_retry(k, order, highest_zoneidx, alloc_flags, progress, &no_progress_loops,
                             mt))
      continue;
    if (k.panicked) break;
    bool oom_progress = alloc_pages_may_oom(k, gfp, order, highest_zoneidx);
    if (k.panicked) break;
    // The OOM killer freed memory: try at the HIGH mark first, as __alloc_pages_may_oom does.
    if (oom_progress) {
      pfn = get_page_from_freelist(k, gfp & ~__GFP_DIRECT_RECLAIM, order,
                                   ALLOC_WMARK_HIGH | ALLOC_CPUSET | (alloc_flags & ALLOC_CMA),
                                   highest_zoneidx, mt, owner);
      if (pfn != PFN_NIL) return pfn;
      no_progress_loops = 0;
      continue;
    }
    break;
  }

  if (gfp & __GFP_NOFAIL) {
    // WARN_ON_ONCE_GFP(!can_direct_reclaim, gfp) and WARN_ON_ONCE_GFP(costly_order, gfp)
    if (!can_direct_reclaim) {
      if (warn_once_gfp(k, WarnOnce::NofailNoReclaim, gfp))
        report_warn(k, "mm/page_alloc.c", "__alloc_pages_slowpath",
                    "__GFP_NOFAIL without __GFP_DIRECT_RECLAIM");
    } else {
      if (costly_order && warn_once_gfp(k, WarnOnce::NofailCostly, gfp))
        report_warn(k, "mm/page_alloc.c", "__alloc_pages_slowpath",
                    "__GFP_NOFAIL for a costly order");
      // __alloc_pages_cpuset_fallback(ALLOC_MIN_RESERVE)
      pfn = get_page_from_freelist(k, gfp, order,
                                   ALLOC_WMARK_MIN | ALLOC_MIN_RESERVE | (alloc_flags & ALLOC_CMA),
                                   highest_zoneidx, mt, owner);
      if (pfn != PFN_NIL) return pfn;
    }
  }
  // After a panic the machine is halted: nothing more is printed.
  if (!(gfp & __GFP_NOWARN) && !k.panicked) warn_alloc(k, gfp, order);
  return PFN_NIL;
}

struct page* __alloc_pages(Kernel& k, gfp_t gfp, unsigned order, PageOwner owner) {
  if (order > MAX_PAGE_ORDER_) {
    // WARN_ON_ONCE_GFP(order > MAX_PAGE_ORDER, gfp)
    if (warn_once_gfp(k, WarnOnce::AllocOrder, gfp))
      report_warn(k, "mm/page_alloc.c", "__alloc_pages",
                  strprintf("order %u > MAX_PAGE_ORDER (%u)", order, MAX_PAGE_ORDER_));
    return nullptr;
  }
  int highest_zoneidx = gfp_zone(gfp);
  if (highest_zoneidx < 0) {
    std::string message = "GFP_ZONE_BAD: mode:";
    append_hex(message, gfp);
    message.append("(").append(gfp_names(gfp)).append(") names two zones");
    report_warn(k, "include/linux/gfp.h", "gfp_zone", message);
    return nullptr;
  }
  if ((gfp & (__GFP_RECLAIMABLE | __GFP_MOVABLE)) == (__GFP_RECLAIMABLE | __GFP_MOVABLE)) {
    report_warn(k, "include/linux/gfp.h", "gfp_migratetype",
                "__GFP_MOVABLE and __GFP_RECLAIMABLE together");
    gfp &= ~__GFP_RECLAIMABLE;
  }
  might_alloc(k, gfp);
  highest_zoneidx = std::max(preferred_zone(k, highest_zoneidx), 0);
  int mt = gfp_migratetype(gfp);
  unsigned alloc_flags = ALLOC_WMARK_LOW | alloc_flags_nofragment(k, highest_zoneidx, gfp);
  if (mt == MIGRATE_MOVABLE) alloc_flags |= ALLOC_CMA;
  unsigned long pfn =
      get_page_from_freelist(k, gfp, order, alloc_flags, highest_zoneidx, mt, owner);
  if (pfn == PFN_NIL) pfn = alloc_pages_slowpath(k, gfp, order, highest_zoneidx, mt, owner);
  return pfn == PFN_NIL ? nullptr : k.mem.pfn_to_page(pfn);
}

// --- free ----------------------------------------------------------------------------------

bool check_free_page(Kernel& k, struct page* p, unsigned order) {
  if (!k.mem.is_page(p)) {
    report_warn(k, "mm/page_alloc.c", "__free_pages",
                "freeing a pointer that is not a struct page");
    return false;
  }
  if (p->flags & PG_reserved) {
    report_bad_page(k, p, "PAGE_FLAGS_CHECK_AT_FREE flag(s) set");
    return false;
  }
  if (PageBuddy(*p) || (p->flags & PG_pcp)) {
    report_bad_page(k, p, "nonzero mapcount");
    return false;
  }
  if (p->flags & PG_tail) {
    report_bad_page(k, p, "freeing a compound tail page");
    return false;
  }
  if (!(p->flags & PG_alloc) || p->_refcount <= 0) {
    report_bad_page(k, p, "page_ref_count(page) == 0");
    return false;
  }
  if (p->private_ != order) {
    report_bad_page(
        k, p, strprintf("freed as order %u, allocated as order %u", order, p->private_).c_str());
    return false;
  }
  if (order > MAX_PAGE_ORDER_) {
    report_bad_page(k, p, "order > MAX_PAGE_ORDER");
    return false;
  }
  return true;
}

// free_pages_prepare(): clear compound tails, poison or zero the memory, forget the owner.
static void free_pages_prepare(Kernel& k, struct page* p, unsigned order) {
  const unsigned long n = 1ul << order;
  if (p->flags & PG_head)
    for (unsigned long i = 1; i < n; i++) {
      p[i].flags = 0;
      p[i].compound_head = 0;
    }
  kasan_free_pages(k, p, order);
  if (k.params.page_poison || k.params.init_on_free) {
    KasanMetadataAccess scope(k.mem.page_address(p), n << PAGE_SHIFT_); // poisoned just above
    const uint8_t v = k.params.page_poison ? PAGE_POISON : 0;
    std::memset(k.mem.page_address(p), v, n << PAGE_SHIFT_);
    if (v != k.mem.fill) k.mem.mark_written(k.mem.page_to_pfn(p), n);
  }
  p->flags = 0;
  p->private_ = 0;
  p->_refcount = 0;
  p->owner = PageOwner::None;
  p->owner_data = 0;
  p->compound_order = 0;
  std::memset(p->words, 0, sizeof p->words);
}

// free_one_page(): a prepared block straight to the buddy lists, under the zone lock.
static void free_one_page(Kernel& k, zone& z, unsigned long pfn, unsigned order, int mt,
                          fpi_t fpi) {
  std::lock_guard<std::mutex> guard(z.lock);
  __free_one_page(k, z, pfn, order, mt, fpi);
}

void free_the_page(Kernel& k, struct page* p, unsigned order) {
  unsigned long pfn = k.mem.page_to_pfn(p);
  zone& z = page_zone(k, pfn);
  int mt = k.mem.get_pageblock_migratetype(pfn);
  free_pages_prepare(k, p, order);
  k.count_event(PGFREE, 1ul << order);
  if (pcp_allowed_order(order) && mt != MIGRATE_ISOLATE && k.params.pcp) {
    free_unref_page(k, z, pfn, order, mt);
    return;
  }
  free_one_page(k, z, pfn, order, mt, FPI_NONE);
}

void __free_pages_ok(Kernel& k, struct page* p, unsigned order, fpi_t fpi) {
  const unsigned long pfn = k.mem.page_to_pfn(p);
  free_pages_prepare(k, p, order);
  free_one_page(k, page_zone(k, pfn), pfn, order, k.mem.get_pageblock_migratetype(pfn), fpi);
  k.count_event(PGFREE, 1ul << order);
}

void __free_pages(Kernel& k, struct page* p, unsigned order) {
  if (!check_free_page(k, p, order)) return;
  bool head = p->flags & PG_head;
  if (--p->_refcount == 0) {
    free_the_page(k, p, order);
    return;
  }
  // Someone holds a reference to the first page of a non-compound block: free the rest now; the
  // first page is freed (as order 0) by the last put_page().
  if (!head) {
    p->private_ = 0;
    while (order-- > 0) {
      struct page* part = p + (1ul << order);
      part->flags = PG_alloc;
      part->private_ = order;
      part->_refcount = 0;
      part->owner = p->owner;
      free_the_page(k, part, order);
    }
  }
}

struct page* compound_head(Kernel& k, struct page* p) {
  return (p->flags & PG_tail) ? k.mem.pfn_to_page(p->compound_head) : p;
}

void get_page(Kernel& k, struct page* p) {
  p = compound_head(k, p);
  if (!(p->flags & PG_alloc) || p->_refcount <= 0) {
    report_bad_page(k, p, "get_page() on a page that is not allocated");
    return;
  }
  p->_refcount++;
}

void put_page(Kernel& k, struct page* p) {
  p = compound_head(k, p);
  unsigned order = (p->flags & PG_head) ? p->compound_order : p->private_;
  if (!check_free_page(k, p, order)) return;
  if (--p->_refcount == 0) free_the_page(k, p, order);
}

void split_page(Kernel& k, struct page* p, unsigned order) {
  if (p->flags & PG_head) {
    report_warn(k, "mm/page_alloc.c", "split_page", "VM_BUG_ON_PAGE(PageCompound(page))");
    return;
  }
  if (!(p->flags & PG_alloc) || p->private_ != order) {
    report_bad_page(k, p, "split_page() of a block that is not allocated at this order");
    return;
  }
  for (unsigned long i = 0; i < (1ul << order); i++) {
    p[i].flags = PG_alloc;
    p[i].private_ = 0;
    p[i]._refcount = 1;
    p[i].owner = p->owner;
  }
}

// alloc_pages_exact(): allocate the covering order, split it, and free the pages past `size`.
void* alloc_pages_exact(Kernel& k, size_t size, gfp_t gfp) {
  // The kernel's get_order(0) of a size known only at run time is fls64(~0ul >> PAGE_SHIFT),
  // order 52: a zero-sized request fails with __alloc_pages' warning, as a huge one does.
  const unsigned order = size ? get_order(size) : 64 - PAGE_SHIFT_;
  // WARN_ON_ONCE(gfp_mask & (__GFP_COMP | __GFP_HIGHMEM))
  if (gfp & (__GFP_COMP | __GFP_HIGHMEM)) {
    if (warn_once(k, WarnOnce::AllocExactGfp))
      report_warn(k, "mm/page_alloc.c", "alloc_pages_exact",
                  gfp & __GFP_COMP ? "__GFP_COMP is not allowed" : "__GFP_HIGHMEM is not allowed");
    gfp &= ~(__GFP_COMP | __GFP_HIGHMEM);
  }
  struct page* p = __alloc_pages(k, gfp, order);
  if (!p) return nullptr;
  // make_alloc_exact(): the first DIV_ROUND_UP(size, PAGE_SIZE) pages become order-0 pages with a
  // reference each; the pages past them, never referenced, go straight back to the tails of the
  // buddy lists (__free_pages_ok(page, 0, FPI_TO_TAIL)), not through the per-CPU lists.
  split_page(k, p, order);
  for (unsigned long i = (size + PAGE_SIZE_ - 1) >> PAGE_SHIFT_; i < (1ul << order); i++) {
    p[i]._refcount = 0;
    __free_pages_ok(k, p + i, 0, FPI_TO_TAIL);
  }
  return k.mem.page_address(p);
}

void free_pages_exact(Kernel& k, void* virt, size_t size) {
  if (!k.mem.is_direct(virt)) {
    report_warn(k, "mm/page_alloc.c", "free_pages_exact", "not a direct-map address");
    return;
  }
  // The kernel frees a page at a time while addr < end, end = addr + PAGE_ALIGN(size) in its own
  // address space: an end that wraps past 2^64 (the direct map is at 0xffff888000000000, so any
  // size from about 2^47) frees nothing, as PAGE_ALIGN(SIZE_MAX) == 0 does. kmm's page count
  // wrapped or ran to 2^52 pages: a hang.
  const uint64_t addr = k.mem.kva(virt) & ~uint64_t(PAGE_SIZE_ - 1);
  const uint64_t end = addr + ((size + PAGE_SIZE_ - 1) & ~uint64_t(PAGE_SIZE_ - 1));
  const unsigned long nr = end > addr ? (end - addr) >> PAGE_SHIFT_ : 0;
  const unsigned long pfn = k.mem.page_to_pfn(k.mem.virt_to_page(virt));
  for (unsigned long i = 0; i < nr; i++) {
    if (!k.mem.pfn_valid(pfn + i)) { // the kernel would oops here: one warning, not one a page
      report_warn(k, "mm/page_alloc.c", "free_pages_exact", "freeing past the end of memory");
      return;
    }
    __free_pages(k, k.mem.pfn_to_page(pfn + i), 0);
  }
}

} // namespace kmm
