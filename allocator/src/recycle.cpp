// A booted machine's image and its restore in place (see recycle.h).
#include "recycle.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <vector>

#include "cma.h"
#include "kasan.h"
#include "kasan_asan.h"
#include "kernel.h"
#include "pagecache.h"
#include "rcu.h"
#include "shrinker.h"
#include "slub.h"
#include "task.h"
#include "vmalloc.h"
#include "vmscan.h"

namespace kmm {

namespace {

std::atomic<uint64_t> restores{0}, refusals{0}, pages_copied{0};

// What a zone's page allocator keeps, without its locks.
struct ZoneImage {
  unsigned long watermark[NR_WMARK];
  unsigned long watermark_boost;
  unsigned long lowmem_reserve[MAX_NR_ZONES];
  unsigned long nr_reserved_highatomic;
  free_area free_area_[NR_PAGE_ORDERS];
  long vm_stat[NR_ZONE_STAT_ITEMS];
  struct Pcp {
    int count, high, batch;
    pfn_list lists[NR_PCP_LISTS];
  } pcp[MAX_CPUS];
};

// kswapd's scalars (its thread, if one ran, makes the machine image-less).
struct KswapdImage {
  unsigned order;
  int highest_zoneidx;
  int failures;
  bool drop_caches_stfu;
};

// A slab cache as boot left it. Boot creates the caches but no slab: every page a cache holds
// later was handed out after the image, so the restore gives them back with the struct pages.
struct CacheImage {
  kmem_cache_cpu cpu_slab[MAX_CPUS];
  pfn_list partial, full;
  unsigned long nr_partial, nr_slabs, total_objects;
  int refcount;
  unsigned object_size, inuse;
  size_t aliases;
  bool dead, shutdown_failed;
};

struct SlabImage {
  std::vector<CacheImage> caches; // SlabState::all, in order
  std::vector<kmem_cache*> slab_caches;
  long slab_errors;
  uint64_t jiffies, rng;
  unsigned long rcu_gp_seq;
};

// The parts of the machine an image compares instead of restoring, as one vector of words (into
// v, cleared first): equal vectors mean none of them moved (shrinkers registered, CMA areas'
// pages in use).
void untouched_parts(Kernel& k, std::vector<uint64_t>& v) {
  v.clear();
  auto put = [&v](auto x) { v.push_back(uint64_t(x)); };
  if (k.shrinkers) put(k.shrinkers->list.size());
  if (k.cma)
    for (const auto& a : k.cma->areas) {
      std::lock_guard<std::mutex> guard(a->lock);
      put(std::count(a->bitmap.begin(), a->bitmap.end(), true));
    }
}

// Whether the slab layer can go back to `img`: no cache created since is still alive (the
// harness destroys what it created; a destroyed one is a dead descriptor to drop), every boot
// cache is referenced as at boot, and no RCU callback is pending.
bool slab_restorable(Kernel& k, const SlabImage& img) {
  SlabState& st = *k.slab;
  std::lock_guard<std::mutex> guard(st.slab_mutex);
  if (st.all.size() < img.caches.size()) return false;
  for (size_t i = 0; i < st.all.size(); i++) {
    const kmem_cache* s = st.all[i].get();
    if (i >= img.caches.size()) {
      if (!s->dead) return false;
      continue;
    }
    const CacheImage& c = img.caches[i];
    if (s->refcount != c.refcount || s->dead != c.dead || s->shutdown_failed != c.shutdown_failed)
      return false;
  }
  if (st.slab_caches != img.slab_caches) return false;
  if (st.rcu) {
    std::lock_guard<std::mutex> rcu_guard(st.rcu->lock);
    if (!st.rcu->queue.empty()) return false;
    for (unsigned c = 0; c < MAX_CPUS; c++)
      if (st.rcu->readers[c].load()) return false;
  }
  return true;
}

void take_slab_image(Kernel& k, SlabImage& img) {
  SlabState& st = *k.slab;
  std::lock_guard<std::mutex> guard(st.slab_mutex);
  img.caches.clear();
  for (const auto& s : st.all) {
    CacheImage c{};
    std::copy(s->cpu_slab, s->cpu_slab + k.nr_cpu_slots(), c.cpu_slab);
    c.partial = s->node.partial;
    c.full = s->node.full;
    c.nr_partial = s->node.nr_partial;
    c.nr_slabs = s->node.nr_slabs.load();
    c.total_objects = s->node.total_objects.load();
    c.refcount = s->refcount;
    c.object_size = s->object_size;
    c.inuse = s->inuse;
    c.aliases = s->aliases.size();
    c.dead = s->dead;
    c.shutdown_failed = s->shutdown_failed;
    img.caches.push_back(c);
  }
  img.slab_caches = st.slab_caches;
  img.slab_errors = st.slab_errors.load();
  img.jiffies = st.jiffies.load();
  img.rng = st.rng.load();
  img.rcu_gp_seq = st.rcu ? st.rcu->gp_seq : 0;
}

void restore_slab(Kernel& k, const SlabImage& img) {
  SlabState& st = *k.slab;
  std::lock_guard<std::mutex> guard(st.slab_mutex);
  st.all.resize(img.caches.size()); // the caches created and destroyed since: dead descriptors
  for (size_t i = 0; i < img.caches.size(); i++) {
    kmem_cache* s = st.all[i].get();
    const CacheImage& c = img.caches[i];
    // Member by member: a kmem_cache_cpu is two pointers padded to a cache line, and a copy of
    // the lines is a memcpy ASan checks both ranges of, for every cache at every restore. (The
    // bindings name every member: a third one would not compile here.)
    for (unsigned cpu = 0; cpu < k.nr_cpu_slots(); cpu++) {
      auto& [freelist, slab] = s->cpu_slab[cpu];
      const auto& [boot_freelist, boot_slab] = c.cpu_slab[cpu];
      freelist = boot_freelist;
      slab = boot_slab;
    }
    s->node.partial = c.partial;
    s->node.full = c.full;
    s->node.nr_partial = c.nr_partial;
    s->node.nr_slabs.store(c.nr_slabs);
    s->node.total_objects.store(c.total_objects);
    s->object_size = c.object_size; // a merged alias may have grown them
    s->inuse = c.inuse;
    s->aliases.resize(c.aliases);
  }
  st.slab_errors.store(img.slab_errors);
  st.jiffies.store(img.jiffies);
  st.rng.store(img.rng);
  if (st.rcu) {
    std::lock_guard<std::mutex> rcu_guard(st.rcu->lock);
    st.rcu->gp_seq = img.rcu_gp_seq;
  }
}

// vmalloc as boot left it: no area in use, the reservation's free ranges.
struct VmallocImage {
  std::map<uintptr_t, uintptr_t> free_ranges;
  unsigned long lazy_nr = 0, lazy_max = 0;
};

// No kswapd thread, and kswapd not inside balance_pgdat (a wake-up still pending in sync mode
// is part of what the restore takes back).
bool kswapd_idle(const Kernel& k) {
  return !k.reclaim || (!k.reclaim->threaded && !k.reclaim->kswapd_running);
}

} // namespace

struct BootImage;
static bool restorable(Kernel& k, const BootImage& img);

struct BootImage {
  std::vector<struct page> mem_map;
  std::vector<uint64_t> written;
  std::vector<uint8_t> pageblock_mt;
  ZoneImage zones[MAX_NR_ZONES];
  std::vector<CpuState> cpus; // nr_cpu_slots
  KswapdImage kswapd{};
  Dmesg::Mark log;
  std::vector<uint64_t> untouched;
  SlabImage slab;
  VmallocImage vmalloc;
  long node_stat[NR_VM_NODE_STAT_ITEMS];
  unsigned long lru_nr[NR_LRU_LISTS];
  int next_pid = 0, next_ino = 0;
  std::vector<unsigned long> cma_counters; // alloc_success, alloc_fail, release_success per area

  int min_free_kbytes;
  int user_min_free_kbytes;
  unsigned watermark_scale_factor;
  unsigned long totalreserve_pages;
  unsigned long kswapd_wakeups;
  long vm_committed_as;
  int overcommit_memory;
  long overcommit_ratio, user_reserve_kbytes, admin_reserve_kbytes;
  int swappiness;
  uint64_t rng_state;
};

void BootImageDeleter::operator()(BootImage* img) const { delete img; }

BootImagePtr take_boot_image(Kernel& k, BootImagePtr reuse) {
  if (!kasan_at_boot(k) || k.kfence || k.panicked || !kswapd_idle(k) ||
      (k.reclaim && k.reclaim->kswapd_pending))
    return nullptr;
  {
    std::lock_guard<std::mutex> guard(k.report_lock);
    if (!k.reports.empty()) return nullptr;
  }
  PhysMem& mem = k.mem;
  // Every byte a later run can write is then in a page handed out after the image, which the
  // restore marks stale: a page in use, or a free one the machine wrote, would hold bytes the
  // restore could not bring back. Boot leaves none.
  for (unsigned long pfn = 0; pfn < mem.nr_pages; pfn++)
    if (mem.pfn_to_page(pfn)->owner != PageOwner::None || PhysMem::test_bit(mem.written, pfn))
      return nullptr;
  if (k.vmalloc) {
    std::lock_guard<std::mutex> guard(k.vmalloc->lock);
    if (!k.vmalloc->busy.empty() || !k.vmalloc->purge_list.empty()) return nullptr;
  }
  if ((k.tasks && !k.tasks->tasks.empty()) || (k.pagecache && !k.pagecache->files.empty()))
    return nullptr;

  BootImagePtr img = reuse ? std::move(reuse) : BootImagePtr(new BootImage);
  img->mem_map.assign(mem.mem_map, mem.mem_map + mem.nr_pages);
  img->written = mem.written;
  std::fill(mem.touched.begin(), mem.touched.end(), 0); // boot wrote them all: in the image now
  img->pageblock_mt = mem.pageblock_mt;
  for (unsigned zi = 0; zi < MAX_NR_ZONES; zi++) {
    zone& z = k.zones[zi];
    ZoneImage& zim = img->zones[zi];
    std::lock_guard<std::mutex> guard(z.lock);
    std::memcpy(zim.watermark, z._watermark, sizeof zim.watermark);
    zim.watermark_boost = z.watermark_boost;
    std::memcpy(zim.lowmem_reserve, z.lowmem_reserve, sizeof zim.lowmem_reserve);
    zim.nr_reserved_highatomic = z.nr_reserved_highatomic;
    std::memcpy(zim.free_area_, z.free_area_, sizeof zim.free_area_);
    for (unsigned i = 0; i < NR_ZONE_STAT_ITEMS; i++) zim.vm_stat[i] = z.vm_stat[i].load();
    for (unsigned c = 0; c < k.nr_cpu_slots(); c++) {
      const per_cpu_pages& pcp = z.pcp[c];
      zim.pcp[c].count = pcp.count;
      zim.pcp[c].high = pcp.high;
      zim.pcp[c].batch = pcp.batch;
      std::memcpy(zim.pcp[c].lists, pcp.lists, sizeof pcp.lists);
    }
  }
  img->cpus.assign(k.cpus, k.cpus + k.nr_cpu_slots());
  if (k.reclaim)
    img->kswapd = {k.reclaim->kswapd_order, k.reclaim->kswapd_highest_zoneidx,
                   k.reclaim->kswapd_failures.load(), k.reclaim->drop_caches_stfu};
  img->log = k.log.mark();
  untouched_parts(k, img->untouched);
  if (k.slab) take_slab_image(k, img->slab);
  if (k.vmalloc) {
    std::lock_guard<std::mutex> guard(k.vmalloc->lock);
    img->vmalloc = {k.vmalloc->free_ranges, k.vmalloc->lazy_nr, k.vmalloc->lazy_max};
  }
  for (unsigned i = 0; i < NR_VM_NODE_STAT_ITEMS; i++) img->node_stat[i] = k.node_stat[i].load();
  if (k.reclaim) std::copy(k.reclaim->lru.nr, k.reclaim->lru.nr + NR_LRU_LISTS, img->lru_nr);
  if (k.tasks) img->next_pid = k.tasks->next_pid;
  if (k.pagecache) img->next_ino = k.pagecache->next_ino;
  img->cma_counters.clear();
  if (k.cma)
    for (const auto& a : k.cma->areas)
      img->cma_counters.insert(img->cma_counters.end(),
                               {a->alloc_success, a->alloc_fail, a->release_success});
  img->min_free_kbytes = k.min_free_kbytes;
  img->user_min_free_kbytes = k.user_min_free_kbytes;
  img->watermark_scale_factor = k.watermark_scale_factor;
  img->totalreserve_pages = k.totalreserve_pages;
  img->kswapd_wakeups = k.kswapd_wakeups.load();
  img->vm_committed_as = k.vm_committed_as.load();
  img->overcommit_memory = k.overcommit_memory;
  img->overcommit_ratio = k.overcommit_ratio;
  img->user_reserve_kbytes = k.user_reserve_kbytes;
  img->admin_reserve_kbytes = k.admin_reserve_kbytes;
  img->swappiness = k.swappiness;
  img->rng_state = k.rng_state;
  return img;
}

// Whether `k` can go back to `img`: the parts an image compares are as they were, and nothing
// the restore cannot undo is in use (a task, a file, a vmalloc area, a live cache created since,
// a pending RCU callback, a running kswapd, a log that lost lines).
static bool restorable(Kernel& k, const BootImage& img) {
  if (!kswapd_idle(k) || !k.log.can_rewind(img.log)) return false;
  static thread_local std::vector<uint64_t> now; // kept from restore to restore
  untouched_parts(k, now);
  if (now != img.untouched) return false;
  if (k.slab && !slab_restorable(k, img.slab)) return false;
  if (k.vmalloc) {
    std::lock_guard<std::mutex> guard(k.vmalloc->lock);
    if (!k.vmalloc->busy.empty()) return false;
  }
  if ((k.tasks && !k.tasks->tasks.empty()) || (k.pagecache && !k.pagecache->files.empty()))
    return false;
  if (k.reclaim && !std::equal(img.lru_nr, img.lru_nr + NR_LRU_LISTS, k.reclaim->lru.nr))
    return false;
  return true;
}

// Copies n struct pages from the image back to mem_map, a record at a time. Not instrumented
// and not a memcpy: ASan checks both ranges of every memcpy (and the compiler would turn this loop
// into one), although neither can be poisoned - mem_map is an anonymous mapping whose shadow
// nothing poisons, and the image a vector of exactly its size.
KMM_NO_SANITIZE KMM_NO_MEMCPY_CALL static void copy_pages(struct page* to, const struct page* from,
                                                          size_t n) {
  for (size_t i = 0; i < n; i++) to[i] = from[i];
}

bool restore_boot_image(Kernel& k, const BootImage& img) {
  if (!restorable(k, img)) {
    refusals.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  PhysMem& mem = k.mem;
  // Pages written since the image (handed out, or marked by the code that wrote them: physmem.h)
  // become stale: the only RAM the run can have changed (recycle.h), cleaned to the fill when the
  // machine hands them out again. The struct pages
  // that changed are those handed out and those the free and per-CPU lists touched (physmem.h):
  // only their groups of 64 are copied back, so a run that used a few pages of a large machine
  // costs a few KiB here, not the whole mem_map.
  size_t copied = 0;
  for (size_t w = 0; w < mem.written.size(); w++) {
    const uint64_t since = mem.written[w] & ~img.written[w];
    if (since) mem.stale[w] |= since;
    if (since || mem.touched[w]) {
      const size_t first = w * 64, n = std::min<size_t>(64, img.mem_map.size() - first);
      copy_pages(mem.mem_map + first, img.mem_map.data() + first, n);
      mem.touched[w] = 0;
      copied += n;
    }
    mem.written[w] = img.written[w];
  }
  pages_copied.fetch_add(copied, std::memory_order_relaxed);
  std::memcpy(mem.pageblock_mt.data(), img.pageblock_mt.data(), img.pageblock_mt.size());
  for (unsigned zi = 0; zi < MAX_NR_ZONES; zi++) {
    zone& z = k.zones[zi];
    const ZoneImage& zim = img.zones[zi];
    std::lock_guard<std::mutex> guard(z.lock);
    std::memcpy(z._watermark, zim.watermark, sizeof zim.watermark);
    z.watermark_boost = zim.watermark_boost;
    std::memcpy(z.lowmem_reserve, zim.lowmem_reserve, sizeof zim.lowmem_reserve);
    z.nr_reserved_highatomic = zim.nr_reserved_highatomic;
    std::memcpy(z.free_area_, zim.free_area_, sizeof zim.free_area_);
    for (unsigned i = 0; i < NR_ZONE_STAT_ITEMS; i++) z.vm_stat[i].store(zim.vm_stat[i]);
    for (unsigned c = 0; c < k.nr_cpu_slots(); c++) {
      per_cpu_pages& pcp = z.pcp[c];
      pcp.count = zim.pcp[c].count;
      pcp.high = zim.pcp[c].high;
      pcp.batch = zim.pcp[c].batch;
      std::memcpy(pcp.lists, zim.pcp[c].lists, sizeof pcp.lists);
    }
  }
  for (size_t c = 0; c < img.cpus.size(); c++) k.cpus[c] = img.cpus[c];
  if (k.reclaim) {
    k.reclaim->kswapd_order = img.kswapd.order;
    k.reclaim->kswapd_highest_zoneidx = img.kswapd.highest_zoneidx;
    k.reclaim->kswapd_failures.store(img.kswapd.failures);
    k.reclaim->drop_caches_stfu = img.kswapd.drop_caches_stfu;
    k.reclaim->kswapd_pending = false; // as at boot (take_boot_image asks for an idle kswapd)
  }
  if (k.slab) restore_slab(k, img.slab);
  kasan_restore_boot(k); // the quarantined objects' slabs went back with the pages
  if (k.vmalloc) {
    // The areas vfree'd since wait on the purge list; their pages went back with the rest.
    std::lock_guard<std::mutex> guard(k.vmalloc->lock);
    k.vmalloc->purge_list.clear();
    k.vmalloc->free_ranges = img.vmalloc.free_ranges;
    k.vmalloc->lazy_nr = img.vmalloc.lazy_nr;
    k.vmalloc->lazy_max = img.vmalloc.lazy_max;
  }
  for (unsigned i = 0; i < NR_VM_NODE_STAT_ITEMS; i++) k.node_stat[i].store(img.node_stat[i]);
  if (k.tasks) k.tasks->next_pid = img.next_pid;
  if (k.pagecache) k.pagecache->next_ino = img.next_ino;
  if (k.cma)
    for (size_t i = 0; i < k.cma->areas.size(); i++) {
      k.cma->areas[i]->alloc_success = img.cma_counters[3 * i];
      k.cma->areas[i]->alloc_fail = img.cma_counters[3 * i + 1];
      k.cma->areas[i]->release_success = img.cma_counters[3 * i + 2];
    }
  k.log.rewind(img.log);
  {
    std::lock_guard<std::mutex> guard(k.report_lock);
    k.reports.clear();
  }
  k.min_free_kbytes = img.min_free_kbytes;
  k.user_min_free_kbytes = img.user_min_free_kbytes;
  k.watermark_scale_factor = img.watermark_scale_factor;
  k.totalreserve_pages = img.totalreserve_pages;
  k.kswapd_wakeups.store(img.kswapd_wakeups);
  k.vm_committed_as.store(img.vm_committed_as);
  k.overcommit_memory = img.overcommit_memory;
  k.overcommit_ratio = img.overcommit_ratio;
  k.user_reserve_kbytes = img.user_reserve_kbytes;
  k.admin_reserve_kbytes = img.admin_reserve_kbytes;
  k.swappiness = img.swappiness;
  k.rng_state = img.rng_state;
  k.panicked = false; // a panic (say, OOM with nothing to kill) stopped a run, not the image
  k.warned_once.store(0, std::memory_order_relaxed); // the image has no report, so none fired
  restores.fetch_add(1, std::memory_order_relaxed);
  return true;
}

uint64_t boot_image_restores() { return restores.load(std::memory_order_relaxed); }
uint64_t boot_image_refusals() { return refusals.load(std::memory_order_relaxed); }
uint64_t boot_image_pages_copied() { return pages_copied.load(std::memory_order_relaxed); }

} // namespace kmm
