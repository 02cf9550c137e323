// What KASAN and KFENCE cost the slab fast path (issue #4): kmalloc(64)+kfree pairs, and
// kmem_cache_alloc+kmem_cache_free of a 64-byte cache, on machines that differ only in the boot
// line. One pair per iteration: the time is ns per pair; bench/ratios.py divides each variant by
// the all-off one.
//   off       kasan=off kfence.sample_interval=0 (the baseline)
//   kasan     kasan=on: shadow unpoisoned on alloc, poisoned on free, frees go through the
//             quarantine (so the steady state also pays for evicting from it)
//   kfence    kfence.sample_interval=100: every 100th allocation goes to the guarded pool
#include <benchmark/benchmark.h>

#include <string>

#include "kmm/linux.h"

namespace {

struct Variant {
  const char* label;
  const char* boot;
};
const Variant kVariants[] = {
    {"off", "mem=256M nr_cpus=1 kasan=off kfence.sample_interval=0"},
    {"kasan", "mem=256M nr_cpus=1 kasan=on kfence.sample_interval=0"},
    {"kfence100", "mem=256M nr_cpus=1 kasan=off kfence.sample_interval=100"},
};

void BM_kmalloc64(benchmark::State& state) {
  const Variant& v = kVariants[state.range(0)];
  auto m = kmm::Machine::boot(v.boot);
  kmm::MachineScope scope(*m);
  kfree(kmalloc(64, GFP_KERNEL));
  for (auto _ : state) {
    void* p = kmalloc(64, GFP_KERNEL);
    benchmark::DoNotOptimize(p);
    kfree(p);
  }
  if (!m->reports().empty()) state.SkipWithError("kmm reported an error");
  state.SetLabel(v.label);
}

void BM_kmem_cache64(benchmark::State& state) {
  const Variant& v = kVariants[state.range(0)];
  auto m = kmm::Machine::boot(v.boot);
  kmm::MachineScope scope(*m);
  struct kmem_cache* s = kmem_cache_create("bench64", 64, 0, 0, nullptr);
  kmem_cache_free(s, kmem_cache_alloc(s, GFP_KERNEL));
  for (auto _ : state) {
    void* p = kmem_cache_alloc(s, GFP_KERNEL);
    benchmark::DoNotOptimize(p);
    kmem_cache_free(s, p);
  }
  if (!m->reports().empty()) state.SkipWithError("kmm reported an error");
  kmem_cache_destroy(s);
  state.SetLabel(v.label);
}

} // namespace

BENCHMARK(BM_kmalloc64)->ArgName("variant")->DenseRange(0, 2);
BENCHMARK(BM_kmem_cache64)->ArgName("variant")->DenseRange(0, 2);
