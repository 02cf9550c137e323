// Fuzz target: SLUB caches (kmem_cache_create/alloc/zalloc/free/destroy/shrink) on the input's
// machine, against a map of live objects.
//
// Oracles, beyond the harness's (liveness, no two live objects overlap, content read back
// unchanged, zalloc zeroed, no report, validate every 16 operations, destroy clean at the end):
//   - every object kmem_cache_alloc returns lies in a slab page of the cache it came from
//     (page->slab.slab_cache is the cache kmem_cache_create returned, merged or not).
#include "harness.h"
#include "kernel.h"
#include "kmm/linux.h"
#include "kmm/slab.h"
#include "scenario_run.h"

namespace {

using namespace kmm;

struct SlabOracle : fuzz::Oracle {
  void after(fuzz::Ctx& c, const Op& op) override {
    std::string n = fuzz::op_name(op);
    if (n != "kmem_cache_alloc" && n != "kmem_cache_zalloc") return;
    const auto& obj = c.r->results.at(op.result);
    if (!obj.ptr) return;
    struct kmem_cache* cache = c.r->results.at(op.args[0].str).cache;
    struct page* p = compound_head(virt_to_page(obj.ptr));
    if (!p || !(p->flags & PG_slab) || p->slab.slab_cache != cache)
      fuzz::fail(c, op.result + " is not in a slab of " + op.args[0].str);
  }
};

const fuzz::Target target{
    "slab",
    {"kmem_cache_create", "kmem_cache_alloc", "kmem_cache_zalloc", "kmem_cache_free",
     "kmem_cache_destroy", "kmem_cache_shrink", "write", "read", "fill", "cpu"},
    nullptr,
    16,
    fuzz::report_bit(ReportKind::AllocFail) | fuzz::report_bit(ReportKind::Warn),
    true,
    [] { return std::unique_ptr<fuzz::Oracle>(new SlabOracle); }};

} // namespace

KMM_FUZZ_TARGET(target)
