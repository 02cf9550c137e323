// kmm::validate (see kmm/validate.h): composes each structure's self-check.
//  - buddy: free lists well-formed, blocks aligned, maximally coalesced, counters equal contents
//  - pcp: list entries are pcp pages of the list's order, counts equal contents
//  - pages: every pfn is in exactly one state (free block, pcp block, allocation, reserved), and
//    no block crosses a zone boundary
//  - watermarks: min <= low <= high <= promo in every zone
//  - cpus: no context counter below zero, and atomic_depth equal to their sum
#include "kmm/validate.h"

#include <bit>
#include <cstddef>
#include <cstring>
#include <mutex>

#include "buddy.h"
#include "bug.h"
#include "cma.h"
#include "kasan_asan.h"
#include "kernel.h"
#include "kfence.h"
#include "page_census.h"
#include "pcp.h"
#include "pressure_init.h"
#include "slub.h"
#include "vmalloc.h"

namespace kmm {

static void check_pcp(Kernel& k, zone& z, std::vector<std::string>& errors) {
  for (unsigned c = 0; c < k.nr_cpu_slots(); c++) {
    per_cpu_pages& pcp = z.pcp[c];
    long pages = 0;
    for (unsigned idx = 0; idx < NR_PCP_LISTS; idx++) {
      unsigned order = idx / MIGRATE_PCPTYPES;
      unsigned long n = 0;
      for (uint32_t pfn = pcp.lists[idx].head; pfn != PFN_NIL; pfn = k.mem.mem_map[pfn].lru_next) {
        const struct page& p = k.mem.mem_map[pfn];
        if (++n > k.mem.nr_pages) {
          errors.push_back(strprintf("pcp: zone %s cpu %u list %u is cyclic", z.name, c, idx));
          break;
        }
        if (!(p.flags & PG_pcp) || p.private_ != order)
          errors.push_back(strprintf("pcp: zone %s cpu %u: pfn 0x%x on the order-%u list is not a "
                                     "pcp block of that order",
                                     z.name, c, pfn, order));
        if (pfn < z.zone_start_pfn || pfn >= z.end_pfn())
          errors.push_back(
              strprintf("pcp: zone %s cpu %u: pfn 0x%x is outside the zone", z.name, c, pfn));
        pages += 1l << order;
      }
    }
    if (pages != pcp.count)
      errors.push_back(strprintf("pcp: zone %s cpu %u: lists hold %ld pages, count says %d", z.name,
                                 c, pages, pcp.count));
    if (pcp.high > 0 && pcp.count >= pcp.high + pcp_count_slack(pcp.batch))
      errors.push_back(strprintf("pcp: zone %s cpu %u: count %d past high %d plus the refill "
                                 "slack %d",
                                 z.name, c, pcp.count, pcp.high, pcp_count_slack(pcp.batch)));
  }
}

// How a tail's record differs from what a tail must be (0: not at all). flags and page_type are
// the record's first four bytes (kmm/page.h); compound_head counts where head_mask says so.
KMM_NO_SANITIZE static inline __attribute__((always_inline)) uint32_t
tail_diff(const struct page& t, uint32_t want, uint32_t head_pfn, uint32_t head_mask) {
  static_assert(offsetof(struct page, flags) == 0 && offsetof(struct page, page_type) == 2);
  static_assert(std::endian::native == std::endian::little); // flags is w's low half
  uint32_t w;
  std::memcpy(&w, &t, sizeof w);
  return (w ^ want) | ((t.compound_head ^ head_pfn) & head_mask);
}

// The tails of the n-page block at head: the index of the first one that is not what a tail
// must be, or 0. A compound block's tails are PG_tail with compound_head at the head's pfn; any
// other block's have no flags. No tail has a page_type. This loop reads a cache line per struct
// page of RAM on every validate(), so it is written to run at the memory's speed: eight tails
// at a time, their differences or'ed together, and the one at fault searched only when the
// eight show one. Neither sanitizer instruments it (KMM_NO_SANITIZE): its reads stay inside
// mem_map, one record per tail of a block check_pages has bounded by nr_pages.
KMM_NO_SANITIZE static unsigned long first_bad_tail(const struct page* head, unsigned long n,
                                                    bool compound, uint32_t head_pfn) {
  const uint32_t want = compound ? PG_tail : 0, head_mask = compound ? ~0u : 0;
  unsigned long i = 1;
  for (; i + 8 <= n; i += 8) {
    uint32_t any = 0;
    for (unsigned long j = 0; j < 8; j++) any |= tail_diff(head[i + j], want, head_pfn, head_mask);
    if (any) break;
  }
  for (; i < n; i++)
    if (tail_diff(head[i], want, head_pfn, head_mask)) return i;
  return 0;
}

// One visited pfn into the census (page_census.h).
static void take_census(const struct page& p, uint32_t pfn, PageCensus& census) {
  if (p.flags & PG_slab) census.slabs.push_back(pfn);
  if (!(p.flags & PG_alloc)) return;
  switch (p.owner) {
  case PageOwner::Anon: census.anon++; break;
  case PageOwner::PageCache: census.pagecache++; break;
  case PageOwner::PageTable: census.pagetable++; break;
  default: break;
  }
}

// Every pfn in exactly one state. Tails of free and pcp blocks, and of non-compound
// allocations, are all-zero records; compound tails point at their head. Not ASan-instrumented:
// it reads only mem_map, an anonymous mapping whose ASan shadow is never poisoned, and
// it reads all of it on every validate() - a twentieth of fuzz_machine's time went to the checks.
// What the slab and pressure checks need from mem_map it takes down in `census` on the way.
KMM_NO_SANITIZE_ADDRESS static void check_pages(Kernel& k, std::vector<std::string>& errors,
                                                PageCensus& census) {
  const unsigned long nr = k.mem.nr_pages;
  // A free block is a page type, not a flag: fold it in as bit 0, which no PG_* flag uses.
  const uint32_t states = PG_pcp | PG_alloc | PG_reserved;
  constexpr uint32_t BUDDY = 1;
  static_assert(!(states & BUDDY));
  census.clear();
  for (unsigned long pfn = 0; pfn < nr;) {
    const struct page& p = k.mem.mem_map[pfn];
    if (p.flags & (PG_slab | PG_alloc)) take_census(p, uint32_t(pfn), census);
    uint32_t st = (p.flags & states) | (PageBuddy(p) ? BUDDY : 0);
    if (st == 0 || (st & (st - 1))) {
      errors.push_back(strprintf("pages: pfn 0x%lx is in %s state (flags 0x%x page_type 0x%x)", pfn,
                                 st ? "more than one" : "no", p.flags, p.page_type));
      pfn++;
      continue;
    }
    if (st == PG_reserved) {
      pfn++;
      continue;
    }
    unsigned order = p.private_;
    if (order > MAX_PAGE_ORDER_ || (pfn & ((1ul << order) - 1)) || pfn + (1ul << order) > nr) {
      errors.push_back(strprintf("pages: pfn 0x%lx has a bad order %u", pfn, order));
      pfn++;
      continue;
    }
    zone& z = page_zone(k, pfn);
    if (pfn + (1ul << order) > z.end_pfn())
      errors.push_back(
          strprintf("pages: block 0x%lx order %u crosses the end of zone %s", pfn, order, z.name));
    if ((p.flags & PG_alloc) && p._refcount <= 0)
      errors.push_back(strprintf("pages: allocated pfn 0x%lx has refcount %d", pfn, p._refcount));
    if ((p.flags & PG_alloc) && p.owner == PageOwner::None)
      errors.push_back(strprintf("pages: allocated pfn 0x%lx has no owner", pfn));
    if (!(p.flags & PG_alloc) && p.owner != PageOwner::None)
      errors.push_back(
          strprintf("pages: free pfn 0x%lx still has owner %s", pfn, page_owner_name(p.owner)));
    if (unsigned long i = first_bad_tail(&p, 1ul << order, p.flags & PG_head, uint32_t(pfn))) {
      const struct page& t = k.mem.mem_map[pfn + i];
      std::string type = t.page_type ? strprintf(" page_type 0x%x", t.page_type) : "";
      errors.push_back(strprintf("pages: pfn 0x%lx inside the order-%u block at 0x%lx has flags "
                                 "0x%x%s",
                                 pfn + i, order, pfn, t.flags, type.c_str()));
    }
    pfn += 1ul << order;
  }
}

unsigned long buddy_span(const Kernel& k, unsigned long pfn) {
  const struct page& p = k.mem.mem_map[pfn];
  if (!PageBuddy(p) || p.private_ > MAX_PAGE_ORDER_ || (pfn & ((1ul << p.private_) - 1)) ||
      pfn + (1ul << p.private_) > k.mem.nr_pages)
    return 1;
  return 1ul << p.private_;
}

// CpuState's invariant (kernel.h). A wrong atomic_depth would let the slab fast path take a
// sleeping allocation in atomic context without the report, or send every one to the general path.
static void check_cpus(Kernel& k, std::vector<std::string>& errors) {
  for (unsigned cpu = 0; cpu < k.nr_cpu_slots(); cpu++) {
    const CpuState& c = k.cpus[cpu];
    if (c.preempt_count < 0 || c.irq_disable_depth < 0 || c.in_irq < 0 ||
        c.atomic_depth != c.preempt_count + c.irq_disable_depth + c.in_irq)
      errors.push_back(strprintf("cpu %u: atomic_depth %d, but preempt_count %d + "
                                 "irq_disable_depth %d + in_irq %d",
                                 cpu, c.atomic_depth, c.preempt_count, c.irq_disable_depth,
                                 c.in_irq));
  }
}

const char* page_owner_name(PageOwner owner) {
  switch (owner) {
  case PageOwner::None: return "none";
  case PageOwner::Kernel: return "kernel";
  case PageOwner::Slab: return "slab";
  case PageOwner::KmallocLarge: return "kmalloc-large";
  case PageOwner::Vmalloc: return "vmalloc";
  case PageOwner::Anon: return "anon";
  case PageOwner::PageCache: return "pagecache";
  case PageOwner::PageTable: return "pagetable";
  case PageOwner::Cma: return "cma";
  case PageOwner::Dma: return "dma";
  case PageOwner::Kfence: return "kfence";
  }
  return "?";
}

std::vector<std::string> validate(Machine& m) {
  Kernel& k = m.kernel();
  std::vector<std::string> errors;
  for (auto& z : k.zones) {
    if (!z.populated()) continue;
    for (unsigned c = 0; c < k.nr_cpu_slots(); c++) z.pcp[c].lock.lock();
    {
      std::lock_guard<std::mutex> guard(z.lock);
      buddy_check_zone(k, z, errors);
      check_pcp(k, z, errors);
    }
    for (unsigned c = 0; c < k.nr_cpu_slots(); c++) z.pcp[c].lock.unlock();
    if (!(z._watermark[WMARK_MIN] <= z._watermark[WMARK_LOW] &&
          z._watermark[WMARK_LOW] <= z._watermark[WMARK_HIGH] &&
          z._watermark[WMARK_HIGH] <= z._watermark[WMARK_PROMO]))
      errors.push_back(
          strprintf("watermark: zone %s: min %lu low %lu high %lu promo %lu out of order", z.name,
                    z._watermark[WMARK_MIN], z._watermark[WMARK_LOW], z._watermark[WMARK_HIGH],
                    z._watermark[WMARK_PROMO]));
  }
  thread_local PageCensus census; // its storage kept from call to call
  check_pages(k, errors, census);
  check_cpus(k, errors);
  slab_validate(k, errors, census);
  vmalloc_validate(k, errors);
  pressure_validate(k, errors, census);
  cma_validate(k, errors);
  kfence_validate(k, errors);
  return errors;
}

} // namespace kmm
