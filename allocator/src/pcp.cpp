// Per-CPU page lists (see pcp.h). Lock order: pcp->lock, then zone->lock.
#include "pcp.h"

#include <algorithm>
#include <mutex>

#include "buddy.h"
#include "kernel.h"
#include "pfn_list.h"

namespace kmm {

// A block's pcp list: CMA and HighAtomic pages travel on the Movable list but remember their
// pageblock type in list_mt, so they go back to the right buddy list.
static unsigned pcp_pindex(int mt, unsigned order) {
  return order_to_pindex(mt >= MIGRATE_PCPTYPES ? MIGRATE_MOVABLE : mt, order);
}

// free_pcppages_bulk(): give `count` pages back, draining whole lists round-robin from the one
// just freed to, oldest pages (the tail) first.
static void free_pcppages_bulk(Kernel& k, zone& z, int count, per_cpu_pages& pcp, int pindex) {
  count = std::min(pcp.count, count);
  std::lock_guard<std::mutex> guard(z.lock);
  pindex = pindex - 1;
  while (count > 0) {
    pfn_list* list;
    do {
      if (++pindex > static_cast<int>(NR_PCP_LISTS) - 1) pindex = 0;
      list = &pcp.lists[pindex];
    } while (list->empty());
    unsigned order = static_cast<unsigned>(pindex) / MIGRATE_PCPTYPES;
    do {
      uint32_t pfn = list->tail;
      struct page& p = k.mem.mem_map[pfn];
      int mt = p.list_mt;
      // A pageblock isolated since the page was cached: it goes to the Isolate list.
      if (k.mem.get_pageblock_migratetype(pfn) == MIGRATE_ISOLATE) mt = MIGRATE_ISOLATE;
      pfn_list_del(k.mem, *list, pfn);
      p.flags = 0;
      p.private_ = 0;
      count -= 1 << order;
      pcp.count -= 1 << order;
      __free_one_page(k, z, pfn, order, mt);
    } while (count > 0 && !list->empty());
  }
}

unsigned long rmqueue_pcplist(Kernel& k, zone& z, unsigned order, int mt, unsigned alloc_flags) {
  per_cpu_pages& pcp = z.pcp[k.cpu_id()];
  std::lock_guard<SpinLock> pguard(pcp.lock);
  pfn_list& list = pcp.lists[order_to_pindex(mt, order)];
  if (list.empty()) {
    int batch = pcp_refill_blocks(pcp.batch, order);
    std::lock_guard<std::mutex> guard(z.lock); // rmqueue_bulk()
    for (int i = 0; i < batch; i++) {
      unsigned long pfn = __rmqueue(k, z, order, mt, alloc_flags);
      if (pfn == PFN_NIL) break;
      struct page& p = k.mem.mem_map[pfn];
      p.flags = PG_pcp;
      p.private_ = order;
      p.list_mt = static_cast<uint8_t>(k.mem.get_pageblock_migratetype(pfn));
      pfn_list_add(k.mem, list, static_cast<uint32_t>(pfn), true);
      pcp.count += 1 << order;
    }
    if (list.empty()) return PFN_NIL;
  }
  uint32_t pfn = list.head;
  pfn_list_del(k.mem, list, pfn);
  struct page& p = k.mem.mem_map[pfn];
  p.flags = 0;
  p.private_ = 0;
  p.list_mt = 0;
  pcp.count -= 1 << order;
  return pfn;
}

void free_unref_page(Kernel& k, zone& z, unsigned long pfn, unsigned order, int mt) {
  per_cpu_pages& pcp = z.pcp[k.cpu_id()];
  std::lock_guard<SpinLock> pguard(pcp.lock);
  struct page& p = k.mem.mem_map[pfn];
  p.flags = PG_pcp;
  p.private_ = order;
  p.list_mt = static_cast<uint8_t>(mt);
  p.pcp_cpu = static_cast<uint8_t>(k.cpu_id());
  unsigned pindex = pcp_pindex(mt, order);
  pfn_list_add(k.mem, pcp.lists[pindex], static_cast<uint32_t>(pfn));
  pcp.count += 1 << order;
  if (pcp.count >= pcp.high) {
    // nr_pcp_free(): leave at least a batch on the lists.
    int to_free = pcp.high < pcp.batch ? 1 : std::clamp(pcp.batch, pcp.batch, pcp.high - pcp.batch);
    free_pcppages_bulk(k, z, to_free, pcp, static_cast<int>(pindex));
  }
}

void pcp_set_high_and_batch(Kernel& k, zone& z, int high, int batch) {
  for (unsigned c = 0; c < MAX_CPUS; c++) {
    per_cpu_pages& pcp = z.pcp[c];
    std::lock_guard<SpinLock> pguard(pcp.lock);
    pcp.batch = batch;
    pcp.high = high;
    // The kernel leaves the excess for the next free_unref_page(), which may take several
    // frees when high fell far; trimming now keeps count within validate()'s bound
    // (high + pcp_count_slack) whatever the old high was.
    if (pcp.count >= high) free_pcppages_bulk(k, z, pcp.count - high + 1, pcp, 0);
  }
}

void drain_all_pages(Kernel& k, zone* only) {
  for (auto& z : k.zones) {
    if (only && &z != only) continue;
    for (unsigned c = 0; c < k.nr_cpu_slots(); c++) {
      per_cpu_pages& pcp = z.pcp[c];
      std::lock_guard<SpinLock> pguard(pcp.lock);
      if (pcp.count) free_pcppages_bulk(k, z, pcp.count, pcp, 0);
    }
  }
}

long zone_pcp_pages(const Kernel& k, const zone& z) {
  long n = 0;
  for (unsigned c = 0; c < k.nr_cpu_slots(); c++) n += z.pcp[c].count;
  return n;
}

} // namespace kmm
