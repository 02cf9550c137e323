// Reclaim and OOM under memory pressure on a mem=2G machine (issue #6). Each benchmark runs one
// scenario per iteration and times only its measured step (manual time); the machine's boot and
// the filling are set-up. Run with --benchmark_repetitions=3 for medians.
//
//   BM_ReclaimByAllocation  1 GiB + 32 MiB of clean page cache (file_read), free memory then used
//                           up down to 16 MiB, then 1 GiB of order-0 GFP_KERNEL allocations:
//                           kswapd (sync mode: on the allocating CPU) and direct reclaim must
//                           evict about 1 GiB of the cache (the 32 MiB extra keeps every
//                           allocation satisfiable above the watermarks). Timed: the 1 GiB of
//                           allocations. Counters: MiB reclaimed (pgsteal_kswapd + pgsteal_direct),
//                           allocations that failed (should be 0).
//   BM_AllocNoPressure      the same 1 GiB of allocations with memory free and no page cache
//                           (struct pages already touched once, as in the benchmark above): the
//                           allocation cost to subtract from the one above.
//   BM_DropCaches           1 GiB of clean page cache, then `echo 1 > drop_caches`. Timed: the
//   write. BM_OomResolution        four tasks fill the anonymous memory but 64 MiB (hog0 the
//   largest);
//                           a fifth task then faults in 64 pages at a time until one request
//                           meets no free memory. Reclaim cannot help (no page cache, no swap),
//                           so the OOM killer picks hog0 and frees its 512 MiB. Timed: that
//                           request, from task_touch to its return with all 64 pages, which
//                           includes faulting them in; the counter fault_us_per_page (the hogs'
//                           set-up rate) gives that share. Counter oom_kills: 1 expected.
#include <benchmark/benchmark.h>

#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include "kmm/linux.h"
#include "kmm/pressure.h"

namespace {

const char* const kBoot = "mem=2G nr_cpus=1";
constexpr unsigned long kGiBPages = (1ul << 30) / PAGE_SIZE;
constexpr unsigned long kMargin = (16ul << 20) / PAGE_SIZE; // 16 MiB left free before the step

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// A field of /proc/meminfo in kB, or of /proc/vmstat.
unsigned long proc_field(kmm::Machine& m, const char* path, const std::string& key) {
  std::istringstream in(m.proc_read(path));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) != 0) continue;
    std::string rest = line.substr(key.size());
    if (rest.empty() || (rest[0] != ':' && rest[0] != ' ')) continue;
    return std::stoul(rest.substr(rest.find_first_not_of(": ")));
  }
  return 0;
}
unsigned long free_pages(kmm::Machine& m) {
  return proc_field(m, "/proc/meminfo", "MemFree") / (PAGE_SIZE / 1024);
}
unsigned long reclaimed_pages(kmm::Machine& m) {
  return proc_field(m, "/proc/vmstat", "pgsteal_kswapd") +
         proc_field(m, "/proc/vmstat", "pgsteal_direct");
}

// Allocates order-0 pages until only `leave` pages are free (set-up: no reclaim should run).
void use_up_free_memory(kmm::Machine& m, unsigned long leave, std::vector<struct page*>& out) {
  unsigned long n = free_pages(m);
  for (unsigned long i = 0; n > leave && i < n - leave; i++) {
    struct page* p = alloc_pages(GFP_KERNEL | __GFP_NOWARN, 0);
    if (!p) break;
    out.push_back(p);
  }
}

void free_all(std::vector<struct page*>& pages) {
  for (struct page* p : pages) __free_pages(p, 0);
  pages.clear();
}

// The timed step shared by the two allocation benchmarks.
double allocate_gib(std::vector<struct page*>& out, unsigned long& got) {
  auto t0 = Clock::now();
  got = 0;
  for (unsigned long i = 0; i < kGiBPages; i++) {
    struct page* p = alloc_pages(GFP_KERNEL | __GFP_NOWARN, 0);
    if (!p) break;
    out.push_back(p);
    got++;
  }
  return seconds_since(t0);
}

void BM_ReclaimByAllocation(benchmark::State& state) {
  double reclaimed = 0, failed = 0;
  for (auto _ : state) {
    auto m = kmm::Machine::boot(kBoot);
    kmm::MachineScope scope(*m);
    int ino = kmm::file_create(*m, "data");
    const unsigned long cache = kGiBPages + 2 * kMargin;
    if (kmm::file_read(*m, ino, 0, cache) != long(cache)) {
      state.SkipWithError("could not fill the page cache");
      break;
    }
    std::vector<struct page*> pages;
    pages.reserve(3 * kGiBPages);
    use_up_free_memory(*m, kMargin, pages);
    unsigned long before = reclaimed_pages(*m), got = 0;
    state.SetIterationTime(allocate_gib(pages, got));
    reclaimed += double(reclaimed_pages(*m) - before);
    failed += double(kGiBPages - got);
    free_all(pages);
  }
  state.counters["reclaimed_MiB"] =
      benchmark::Counter(reclaimed * PAGE_SIZE / (1 << 20), benchmark::Counter::kAvgIterations);
  state.counters["failed_allocs"] = benchmark::Counter(failed, benchmark::Counter::kAvgIterations);
}

void BM_AllocNoPressure(benchmark::State& state) {
  for (auto _ : state) {
    auto m = kmm::Machine::boot(kBoot);
    kmm::MachineScope scope(*m);
    std::vector<struct page*> pages;
    pages.reserve(kGiBPages);
    unsigned long got = 0;
    allocate_gib(pages, got); // touch the struct pages once (mem_map is lazily backed)
    free_all(pages);
    state.SetIterationTime(allocate_gib(pages, got));
    if (got != kGiBPages) state.SkipWithError("allocation failed without pressure");
    free_all(pages);
  }
}

void BM_DropCaches(benchmark::State& state) {
  double dropped = 0;
  for (auto _ : state) {
    auto m = kmm::Machine::boot(kBoot);
    kmm::MachineScope scope(*m);
    int ino = kmm::file_create(*m, "data");
    kmm::file_read(*m, ino, 0, kGiBPages);
    long cached = kmm::file_cached_pages(*m, ino);
    auto t0 = Clock::now();
    int rc = m->proc_write("/proc/sys/vm/drop_caches", "1");
    state.SetIterationTime(seconds_since(t0));
    if (rc != 0) state.SkipWithError("drop_caches write failed");
    dropped += double(cached - kmm::file_cached_pages(*m, ino));
  }
  state.counters["dropped_MiB"] =
      benchmark::Counter(dropped * PAGE_SIZE / (1 << 20), benchmark::Counter::kAvgIterations);
}

void BM_OomResolution(benchmark::State& state) {
  double kills = 0, fault_us = 0;
  for (auto _ : state) {
    auto m = kmm::Machine::boot(kBoot);
    kmm::MachineScope scope(*m);
    // Page tables and the DMA zone's lowmem reserve are not usable by the hogs: leave 64 MiB.
    unsigned long each = (free_pages(*m) - 4 * kMargin) / 4;
    auto fill0 = Clock::now();
    for (int i = 0; i < 4; i++) {
      int pid = kmm::task_spawn(*m, "hog" + std::to_string(i), 0);
      if (kmm::task_touch(*m, pid, each + (i == 0 ? 1024 : 0)) <= 0) // hog0 the largest
        state.SkipWithError("hog could not fill memory");
    }
    fault_us += seconds_since(fill0) * 1e6 / double(4 * each + 1024);
    if (proc_field(*m, "/proc/vmstat", "oom_kill") != 0) {
      state.SkipWithError("the OOM killer ran while the hogs filled memory");
      break;
    }
    int pid = kmm::task_spawn(*m, "request", 0);
    constexpr unsigned long kRequest = 64;
    double took = -1;
    for (unsigned long n = 0; took < 0 && n < kGiBPages; n += kRequest) {
      auto t0 = Clock::now();
      long touched = kmm::task_touch(*m, pid, kRequest);
      double dt = seconds_since(t0);
      if (touched != long(kRequest)) {
        state.SkipWithError("a request did not succeed");
        break;
      }
      if (proc_field(*m, "/proc/vmstat", "oom_kill") != 0) took = dt;
    }
    if (took < 0) {
      state.SkipWithError("no OOM kill");
      break;
    }
    state.SetIterationTime(took);
    kills += double(proc_field(*m, "/proc/vmstat", "oom_kill"));
  }
  state.counters["fault_us_per_page"] =
      benchmark::Counter(fault_us, benchmark::Counter::kAvgIterations);
  state.counters["oom_kills"] = benchmark::Counter(kills, benchmark::Counter::kAvgIterations);
}

} // namespace

BENCHMARK(BM_ReclaimByAllocation)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AllocNoPressure)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DropCaches)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_OomResolution)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
