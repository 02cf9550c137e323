// vmalloc+vfree per size against kmalloc+kfree of the same size, and cma_alloc with and without
// migration (DESIGN.md section 7). Run from a release build: build/release/bench/vmalloc_bench.
#include <benchmark/benchmark.h>

#include <cstring>

#include "kmm/linux.h"
#include "kmm/pressure.h"

namespace {

void BM_vmalloc_vfree(benchmark::State& state) {
  auto m = kmm::Machine::boot("mem=256M");
  kmm::MachineScope scope(*m);
  const size_t size = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    void* p = vmalloc(size);
    benchmark::DoNotOptimize(p);
    vfree(p);
  }
  state.SetLabel(std::to_string(size >> 10) + "K");
}
BENCHMARK(BM_vmalloc_vfree)->Arg(4096)->Arg(64 << 10)->Arg(1 << 20)->Arg(4 << 20);

void BM_kmalloc_kfree(benchmark::State& state) {
  auto m = kmm::Machine::boot("mem=256M");
  kmm::MachineScope scope(*m);
  const size_t size = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    void* p = kmalloc(size, GFP_KERNEL);
    benchmark::DoNotOptimize(p);
    kfree(p);
  }
  state.SetLabel(std::to_string(size >> 10) + "K");
}
BENCHMARK(BM_kmalloc_kfree)->Arg(4096)->Arg(64 << 10)->Arg(1 << 20)->Arg(4 << 20);

// cma_alloc of 1 MiB on an idle area (no migration) ...
void BM_cma_alloc_release_idle(benchmark::State& state) {
  auto m = kmm::Machine::boot("mem=64M cma=16M");
  kmm::MachineScope scope(*m);
  struct cma* area = dev_get_cma_area(nullptr);
  for (auto _ : state) {
    struct page* p = cma_alloc(area, 256, 8, false);
    benchmark::DoNotOptimize(p);
    cma_release(area, p, 256);
  }
}
BENCHMARK(BM_cma_alloc_release_idle);

// ... and of 1 MiB whose range is full of a task's pages, which must be migrated out first.
void BM_cma_alloc_release_migrating(benchmark::State& state) {
  auto m = kmm::Machine::boot("mem=64M cma=16M");
  kmm::MachineScope scope(*m);
  struct cma* area = dev_get_cma_area(nullptr);
  int pid = kmm::task_spawn(*m, "filler");
  kmm::task_touch(*m, pid, 10000); // 40 MiB: the CMA area is borrowed by user pages
  unsigned long migrated = 0;
  for (auto _ : state) {
    struct page* p = cma_alloc(area, 256, 8, false);
    benchmark::DoNotOptimize(p);
    state.PauseTiming();
    cma_release(area, p, 256);
    // Give the freed range back to the task so the next round migrates again.
    kmm::task_exit(*m, pid);
    pid = kmm::task_spawn(*m, "filler");
    kmm::task_touch(*m, pid, 10000);
    migrated++;
    state.ResumeTiming();
  }
  state.counters["rounds"] = static_cast<double>(migrated);
}
BENCHMARK(BM_cma_alloc_release_migrating)->Iterations(50);

} // namespace
