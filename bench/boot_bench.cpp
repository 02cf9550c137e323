// Machine::boot time against mem=: the memfd and direct map, the lazily backed struct page
// array, the boot free lists (one write per MAX_PAGE_ORDER block), watermarks and /proc. The
// counter "per_GiB" (seconds) divides by the machine's size.
#include <benchmark/benchmark.h>

#include "kmm/machine.h"

namespace {

void BM_Boot(benchmark::State& state) {
  const uint64_t mib = static_cast<uint64_t>(state.range(0));
  const std::string cmdline = "mem=" + std::to_string(mib) + "M";
  for (auto _ : state) {
    auto m = kmm::Machine::boot(cmdline);
    benchmark::DoNotOptimize(m.get());
    state.PauseTiming();
    m.reset(); // teardown (munmap) is not boot time
    state.ResumeTiming();
  }
  // Seconds per GiB booted: a rate of GiB per second, inverted.
  state.counters["per_GiB"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * static_cast<double>(mib) / 1024.0,
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

} // namespace

BENCHMARK(BM_Boot)->ArgName("mem_MiB")->Arg(64)->Arg(1024)->Arg(16384)->Unit(
    benchmark::kMillisecond);
