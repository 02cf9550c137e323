// alloc_pages + __free_pages pairs per order, with and without the per-CPU page lists
// (kmm.pcp=0 sends every free straight to the buddy lists and every allocation to them).
// Orders 0 and 3 are pcp orders; order 9 always goes to the buddy allocator, so its two
// variants should match. One pair per iteration: the reported time is ns per alloc+free.
#include <benchmark/benchmark.h>

#include "kmm/linux.h"

namespace {

void BM_AllocFreePair(benchmark::State& state) {
  const unsigned order = static_cast<unsigned>(state.range(0));
  const bool pcp = state.range(1);
  auto m = kmm::Machine::boot(std::string("mem=256M nr_cpus=1 kmm.pcp=") + (pcp ? "1" : "0"));
  kmm::MachineScope scope(*m);
  // Warm up: one pair so the first iteration does not pay for the first pageblock steal.
  __free_pages(alloc_pages(GFP_KERNEL, order), order);
  for (auto _ : state) {
    struct page* p = alloc_pages(GFP_KERNEL, order);
    benchmark::DoNotOptimize(p);
    __free_pages(p, order);
  }
  state.SetLabel(pcp ? "pcp" : "no-pcp");
}

} // namespace

BENCHMARK(BM_AllocFreePair)->ArgNames({"order", "pcp"})->ArgsProduct({{0, 3, 9}, {1, 0}});
