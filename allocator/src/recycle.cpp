// A booted machine's image and its restore in place (see recycle.h).
#include "recycle.h"

#include <atomic>
#include <cstring>
#include <vector>

#include "cma.h"
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

std::atomic<uint64_t> restores{0}, refusals{0};

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

// The parts of the machine an image compares instead of copying, as one vector of words: equal
// vectors mean none of them moved. Each CPU slab and freelist of every cache, every slab list and
// count, the slab random state; vmalloc's areas; tasks, files, LRU, shrinkers; CMA; RCU.
std::vector<uint64_t> untouched_parts(Kernel& k) {
  std::vector<uint64_t> v;
  auto put = [&v](auto x) { v.push_back(uint64_t(x)); };
  if (SlabState* st = k.slab.get()) {
    put(st->all.size());
    put(st->slab_caches.size());
    put(st->slab_errors.load());
    put(st->jiffies.load());
    put(st->rng.load());
    for (const auto& s : st->all) {
      put(s->refcount);
      put(s->dead);
      for (unsigned c = 0; c < k.nr_cpu_slots(); c++) {
        put(reinterpret_cast<uintptr_t>(s->cpu_slab[c].freelist));
        put(reinterpret_cast<uintptr_t>(s->cpu_slab[c].slab));
      }
      put(s->node.partial.head);
      put(s->node.partial.tail);
      put(s->node.nr_partial);
      put(s->node.full.head);
      put(s->node.full.tail);
      put(s->node.nr_slabs.load());
      put(s->node.total_objects.load());
    }
    if (st->rcu) {
      std::lock_guard<std::mutex> guard(st->rcu->lock);
      put(st->rcu->queue.size());
      put(st->rcu->gp_seq);
    }
  }
  if (k.vmalloc) {
    std::lock_guard<std::mutex> guard(k.vmalloc->lock);
    put(k.vmalloc->free_ranges.size());
    put(k.vmalloc->busy.size());
    put(k.vmalloc->purge_list.size());
    put(k.vmalloc->lazy_nr);
    for (const auto& [start, end] : k.vmalloc->free_ranges) {
      put(start);
      put(end);
    }
  }
  if (k.tasks) {
    put(k.tasks->tasks.size());
    put(k.tasks->next_pid);
  }
  if (k.pagecache) {
    put(k.pagecache->files.size());
    put(k.pagecache->next_ino);
  }
  if (k.reclaim)
    for (unsigned long n : k.reclaim->lru.nr) put(n);
  if (k.shrinkers) put(k.shrinkers->list.size());
  if (k.cma)
    for (const auto& a : k.cma->areas) {
      put(a->alloc_success);
      put(a->alloc_fail);
      put(a->release_success);
    }
  for (long n : k.node_stat) put(n);
  return v;
}

bool kswapd_idle(const Kernel& k) {
  return !k.reclaim ||
         (!k.reclaim->threaded && !k.reclaim->kswapd_pending && !k.reclaim->kswapd_running);
}

} // namespace

struct BootImage {
  std::vector<struct page> mem_map;
  std::vector<uint64_t> written;
  std::vector<uint8_t> pageblock_mt;
  ZoneImage zones[MAX_NR_ZONES];
  std::vector<CpuState> cpus; // nr_cpu_slots
  KswapdImage kswapd{};
  Dmesg::Mark log;
  std::vector<uint64_t> untouched;

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

BootImagePtr take_boot_image(Kernel& k) {
  if (k.kasan || k.kfence || k.panicked || !kswapd_idle(k)) return nullptr;
  {
    std::lock_guard<std::mutex> guard(k.report_lock);
    if (!k.reports.empty()) return nullptr;
  }
  PhysMem& mem = k.mem;
  // A free page the machine wrote holds bytes a restore could not bring back (it would hand
  // them out again unchanged): such a machine keeps no image. Boot leaves none.
  for (unsigned long pfn = 0; pfn < mem.nr_pages; pfn++)
    if (PageBuddy(*mem.pfn_to_page(pfn)) && PhysMem::test_bit(mem.written, pfn)) return nullptr;

  BootImagePtr img(new BootImage);
  img->mem_map.assign(mem.mem_map, mem.mem_map + mem.nr_pages);
  img->written = mem.written;
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
  img->untouched = untouched_parts(k);
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

bool restore_boot_image(Kernel& k, const BootImage& img) {
  if (k.panicked || !kswapd_idle(k) || !k.log.can_rewind(img.log) ||
      untouched_parts(k) != img.untouched) {
    refusals.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  PhysMem& mem = k.mem;
  // Pages handed out since the image become stale: the only RAM the run can have written
  // (recycle.h), cleaned to the fill when the machine hands them out again.
  for (size_t w = 0; w < mem.written.size(); w++) {
    const uint64_t since = mem.written[w] & ~img.written[w];
    if (since) mem.stale[w] |= since;
    mem.written[w] = img.written[w];
  }
  std::memcpy(mem.mem_map, img.mem_map.data(), img.mem_map.size() * sizeof(struct page));
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
  restores.fetch_add(1, std::memory_order_relaxed);
  return true;
}

uint64_t boot_image_restores() { return restores.load(std::memory_order_relaxed); }
uint64_t boot_image_refusals() { return refusals.load(std::memory_order_relaxed); }

} // namespace kmm
