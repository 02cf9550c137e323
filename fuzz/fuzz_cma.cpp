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
//   - a live task never loses anonymous pages to a migration (the harness's task model).
#include "cma.h"
#include "harness.h"
#include "kernel.h"
#include "kmm/linux.h"
#include "scenario_run.h"

namespace {

using namespace kmm;

struct CmaOracle : fuzz::Oracle {
  void after(fuzz::Ctx& c, const Op& op) override {
    if (std::string(fuzz::op_name(op)) != "cma_alloc") return;
    const scn::Result& r = c.r->results.at(op.result);
    if (!r.page) return;
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
