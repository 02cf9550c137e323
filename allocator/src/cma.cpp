// CMA (see cma.h).
//
// cma_alloc() follows mm/cma.c: find a zero run in the bitmap honouring the alignment, claim it,
// and try alloc_contig_range() on it; on -EBUSY (a pinned or unmovable page) release the bits
// and try the next aligned candidate.
//
// alloc_contig_range() follows mm/page_alloc.c and mm/page_isolation.c:
//  1. isolate: refuse if a page in the range is unmovable, then turn every pageblock touching the
//     range MIGRATE_ISOLATE and move its free blocks to the Isolate lists (no longer free memory);
//  2. drain the pcp lists, so pages cached there come back to the (isolated) buddy lists;
//  3. migrate every movable page of the range to a new page outside it (migrate_page_owner
//     copies the bytes and moves the owner's reference), up to 5 rounds without progress;
//  4. check every page of the range is free, take the covering free blocks off the lists, hand
//     out the range as order-0 pages and free back the parts of the blocks outside it;
//  5. undo the isolation: the pageblocks become MIGRATE_CMA again, their free pages free again.
// Lock order: cma->alloc_mutex, then zone->lock, then cma->lock.
#include "cma.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "buddy.h"
#include "bug.h"
#include "kasan.h"
#include "kernel.h"
#include "kmm/machine.h"
#include "page_alloc.h"
#include "pcp.h"

namespace kmm {

static constexpr unsigned long MAX_ORDER_NR_PAGES = 1ul << MAX_PAGE_ORDER_;

// --- boot ------------------------------------------------------------------------------------

void cma_reserve(Kernel& k) {
  k.cma = std::make_unique<CmaState>();
  const std::string& arg = k.params.cma;
  if (arg.empty()) return;
  auto at = arg.find('@');
  uint64_t size = 0, base = 0;
  bool fixed = at != std::string::npos;
  if (!memparse(arg.substr(0, at), &size) || (fixed && !memparse(arg.substr(at + 1), &base)))
    throw BootError("boot parameter 'cma=" + arg + "': expected SIZE or SIZE@BASE (e.g. 8M@16M)");
  if (size == 0) return;
  const uint64_t align = PAGE_SIZE_ << pageblock_order; // CMA_MIN_ALIGNMENT_BYTES: 2 MiB
  size = (size + align - 1) & ~(align - 1);
  if (fixed && (base & (align - 1)))
    throw BootError("boot parameter 'cma=" + arg + "': the base must be 2M aligned");
  if (size >= k.mem.bytes)
    throw BootError("boot parameter 'cma=" + arg + "': larger than the machine's memory");
  if (!fixed) {
    // Above 4 GiB when there is room (not to fragment DMA32), else the top of the highest
    // non-movable zone, top-down as memblock allocates.
    zone& normal = k.zones[ZONE_NORMAL];
    if (k.mem.bytes >= (4ull << 30) + size && normal.populated())
      base = uint64_t(normal.zone_start_pfn) << PAGE_SHIFT_;
    else {
      int top = ZONE_NORMAL;
      while (top > 0 && !k.zones[top].populated()) top--;
      base = ((uint64_t(k.zones[top].end_pfn()) << PAGE_SHIFT_) - size) & ~(align - 1);
    }
  }
  unsigned long base_pfn = static_cast<unsigned long>(base >> PAGE_SHIFT_);
  unsigned long count = static_cast<unsigned long>(size >> PAGE_SHIFT_);
  if (base_pfn == 0 || base_pfn + count > k.mem.nr_pages)
    throw BootError("boot parameter 'cma=" + arg + "': the range must lie inside RAM, above pfn 0");
  zone& z = page_zone(k, base_pfn);
  if (base_pfn < z.zone_start_pfn || base_pfn + count > z.end_pfn())
    throw BootError("boot parameter 'cma=" + arg + "': the range must lie inside one zone (" +
                    z.name + " ends at " + std::to_string(uint64_t(z.end_pfn()) << PAGE_SHIFT_) +
                    ")");

  auto area = std::make_unique<struct cma>();
  area->name = "reserved";
  area->base_pfn = base_pfn;
  area->count = count;
  area->bitmap.assign(count, false);
  for (unsigned long pfn = base_pfn; pfn < base_pfn + count; pfn += pageblock_nr_pages)
    k.mem.set_pageblock_migratetype(pfn, MIGRATE_CMA);
  z.cma_pages += count;
  k.cma->totalcma_pages += count;
  k.cma->default_area = area.get();
  k.cma->areas.push_back(std::move(area));
  k.log.printk(strprintf("cma: Reserved %llu MiB at 0x%016llx on node -1",
                         (unsigned long long)(size >> 20), (unsigned long long)base));
}

// --- alloc_contig_range ---------------------------------------------------------------------

// Calls fn(pfn, order, page) for each block (free, pcp, allocated or reserved page) that
// overlaps [start, end). Blocks never straddle a MAX_ORDER_NR_PAGES boundary, so a walk from
// the aligned pfn below start lands on block heads.
template <typename Fn>
static void for_each_block(Kernel& k, unsigned long start, unsigned long end, Fn fn) {
  unsigned long pfn = start & ~(MAX_ORDER_NR_PAGES - 1);
  while (pfn < end) {
    struct page* p = k.mem.pfn_to_page(pfn);
    unsigned order = (PageBuddy(*p) || (p->flags & (PG_pcp | PG_alloc))) ? p->private_ : 0;
    unsigned long n = 1ul << order;
    if (pfn + n > start) fn(pfn, order, p);
    pfn += n;
  }
}

static bool is_movable_owner(PageOwner o) {
  return o == PageOwner::Anon || o == PageOwner::PageCache;
}

static int start_isolate_page_range(Kernel& k, zone& z, unsigned long start, unsigned long end) {
  std::lock_guard<std::mutex> guard(z.lock);
  bool unmovable = false;
  for_each_block(k, start, end, [&](unsigned long, unsigned, struct page* p) {
    if ((p->flags & PG_alloc) && !is_movable_owner(p->owner)) unmovable = true;
    if (p->flags & PG_reserved) unmovable = true;
  });
  if (unmovable) return -EBUSY;
  unsigned long pb = start & ~(pageblock_nr_pages - 1);
  for (; pb < end; pb += pageblock_nr_pages) {
    k.mem.set_pageblock_migratetype(pb, MIGRATE_ISOLATE);
    move_freepages_block(k, z, pb, MIGRATE_ISOLATE);
  }
  return 0;
}

static void undo_isolate_page_range(Kernel& k, zone& z, unsigned long start, unsigned long end) {
  std::lock_guard<std::mutex> guard(z.lock);
  for (unsigned long pb = start & ~(pageblock_nr_pages - 1); pb < end; pb += pageblock_nr_pages) {
    k.mem.set_pageblock_migratetype(pb, MIGRATE_CMA);
    move_freepages_block(k, z, pb, MIGRATE_CMA);
  }
}

// One migration round; returns pages moved, sets *busy when a page cannot move now.
static unsigned long migrate_range(Kernel& k, unsigned long start, unsigned long end, bool* busy) {
  std::vector<struct page*> movable;
  for_each_block(k, start, end, [&](unsigned long, unsigned, struct page* p) {
    if (p->flags & PG_alloc) movable.push_back(p);
  });
  unsigned long moved = 0;
  for (struct page* old : movable) {
    if (!k.hooks.migrate_page || old->_refcount != 1 || old->private_ != 0) {
      *busy = true;
      k.count_event(PGMIGRATE_FAIL);
      continue;
    }
    // alloc_migration_target(): a movable page; isolated pageblocks are never allocated from.
    struct page* fresh =
        __alloc_pages(k, GFP_HIGHUSER_MOVABLE | __GFP_NOWARN | __GFP_NORETRY, 0, old->owner);
    if (!fresh) {
      *busy = true;
      k.count_event(PGMIGRATE_FAIL);
      continue;
    }
    if (!k.hooks.migrate_page(k, old, fresh)) {
      __free_pages(k, fresh, 0);
      *busy = true;
      k.count_event(PGMIGRATE_FAIL);
      continue;
    }
    old->owner = PageOwner::Kernel; // the owner's links moved to `fresh`
    __free_pages(k, old, 0);
    k.count_event(PGMIGRATE_SUCCESS);
    moved++;
  }
  return moved;
}

int alloc_contig_range(Kernel& k, unsigned long start, unsigned long end) {
  zone& z = page_zone(k, start);
  int ret = start_isolate_page_range(k, z, start, end);
  if (ret) return ret;
  drain_all_pages(k, &z);
  int tries = 0;
  for (;;) {
    bool busy = false;
    unsigned long moved = migrate_range(k, start, end, &busy);
    if (!busy) break;
    if (moved) tries = 0;
    if (++tries >= 5) {
      undo_isolate_page_range(k, z, start, end);
      return -EBUSY;
    }
    drain_all_pages(k, &z);
  }
  drain_all_pages(k, &z);
  {
    std::lock_guard<std::mutex> guard(z.lock);
    // test_pages_isolated(): everything in the range is a free block now.
    bool all_free = true;
    std::vector<std::pair<unsigned long, unsigned>> blocks;
    for_each_block(k, start, end, [&](unsigned long pfn, unsigned order, struct page* p) {
      if (!PageBuddy(*p)) all_free = false;
      else blocks.push_back({pfn, order});
    });
    if (!all_free) {
      ret = -EBUSY;
    } else {
      // isolate_freepages_range(): take the blocks, keep [start, end), free the rest back.
      for (auto [pfn, order] : blocks) {
        del_page_from_free_list(k, z, pfn, order);
        for (unsigned long p = pfn; p < pfn + (1ul << order); p++) {
          if (p >= start && p < end) {
            struct page* pg = k.mem.pfn_to_page(p);
            pg->flags = PG_alloc;
            pg->private_ = 0;
            pg->_refcount = 1;
            pg->owner = PageOwner::Cma;
            kasan_alloc_pages(k, pg, 0); // post_alloc_hook(): the range becomes accessible
            k.mem.clean_stale(p, 1);     // handed out (physmem.h)
            k.mem.mark_written(p, 1);
          } else {
            __free_one_page(k, z, p, 0, k.mem.get_pageblock_migratetype(p));
          }
        }
      }
    }
  }
  undo_isolate_page_range(k, z, start, end);
  return ret;
}

void free_contig_range(Kernel& k, unsigned long pfn, unsigned long nr) {
  for (unsigned long i = 0; i < nr; i++) __free_pages(k, k.mem.pfn_to_page(pfn + i), 0);
}

// --- cma_alloc / cma_release -------------------------------------------------------------

// bitmap_find_next_zero_area_off(): the first index >= start with (index + offset) & mask == 0
// whose nr bits are all clear.
static unsigned long find_zero_area(const std::vector<bool>& bm, unsigned long start,
                                    unsigned long nr, unsigned long mask, unsigned long offset) {
  const unsigned long size = bm.size();
  for (unsigned long idx = start; idx + nr <= size;) {
    idx = ((idx + offset + mask) & ~mask) - offset;
    if (idx + nr > size) break;
    unsigned long i = 0;
    while (i < nr && !bm[idx + i]) i++;
    if (i == nr) return idx;
    idx += i + 1;
  }
  return size;
}

static std::string cma_debug_show_areas(struct cma* c) {
  std::string runs;
  unsigned long free = 0;
  for (unsigned long i = 0; i < c->count;) {
    if (c->bitmap[i]) {
      i++;
      continue;
    }
    unsigned long j = i;
    while (j < c->count && !c->bitmap[j]) j++;
    runs += strprintf("%s%lu@%lu", runs.empty() ? "" : "+", j - i, i);
    free += j - i;
    i = j;
  }
  return strprintf("number of available pages: %s=> %lu free of %lu total pages\n", runs.c_str(),
                   free, c->count);
}

struct page* cma_alloc(Kernel& k, struct cma* c, unsigned long count, unsigned align,
                       bool no_warn) {
  if (!c || !c->count || !count) return nullptr;
  // An align above MAX_PAGE_ORDER is no error to the kernel, only a wider bitmap mask (which may
  // fit nowhere: an ordinary failure). Only a shift past the word is out of reach.
  if (count > c->count || align >= 64) {
    k.count_event(CMA_ALLOC_FAIL);
    return nullptr;
  }
  // mask/offset as mm/cma.c computes them with order_per_bit 0.
  const unsigned long mask = align ? (1ul << align) - 1 : 0;
  const unsigned long offset = c->base_pfn & mask;
  std::lock_guard<std::mutex> serial(c->alloc_mutex);
  unsigned long start = 0;
  int ret = -ENOMEM;
  for (;;) {
    unsigned long bit;
    {
      std::lock_guard<std::mutex> guard(c->lock);
      bit = find_zero_area(c->bitmap, start, count, mask, offset);
      if (bit >= c->count) break;
      for (unsigned long i = 0; i < count; i++) c->bitmap[bit + i] = true;
    }
    unsigned long pfn = c->base_pfn + bit;
    ret = alloc_contig_range(k, pfn, pfn + count);
    if (ret == 0) {
      c->alloc_success += count;
      k.count_event(CMA_ALLOC_SUCCESS);
      return k.mem.pfn_to_page(pfn);
    }
    {
      std::lock_guard<std::mutex> guard(c->lock);
      for (unsigned long i = 0; i < count; i++) c->bitmap[bit + i] = false;
    }
    if (ret != -EBUSY) break;
    start = bit + mask + 1; // the next aligned candidate
  }
  c->alloc_fail += count;
  k.count_event(CMA_ALLOC_FAIL);
  if (!no_warn) {
    std::string title = strprintf("cma_alloc: %s: alloc failed, req-size: %lu pages, ret: %d",
                                  c->name.c_str(), count, ret == -EBUSY ? -ENOMEM : ret);
    std::string text = title + "\n";
    {
      std::lock_guard<std::mutex> guard(c->lock);
      text += cma_debug_show_areas(c);
    }
    emit_report(k, Report{ReportKind::AllocFail, title, text});
  }
  return nullptr;
}

bool cma_release(Kernel& k, struct cma* c, const struct page* pages, unsigned long count) {
  if (!c || !pages || !k.mem.is_page(pages)) return false;
  unsigned long pfn = k.mem.page_to_pfn(pages);
  if (pfn < c->base_pfn || pfn >= c->base_pfn + c->count) return false;
  // The kernel's VM_BUG_ON(pfn + count > cma->base_pfn + cma->count), asked without the sum, so
  // a huge count cannot wrap past it (pfn is inside the area: the room left is at least 1).
  if (count > c->base_pfn + c->count - pfn) {
    report_warn(k, "mm/cma.c", "cma_release",
                "VM_BUG_ON(pfn + count > cma->base_pfn + cma->count)");
    return false;
  }
  {
    std::lock_guard<std::mutex> guard(c->lock);
    for (unsigned long i = 0; i < count; i++)
      if (!c->bitmap[pfn - c->base_pfn + i]) {
        report_bad_page(k, k.mem.pfn_to_page(pfn + i),
                        "cma_release() of a page cma_alloc() did not hand out");
        return false;
      }
  }
  free_contig_range(k, pfn, count);
  std::lock_guard<std::mutex> guard(c->lock);
  for (unsigned long i = 0; i < count; i++) c->bitmap[pfn - c->base_pfn + i] = false;
  c->release_success += count;
  return true;
}

// --- /proc/cma, debugfs and sysfs ------------------------------------------------------------

static unsigned long cma_used(struct cma* c) {
  return static_cast<unsigned long>(std::count(c->bitmap.begin(), c->bitmap.end(), true));
}

static unsigned long cma_maxchunk(struct cma* c) {
  unsigned long best = 0, run = 0;
  for (bool b : c->bitmap) {
    run = b ? 0 : run + 1;
    best = std::max(best, run);
  }
  return best;
}

static std::string proc_cma(Kernel& k) {
  // /proc/cma is kmm's summary of the debugfs files: one line per area.
  std::string t =
      strprintf("%-12s %10s %10s %10s %10s\n", "name", "base_pfn", "count", "used", "maxchunk");
  for (auto& c : k.cma->areas) {
    std::lock_guard<std::mutex> guard(c->lock);
    t += strprintf("%-12s %#10lx %10lu %10lu %10lu\n", c->name.c_str(), c->base_pfn, c->count,
                   cma_used(c.get()), cma_maxchunk(c.get()));
  }
  return t;
}

void register_cma_procfs(Kernel& k) {
  k.procfs.add("/proc/cma", {proc_cma, nullptr});
  k.procfs.add_resolver([](Kernel& k, const std::string& path, ProcFile* out) {
    for (auto& c : k.cma->areas) {
      struct cma* a = c.get();
      std::string dbg = "/sys/kernel/debug/cma/" + a->name + "/";
      std::string sys = "/sys/kernel/mm/cma/" + a->name + "/";
      auto num = [&](auto f) {
        out->read = [a, f](Kernel&) {
          std::lock_guard<std::mutex> guard(a->lock);
          return std::to_string(f(a)) + "\n";
        };
        out->write = nullptr;
        return true;
      };
      if (path == dbg + "base_pfn") return num([](struct cma* c) { return c->base_pfn; });
      if (path == dbg + "count") return num([](struct cma* c) { return c->count; });
      if (path == dbg + "order_per_bit")
        return num([](struct cma* c) { return (unsigned long)c->order_per_bit; });
      if (path == dbg + "used") return num([](struct cma* c) { return cma_used(c); });
      if (path == dbg + "maxchunk") return num([](struct cma* c) { return cma_maxchunk(c); });
      if (path == sys + "alloc_pages_success")
        return num([](struct cma* c) { return c->alloc_success; });
      if (path == sys + "alloc_pages_fail") return num([](struct cma* c) { return c->alloc_fail; });
      if (path == sys + "release_pages_success")
        return num([](struct cma* c) { return c->release_success; });
      if (path == sys + "total_pages") return num([](struct cma* c) { return c->count; });
      if (path == sys + "available_pages")
        return num([](struct cma* c) { return c->count - cma_used(c); });
    }
    return false;
  });
}

void cma_validate(Kernel& k, std::vector<std::string>& errors) {
  for (auto& c : k.cma->areas) {
    std::lock_guard<std::mutex> guard(c->lock);
    for (unsigned long pb = c->base_pfn; pb < c->base_pfn + c->count; pb += pageblock_nr_pages)
      if (k.mem.get_pageblock_migratetype(pb) != MIGRATE_CMA)
        errors.push_back(strprintf("cma: %s: pageblock at pfn 0x%lx is %s, not CMA",
                                   c->name.c_str(), pb,
                                   migratetype_names[k.mem.get_pageblock_migratetype(pb)]));
    const unsigned long end = c->base_pfn + c->count;
    for_each_block(k, c->base_pfn, end, [&](unsigned long pfn, unsigned order, struct page* p) {
      for (unsigned long i = 0; i < (1ul << order); i++) {
        unsigned long q = pfn + i;
        if (q < c->base_pfn || q >= end) continue;
        bool bit = c->bitmap[q - c->base_pfn];
        bool handed_out = (p->flags & PG_alloc) && order == 0 &&
                          (p->owner == PageOwner::Cma || p->owner == PageOwner::Dma);
        if (bit != handed_out)
          errors.push_back(strprintf("cma: %s: pfn 0x%lx bitmap bit %d but the page is %s",
                                     c->name.c_str(), q, bit,
                                     handed_out ? "handed out" : "not handed out"));
        if ((p->flags & PG_alloc) && !handed_out && !is_movable_owner(p->owner))
          errors.push_back(strprintf("cma: %s: pfn 0x%lx holds an unmovable %s page",
                                     c->name.c_str(), q, page_owner_name(p->owner)));
      }
    });
  }
}

} // namespace kmm
