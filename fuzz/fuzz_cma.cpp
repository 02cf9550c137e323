// Fuzz target: CMA. cma_alloc/cma_release on a machine with a CMA area, among tasks whose
// anonymous (movable) pages borrow the area's pageblocks, page and kmalloc allocations, and
// coherent DMA buffers (which come from the area when they can).
//
// Oracles, beyond the harness's (liveness, no overlap, content - tasks' bytes are read through
// their current pages, so a migration that loses or mixes them up fails -, DMA buffers zeroed
// and below their mask, reports, validate - which compares the CMA bitmap with the page
// states - every 16 operations and at the end):
//   - a cma_alloc range lies inside the area, its first pfn is aligned to 2^align pages, and
//     every page of it is handed out (owner CMA, not free);
//   - content intact across migration: after each successful cma_alloc every live allocation
//     and every task reads back what was written to it (the pages it moved kept their bytes);
//   - a live task never loses anonymous pages to a migration (the harness's task model);
//   - detection (one injected fault per run): the first alloc_pages with __GFP_MOVABLE runs
//     although it is misuse on a CMA machine (kernel memory nothing can migrate, which may land
//     in the area's pageblocks). The run is tainted from there (reports and validate are the
//     kernel's business), but no cma_alloc may hand out a range holding that page: the
//     harness's no-overlap check fails if alloc_contig_range misses an unmovable page;
//   - no futile migration: a range holding an unmovable page is refused when it is isolated,
//     before any page of it moves (has_unmovable_pages). So a cma_alloc that fails while every
//     free aligned candidate range holds an unmovable page (or there is none) migrates nothing:
//     pgmigrate_success and pgmigrate_fail are what they were after the previous operation.
#include <algorithm>
#include <string>
#include <vector>

#include "cma.h"
#include "harness.h"
#include "kernel.h"
#include "kmm/linux.h"
#include "scenario_run.h"

namespace {

using namespace kmm;

// The sum over CPUs of a VM event counter (/proc/vmstat's value).
unsigned long vm_events(Kernel& k, vm_event_item item) {
  unsigned long n = 0;
  for (unsigned cpu = 0; cpu < k.nr_cpu_slots(); cpu++) n += k.cpus[cpu].events[item];
  return n;
}

// Whether some aligned range of `count` pages whose bitmap bits are clear holds no unmovable page
// (an allocated page of a non-movable owner, or a reserved one), as cma_alloc's candidates are
// chosen (find_zero_area with mask and offset, order_per_bit 0).
bool has_movable_candidate(Kernel& k, const struct cma& area, unsigned long count, unsigned align) {
  const unsigned long n = area.count;
  std::vector<unsigned> taken(n + 1, 0), pinned(n + 1, 0); // prefix sums
  std::vector<uint8_t> unmovable(n, 0);
  for (unsigned long i = 0; i < n;) {
    const struct page* p = pfn_to_page(area.base_pfn + i);
    unsigned long len = 1;
    if (p->flags & PG_alloc) {
      len = std::min(1ul << p->private_, n - i);
      const bool movable = p->owner == PageOwner::Anon || p->owner == PageOwner::PageCache;
      if (!movable) std::fill_n(unmovable.begin() + long(i), len, 1);
    } else if (p->flags & PG_reserved) {
      unmovable[i] = 1;
    }
    i += len;
  }
  for (unsigned long i = 0; i < n; i++) {
    taken[i + 1] = taken[i] + area.bitmap[i];
    pinned[i + 1] = pinned[i] + unmovable[i];
  }
  const unsigned long mask = align ? (1ul << align) - 1 : 0;
  for (unsigned long i = 0; i + count <= n; i++) {
    if ((area.base_pfn + i) & mask) continue;
    if (taken[i + count] == taken[i] && pinned[i + count] == pinned[i]) return true;
  }
  return false;
}

struct CmaOracle : fuzz::Oracle {
  bool injected = false;
  unsigned long migrated = 0, migrate_failed = 0; // after the previous operation

  bool inject(fuzz::Ctx&, const Op& op, const std::string& why) override {
    if (injected || std::string(fuzz::op_name(op)) != "alloc_pages" ||
        why != "__GFP_MOVABLE kernel memory on a machine with CMA")
      return false;
    injected = true;
    return true;
  }

  // The injected page is an ordinary allocation in the wrong place: freeing it at the end
  // leaves nothing behind, so the machine is restored for the next input.
  bool misuse_keeps_machine_sound() const override { return true; }

  void at_boot(fuzz::Ctx& c) override { remember_migrations(c); }

  void remember_migrations(fuzz::Ctx& c) {
    migrated = vm_events(c.r->k, PGMIGRATE_SUCCESS);
    migrate_failed = vm_events(c.r->k, PGMIGRATE_FAIL);
  }

  // A failed cma_alloc with no candidate free of unmovable pages moved nothing.
  void check_no_futile_migration(fuzz::Ctx& c, const Op& op) {
    struct cma* area = c.r->k.cma ? c.r->k.cma->default_area : nullptr;
    const auto count = static_cast<unsigned long>(op.args[0].num);
    const auto align = static_cast<unsigned>(op.args[1].num);
    if (!area || count > area->count || has_movable_candidate(c.r->k, *area, count, align)) return;
    const unsigned long now = vm_events(c.r->k, PGMIGRATE_SUCCESS),
                        now_failed = vm_events(c.r->k, PGMIGRATE_FAIL);
    if (now != migrated || now_failed != migrate_failed)
      fuzz::fail(c, op.result +
                        ": cma_alloc failed with every candidate range holding an "
                        "unmovable page, yet migrated (pgmigrate_success " +
                        std::to_string(migrated) + " -> " + std::to_string(now) +
                        ", pgmigrate_fail " + std::to_string(migrate_failed) + " -> " +
                        std::to_string(now_failed) + ")");
  }

  void after(fuzz::Ctx& c, const Op& op) override {
    check_cma_alloc(c, op);
    remember_migrations(c);
  }

  void check_cma_alloc(fuzz::Ctx& c, const Op& op) {
    if (std::string(fuzz::op_name(op)) != "cma_alloc") return;
    const scn::Result& r = c.r->results.at(op.result);
    if (!r.page) return check_no_futile_migration(c, op);
    struct cma* area = c.r->k.cma ? c.r->k.cma->default_area : nullptr;
    if (!area) fuzz::fail(c, op.result + ": cma_alloc succeeded without a CMA area");
    unsigned long pfn = page_to_pfn(r.page), count = static_cast<unsigned long>(op.args[0].num);
    unsigned long align = static_cast<unsigned long>(op.args[1].num);
    if (pfn < area->base_pfn || pfn + count > area->base_pfn + area->count)
      fuzz::fail(c, op.result + ": range outside the CMA area");
    if (pfn & ((1ul << align) - 1))
      fuzz::fail(c, op.result + ": pfn " + std::to_string(pfn) + " not aligned to 2^" +
                        std::to_string(align));
    for (unsigned long i = 0; i < count; i++) {
      struct page* p = pfn_to_page(pfn + i);
      if (!(p->flags & PG_alloc) || p->owner != PageOwner::Cma)
        fuzz::fail(c, op.result + ": page " + std::to_string(i) +
                          " of the range is not handed out to CMA");
    }
    fuzz::check_all_content(c, "after cma_alloc");
  }
};

const fuzz::Target target{"cma",
                          {"cma_alloc", "cma_release", "task_spawn", "task_touch", "task_exit",
                           "write", "read", "fill", "alloc_pages", "free_pages", "kmalloc", "kfree",
                           "dma_alloc_coherent", "dma_free_coherent", "cpu", "proc_read"},
                          "mem=32M nr_cpus=2 cma=8M",
                          16,
                          fuzz::report_bit(ReportKind::AllocFail) |
                              fuzz::report_bit(ReportKind::Warn) |
                              fuzz::report_bit(ReportKind::Oom),
                          true,
                          [] { return std::unique_ptr<fuzz::Oracle>(new CmaOracle); }};

} // namespace

KMM_FUZZ_TARGET(target)
