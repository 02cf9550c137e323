// SLUB and kmalloc fast paths against glibc, jemalloc and mimalloc, in one run (issue #3,
// DESIGN.md section 7). One alloc+free pair per iteration at 8, 64, 256, 1024 and 4096 bytes:
// the reported time is ns per pair. kmm runs with every debug feature off (no slub_debug,
// kasan=off, kfence.sample_interval=0) on one CPU, inside a MachineScope as the API requires.
//
// The peers must each really be the allocator they are named for, and none may replace malloc
// for the whole process (jemalloc and mimalloc both export malloc/free, so linking either one
// normally would interpose it everywhere, glibc's row included):
//   glibc     __libc_malloc/__libc_free: glibc's own entry points (malloc is their alias),
//             whatever else is loaded.
//   jemalloc  mallocx/dallocx from libkmm_bench_jemalloc.so, which holds the static
//             libjemalloc_pic.a and exports nothing but the non-standard *allocx and mallctl
//             names (bench/CMakeLists.txt). It is a DT_NEEDED library because dlopen() of
//             jemalloc fails with "cannot allocate memory in static TLS block".
//   mimalloc  mi_malloc/mi_free from libmimalloc.so.2 opened with dlopen(RTLD_LOCAL), so its
//             malloc never enters the global symbol scope.
// At start-up each peer is checked (the version it reports, and that a block it returned is
// its own: sallocx, mi_is_in_heap_region) and the result goes into the benchmark context. A
// peer missing at configure time, or failing its check, is left out and the context says why.
//
// bench/ratios.py turns the JSON output into the table of ns per pair and kmm/mimalloc ratios.
#include <benchmark/benchmark.h>

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "kmm/linux.h"

extern "C" {
void* __libc_malloc(size_t size);
void __libc_free(void* p);
}

#ifdef KMM_BENCH_JEMALLOC
extern "C" {
void* mallocx(size_t size, int flags);
void dallocx(void* p, int flags);
size_t sallocx(const void* p, int flags);
int mallctl(const char* name, void* oldp, size_t* oldlenp, void* newp, size_t newlen);
}
#endif

namespace {

const char* const kBoot = "mem=256M nr_cpus=1 kasan=off kfence.sample_interval=0";

// ---- kmm ---------------------------------------------------------------------------------------

void BM_kmem_cache(benchmark::State& state) {
  const auto size = static_cast<unsigned>(state.range(0));
  auto m = kmm::Machine::boot(kBoot);
  kmm::MachineScope scope(*m);
  struct kmem_cache* s = kmem_cache_create("bench", size, 0, 0, nullptr);
  if (!s) {
    state.SkipWithError("kmem_cache_create failed");
    return;
  }
  kmem_cache_free(s, kmem_cache_alloc(s, GFP_KERNEL)); // the first slab is not the fast path
  for (auto _ : state) {
    void* p = kmem_cache_alloc(s, GFP_KERNEL);
    benchmark::DoNotOptimize(p);
    kmem_cache_free(s, p);
  }
  if (!m->reports().empty()) state.SkipWithError("kmm reported an error");
  kmem_cache_destroy(s);
}

void BM_kmalloc(benchmark::State& state) {
  const auto size = static_cast<size_t>(state.range(0));
  auto m = kmm::Machine::boot(kBoot);
  kmm::MachineScope scope(*m);
  kfree(kmalloc(size, GFP_KERNEL));
  for (auto _ : state) {
    void* p = kmalloc(size, GFP_KERNEL);
    benchmark::DoNotOptimize(p);
    kfree(p);
  }
  if (!m->reports().empty()) state.SkipWithError("kmm reported an error");
}

// ---- peers -------------------------------------------------------------------------------------

void BM_glibc(benchmark::State& state) {
  const auto size = static_cast<size_t>(state.range(0));
  __libc_free(__libc_malloc(size));
  for (auto _ : state) {
    void* p = __libc_malloc(size);
    benchmark::DoNotOptimize(p);
    __libc_free(p);
  }
}

#ifdef KMM_BENCH_JEMALLOC
void BM_jemalloc(benchmark::State& state) {
  const auto size = static_cast<size_t>(state.range(0));
  dallocx(mallocx(size, 0), 0);
  for (auto _ : state) {
    void* p = mallocx(size, 0);
    benchmark::DoNotOptimize(p);
    dallocx(p, 0);
  }
}

// The library answers as jemalloc does: a version string, and sallocx of its own block.
std::string check_jemalloc() {
  const char* version = nullptr;
  size_t len = sizeof version;
  if (mallctl("version", &version, &len, nullptr, 0) != 0 || !version)
    return "mallctl(\"version\") failed";
  void* p = mallocx(100, 0);
  size_t usable = p ? sallocx(p, 0) : 0;
  if (p) dallocx(p, 0);
  if (usable != 112) // jemalloc's size class for 100 bytes
    return "sallocx(mallocx(100)) is " + std::to_string(usable) + ", not jemalloc's 112";
  return std::string("jemalloc ") + version;
}
#endif

#ifdef KMM_BENCH_MIMALLOC_PATH
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true; // g++
#elif defined(__has_feature)
constexpr bool kSanitized = __has_feature(address_sanitizer) || __has_feature(thread_sanitizer);
#else
constexpr bool kSanitized = false;
#endif

void* (*mi_malloc_fn)(size_t) = nullptr;
void (*mi_free_fn)(void*) = nullptr;

void BM_mimalloc(benchmark::State& state) {
  const auto size = static_cast<size_t>(state.range(0));
  mi_free_fn(mi_malloc_fn(size));
  for (auto _ : state) {
    void* p = mi_malloc_fn(size);
    benchmark::DoNotOptimize(p);
    mi_free_fn(p);
  }
}

// dlopen without RTLD_GLOBAL: mimalloc's malloc/free stay out of the global scope. DEEPBIND
// also binds its own internal references to itself; the sanitizers refuse DEEPBIND, and there
// RTLD_LOCAL alone is enough (mimalloc calls its mi_ functions, not malloc).
std::string load_mimalloc() {
  int flags = RTLD_NOW | RTLD_LOCAL;
  if (!kSanitized) flags |= RTLD_DEEPBIND;
  void* h = dlopen(KMM_BENCH_MIMALLOC_PATH, flags);
  if (!h) return std::string("dlopen failed: ") + dlerror();
  auto version = reinterpret_cast<int (*)()>(dlsym(h, "mi_version"));
  auto in_heap = reinterpret_cast<bool (*)(const void*)>(dlsym(h, "mi_is_in_heap_region"));
  mi_malloc_fn = reinterpret_cast<void* (*)(size_t)>(dlsym(h, "mi_malloc"));
  mi_free_fn = reinterpret_cast<void (*)(void*)>(dlsym(h, "mi_free"));
  if (!version || !in_heap || !mi_malloc_fn || !mi_free_fn) return "mi_* symbols missing";
  void* mine = mi_malloc_fn(64);
  void* theirs = __libc_malloc(64);
  bool ok = in_heap(mine) && !in_heap(theirs);
  mi_free_fn(mine);
  __libc_free(theirs);
  if (!ok) return "mi_is_in_heap_region does not tell mi_malloc's block from glibc's";
  return "mimalloc " + std::to_string(version());
}
#endif

// glibc: __libc_malloc is the function `malloc` aliases; say where `malloc` resolves in this
// process, so an interposer would show.
std::string check_glibc() {
  Dl_info info{};
  void* sym = dlsym(RTLD_DEFAULT, "malloc");
  if (!sym || !dladdr(sym, &info) || !info.dli_fname) return "glibc (malloc: unknown origin)";
  return std::string("glibc __libc_malloc; malloc resolves to ") + info.dli_fname;
}

void sizes(benchmark::internal::Benchmark* b) {
  b->ArgName("size");
  for (int size : {8, 64, 256, 1024, 4096}) b->Arg(size);
}

// Registers kmm and every usable peer, and records in the context what each peer is.
int register_all() {
  benchmark::RegisterBenchmark("BM_kmem_cache", BM_kmem_cache)->Apply(sizes);
  benchmark::RegisterBenchmark("BM_kmalloc", BM_kmalloc)->Apply(sizes);
  benchmark::AddCustomContext("peer_glibc", check_glibc());
  benchmark::RegisterBenchmark("BM_glibc", BM_glibc)->Apply(sizes);
#ifdef KMM_BENCH_JEMALLOC
  std::string je = check_jemalloc();
  if (je.rfind("jemalloc ", 0) == 0)
    benchmark::RegisterBenchmark("BM_jemalloc", BM_jemalloc)->Apply(sizes);
  else je = "skipped: " + je;
#else
  std::string je = "skipped: libjemalloc_pic.a not found at configure time (libjemalloc-dev)";
#endif
  benchmark::AddCustomContext("peer_jemalloc", je);
#ifdef KMM_BENCH_MIMALLOC_PATH
  std::string mi = load_mimalloc();
  if (mi.rfind("mimalloc ", 0) == 0)
    benchmark::RegisterBenchmark("BM_mimalloc", BM_mimalloc)->Apply(sizes);
  else mi = "skipped: " + mi;
#else
  std::string mi = "skipped: libmimalloc.so not found at configure time (libmimalloc-dev)";
#endif
  benchmark::AddCustomContext("peer_mimalloc", mi);
  if (je.rfind("skipped", 0) == 0) std::fprintf(stderr, "slab_bench: jemalloc %s\n", je.c_str());
  if (mi.rfind("skipped", 0) == 0) std::fprintf(stderr, "slab_bench: mimalloc %s\n", mi.c_str());
  return 0;
}

const int registered = register_all();

} // namespace
