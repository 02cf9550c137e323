// Fuzz target: kmalloc, kzalloc, krealloc, kfree, kfree_sensitive, ksize on the input's machine.
//
// Oracles, beyond the harness's (liveness, no overlap, content - including the prefix krealloc
// must carry to the new object -, kzalloc zeroed, no report, validate every 16 operations):
//   - ksize(p) >= the requested size for every object kmalloc/kzalloc/krealloc returns;
//   - a request above KMALLOC_MAX_SIZE returns NULL (with a WARN), anything else in range on a
//     machine with free memory may return NULL only with an allocation-failure report.
#include "harness.h"
#include "kernel.h"
#include "kmm/linux.h"
#include "kmm/slab.h"
#include "scenario_run.h"

namespace {

using namespace kmm;

struct KmallocOracle : fuzz::Oracle {
  void after(fuzz::Ctx& c, const Op& op) override {
    const std::string_view n = fuzz::op_name(op);
    if (n != "kmalloc" && n != "kzalloc" && n != "krealloc") return;
    size_t size = static_cast<size_t>(op.args[n == "krealloc" ? 1 : 0].num);
    void* p = c.r->results.at(op.result).ptr;
    if (size > KMALLOC_MAX_SIZE && p)
      fuzz::fail(c, op.result + ": a request above KMALLOC_MAX_SIZE succeeded");
    if (size == 0 && n != "krealloc" && p != ZERO_SIZE_PTR)
      fuzz::fail(c, op.result + ": size 0 is not ZERO_SIZE_PTR");
    if (!ZERO_OR_NULL_PTR(p) && ksize(p) < size)
      fuzz::fail(c, "ksize(" + op.result + ") = " + std::to_string(ksize(p)) + " < " +
                        std::to_string(size));
  }
};

const fuzz::Target target{"kmalloc",
                          {"kmalloc", "kzalloc", "krealloc", "kfree", "kfree_sensitive", "ksize",
                           "write", "read", "fill", "cpu"},
                          nullptr,
                          16,
                          fuzz::report_bit(ReportKind::AllocFail) |
                              fuzz::report_bit(ReportKind::Warn),
                          true,
                          [] { return std::unique_ptr<fuzz::Oracle>(new KmallocOracle); }};

} // namespace

KMM_FUZZ_TARGET(target)
