// KASAN mirrored into ASan, and ASan's reports on simulated memory turned into KASAN reports
// (see kasan_asan.h). Compiled to nothing unless the build has ASan.
#include "kasan_asan.h"

#if KMM_ASAN

#include <sanitizer/asan_interface.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "bug.h"
#include "kasan.h"
#include "kernel.h"
#include "vmalloc.h"

#ifdef KMM_ASAN_RECOVER
// The asan preset builds with -fsanitize-recover=address so that kasan.fault=report can go on
// after a bad access to simulated memory, as the kernel does. halt_on_error=0 lets it; the report
// callback below still stops the process for any error outside simulated memory, so ASan stays
// fatal for kmm's and the host's own bugs. suppress_equal_pcs=0: every bad access is reported,
// also a second one from the same instruction (KASAN's multi-shot). ASAN_OPTIONS overrides these.
extern "C" const char* __asan_default_options() { return "halt_on_error=0:suppress_equal_pcs=0"; }
#endif

namespace kmm {

namespace {

constexpr uint8_t kAsanPoisoned = 0xf7; // kAsanUserPoisonedMemoryMagic ("use-after-poison")

std::mutex registry_lock;
std::vector<Kernel*> registry; // machines with KASAN on
std::atomic<int> nr_registered{0};

size_t shadow_scale = 3;
uintptr_t shadow_offset = 0;

uint8_t* asan_shadow(uintptr_t a) {
  return reinterpret_cast<uint8_t*>((a >> shadow_scale) + shadow_offset);
}

bool owns(Kernel& k, uintptr_t a) {
  return k.mem.is_direct(reinterpret_cast<const void*>(a)) || (k.vmalloc && k.vmalloc->contains(a));
}

// The machine whose simulated memory holds a, if it has KASAN on; the current one first.
Kernel* kernel_for(uintptr_t a) {
  Kernel* cur = Kernel::current;
  if (cur && owns(*cur, a)) return cur->kasan ? cur : nullptr;
  std::lock_guard<std::mutex> guard(registry_lock);
  for (Kernel* k : registry)
    if (owns(*k, a)) return k;
  return nullptr;
}

uint8_t asan_value(uint8_t kasan_value) {
  return kasan_value < KASAN_GRANULE_SIZE ? kasan_value : kAsanPoisoned;
}

// Shadow bytes are written through ASan's own interface (whole granules) or by plain stores in
// uninstrumented functions: instrumented code may not write the shadow region.
KMM_NO_SANITIZE_ADDRESS void store_shadow(uintptr_t granule, uint8_t v) {
  *asan_shadow(granule) = v;
}

void unpoison_range(uintptr_t lo, uintptr_t hi) {
  if (hi > lo) __asan_unpoison_memory_region(reinterpret_cast<void*>(lo), hi - lo);
}

// Whether the shadow page at `page` (pg bytes, mapped) holds a non-zero byte. Uninstrumented:
// instrumented code may not read the shadow region either.
KMM_NO_SANITIZE_ADDRESS bool shadow_page_dirty(uintptr_t page, uintptr_t pg) {
  const auto* w = reinterpret_cast<const uint64_t*>(page);
  for (uintptr_t i = 0; i < pg / sizeof(uint64_t); i++)
    if (w[i]) return true;
  return false;
}

// Zeroes ASan's shadow of [lo, hi) (granule aligned): the edges through the interface; of the
// page-aligned middle only the shadow pages that are mapped and hold a non-zero byte, each
// through the interface for the 32 KiB it stands for (below ASan's clear_shadow_mmap_threshold,
// so ASan writes zeros instead of giving the page back). An unmapped shadow page reads as zero
// already. Not MADV_DONTNEED: on a virtualised host a page fault costs about 10 us, and every
// host page of simulated RAM is used again by the next machine, whose ASan checks then faulted
// the shadow back in page by page (4 MiB of kzalloc: 128 faults).
void clear_shadow(uintptr_t lo, uintptr_t hi) {
  if (hi <= lo) return;
  uintptr_t s0 = reinterpret_cast<uintptr_t>(asan_shadow(lo));
  uintptr_t s1 = reinterpret_cast<uintptr_t>(asan_shadow(hi));
  const uintptr_t pg = uintptr_t(sysconf(_SC_PAGESIZE));
  uintptr_t m0 = (s0 + pg - 1) & ~(pg - 1), m1 = s1 & ~(pg - 1);
  if (m1 <= m0 + 16 * pg) {
    unpoison_range(lo, hi);
    return;
  }
  uintptr_t a0 = (m0 - shadow_offset) << shadow_scale, a1 = (m1 - shadow_offset) << shadow_scale;
  unpoison_range(lo, a0);
  std::vector<unsigned char> mapped((m1 - m0) / pg);
  if (mincore(reinterpret_cast<void*>(m0), m1 - m0, mapped.data()) != 0) {
    unpoison_range(a0, a1);
  } else {
    const uintptr_t span = pg << shadow_scale; // application bytes per shadow page
    for (size_t i = 0; i < mapped.size(); i++)
      if ((mapped[i] & 1) && shadow_page_dirty(m0 + i * pg, pg))
        unpoison_range(a0 + i * span, a0 + (i + 1) * span);
  }
  unpoison_range(a1, hi);
}

// Records that kasan_asan_sync may have poisoned ASan's shadow of [lo, hi), in the map of the
// range of k's memory that holds it (kasan.h: KasanState::asan_synced_*).
void note_synced(Kernel& k, uintptr_t lo, uintptr_t hi) {
  KasanState& st = *k.kasan;
  const auto dm = reinterpret_cast<uintptr_t>(k.mem.direct_map);
  if (lo >= dm && hi <= dm + k.mem.bytes) st.asan_synced_dm.mark(lo - dm, hi - lo);
  else if (k.vmalloc && lo >= k.vmalloc->base && hi <= k.vmalloc->base + k.vmalloc->size)
    st.asan_synced_vm.mark(lo - k.vmalloc->base, hi - lo);
}

// Clears ASan's shadow of the chunks `written` or `synced` marks (each once) in the range that
// starts at base, and the marks of `synced`.
void clear_poisoned(const kasan_chunk_map& written, kasan_chunk_map& synced, uintptr_t base) {
  auto clear = [&](size_t at, size_t bytes) { clear_shadow(base + at, base + at + bytes); };
  written.for_each(clear);
  synced.for_each_clear([&](size_t at, size_t bytes) {
    if (!written.marked(at)) clear(at, bytes);
  });
}

// --- the error report callback ----------------------------------------------------------------

bool runtime_frame(const std::string& fn) {
  static const char* const prefixes[] = {"__asan", "__interceptor_", "__sanitizer", "__ubsan"};
  for (const char* p : prefixes)
    if (fn.rfind(p, 0) == 0) return true;
  static const char* const libc[] = {"memset", "memcpy",  "memmove", "memcmp",  "bcmp",
                                     "memchr", "strlen",  "strnlen", "strcpy",  "strncpy",
                                     "strcmp", "strncmp", "strchr",  "strrchr", "strcat"};
  for (const char* p : libc)
    if (fn == p) return true;
  return false;
}

// "foo(int, char*) const" -> "foo": the kernel's %pS shows a bare name.
std::string bare_name(std::string fn) {
  if (fn.size() > 6 && fn.compare(fn.size() - 6, 6, " const") == 0) fn.resize(fn.size() - 6);
  if (!fn.empty() && fn.back() == ')') {
    int depth = 0;
    for (size_t i = fn.size(); i-- > 0;) {
      if (fn[i] == ')') depth++;
      else if (fn[i] == '(' && --depth == 0) {
        if (i > 0) fn.resize(i);
        break;
      }
    }
  }
  return fn;
}

struct Frame {
  std::string fn;  // demangled, as symbolized
  std::string loc; // "file:line:col" or "(module+0x...)"
};

// The stack of ASan's report text: lines "    #N 0xPC in FUNCTION LOCATION" up to the first
// blank line.
std::vector<Frame> report_frames(const char* text) {
  std::vector<Frame> frames;
  const char* p = text;
  bool in_stack = false;
  while (*p) {
    const char* eol = std::strchr(p, '\n');
    std::string line(p, eol ? size_t(eol - p) : std::strlen(p));
    p = eol ? eol + 1 : p + line.size();
    size_t build_id = line.find(" (BuildId: ");
    if (build_id != std::string::npos) line.resize(build_id);
    size_t hash = line.find_first_not_of(' ');
    if (hash != std::string::npos && line[hash] == '#' &&
        line.find(" 0x", hash) != std::string::npos) {
      in_stack = true;
      Frame f;
      size_t in = line.find(" in ", hash);
      size_t last = line.rfind(' ');
      if (in != std::string::npos && last > in + 4) {
        f.fn = line.substr(in + 4, last - in - 4);
        f.loc = line.substr(last + 1);
      } else {
        f.loc = line.substr(line.rfind(' ') + 1);
      }
      frames.push_back(std::move(f));
    } else if (in_stack) {
      break; // the first stack (the access) is the one wanted
    }
  }
  return frames;
}

#ifdef KMM_ASAN_RECOVER
[[noreturn]] void die_on_host_error() {
  static const char msg[] = "kmm: AddressSanitizer error outside simulated memory: stopping\n";
  ssize_t ignored = write(2, msg, sizeof msg - 1);
  (void)ignored;
  std::abort();
}
#endif

void on_asan_report(const char* text) {
  // Only bad accesses are KASAN's (a bad free() of simulated memory, say, has no access size).
  uintptr_t a = reinterpret_cast<uintptr_t>(__asan_get_report_address());
  Kernel* k = a && __asan_get_report_access_size() ? kernel_for(a) : nullptr;
  if (!k) {
#ifdef KMM_ASAN_RECOVER
    die_on_host_error();
#else
    return; // ASan goes on as it was told to (it halts by default)
#endif
  }
  std::vector<Frame> frames = report_frames(text);
  size_t first = 0;
  while (first < frames.size() && runtime_frame(bare_name(frames[first].fn))) first++;
  std::string fn;
  if (first < frames.size() && !frames[first].fn.empty()) fn = bare_name(frames[first].fn);
  else
    fn = strprintf("0x%llx",
                   (unsigned long long)reinterpret_cast<uintptr_t>(__asan_get_report_pc()));
  std::string trace = "Call Trace:\n <TASK>\n";
  for (size_t i = first; i < frames.size() && i < first + 12; i++)
    trace += " " + (frames[i].fn.empty() ? std::string("?") : bare_name(frames[i].fn)) + " " +
             frames[i].loc + "\n";
  trace += " </TASK>\n";
  kasan_report_asan(*k, a, __asan_get_report_access_size(), __asan_get_report_access_type() != 0,
                    fn.c_str(), trace);
}

struct CallbackInstaller {
  CallbackInstaller() {
    __asan_get_shadow_mapping(&shadow_scale, &shadow_offset);
    __asan_set_error_report_callback(on_asan_report);
  }
} installer;

// Ranges opened by KasanMetadataAccess scopes on this thread, mirrored again when the outermost
// scope ends.
struct OpenRange {
  Kernel* k;
  uintptr_t lo, hi;
};
thread_local int scope_depth = 0;
thread_local std::vector<OpenRange> open_ranges;

} // namespace

void kasan_asan_register(Kernel& k) {
  k.kasan->asan_synced_dm.init(k.mem.bytes);
  if (k.vmalloc) k.kasan->asan_synced_vm.init(k.vmalloc->size);
  std::lock_guard<std::mutex> guard(registry_lock);
  registry.push_back(&k);
  nr_registered.fetch_add(1, std::memory_order_relaxed);
}

void kasan_asan_unregister(Kernel& k, KasanState& st) {
  {
    std::lock_guard<std::mutex> guard(registry_lock);
    auto it = std::find(registry.begin(), registry.end(), &k);
    if (it == registry.end()) return;
    registry.erase(it);
    nr_registered.fetch_sub(1, std::memory_order_relaxed);
  }
  kasan_asan_forget(k, st);
}

// The poison kmm put in ASan's shadow lies in the chunks whose KASAN shadow was written
// (kasan_asan_set follows those writes) and in those kasan_asan_sync mirrored (kasan.h). The
// written ones stay marked: kasan_restore_boot clears them after this, with the shadow.
void kasan_asan_forget(Kernel& k, KasanState& st) {
  const auto dm = reinterpret_cast<uintptr_t>(k.mem.direct_map);
  clear_poisoned(st.shadow_written_dm, st.asan_synced_dm, dm);
  if (k.vmalloc) clear_poisoned(st.shadow_written_vm, st.asan_synced_vm, k.vmalloc->base);
}

void kasan_asan_set(Kernel& k, const void* addr, size_t size, uint8_t kasan_value) {
  if (!size) return;
  uintptr_t a = reinterpret_cast<uintptr_t>(addr) & ~uintptr_t(KASAN_GRANULE_SIZE - 1);
  size_t n =
      (reinterpret_cast<uintptr_t>(addr) + size - a + KASAN_GRANULE_SIZE - 1) / KASAN_GRANULE_SIZE;
  void* start = reinterpret_cast<void*>(a);
  if (kasan_value == 0) {
    __asan_unpoison_memory_region(start, n * KASAN_GRANULE_SIZE);
    return;
  }
  if (kasan_value >= KASAN_GRANULE_SIZE) __asan_poison_memory_region(start, n * KASAN_GRANULE_SIZE);
  else
    for (size_t i = 0; i < n; i++) store_shadow(a + i * KASAN_GRANULE_SIZE, kasan_value);
}

void kasan_asan_clear(const void* addr, size_t size) {
  if (!size) return;
  uintptr_t a = reinterpret_cast<uintptr_t>(addr) & ~uintptr_t(KASAN_GRANULE_SIZE - 1);
  uintptr_t e = (reinterpret_cast<uintptr_t>(addr) + size + KASAN_GRANULE_SIZE - 1) &
                ~uintptr_t(KASAN_GRANULE_SIZE - 1);
  clear_shadow(a, e);
}

void kasan_asan_sync(Kernel& k, const void* addr, size_t size) {
  if (!k.kasan || !size) return;
  uintptr_t a = reinterpret_cast<uintptr_t>(addr) & ~uintptr_t(KASAN_GRANULE_SIZE - 1);
  uintptr_t e = reinterpret_cast<uintptr_t>(addr) + size;
  note_synced(k, a, e);
  const size_t n = (e - a + KASAN_GRANULE_SIZE - 1) / KASAN_GRANULE_SIZE;
  uint8_t key;
  if (const uint8_t* span = kasan_shadow_span(k, a, n, &key)) {
    // Usually all accessible (a raw access KASAN just allowed): one unpoisoning.
    const size_t i = kasan_first_poisoned(span, n, key);
    unpoison_range(a, a + i * KASAN_GRANULE_SIZE);
    for (size_t j = i; j < n; j++)
      store_shadow(a + j * KASAN_GRANULE_SIZE, asan_value(uint8_t(span[j] ^ key)));
    return;
  }
  for (uintptr_t g = a; g < e; g += KASAN_GRANULE_SIZE)
    store_shadow(g, asan_value(kasan_shadow(k, reinterpret_cast<const void*>(g))));
}

KasanMetadataAccess::KasanMetadataAccess(const void* p, size_t n) {
  if (!n || nr_registered.load(std::memory_order_relaxed) == 0) return;
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  Kernel* k = kernel_for(a);
  if (!k) return;
  uintptr_t lo = a & ~uintptr_t(KASAN_GRANULE_SIZE - 1);
  uintptr_t hi = (a + n + KASAN_GRANULE_SIZE - 1) & ~uintptr_t(KASAN_GRANULE_SIZE - 1);
  __asan_unpoison_memory_region(reinterpret_cast<void*>(lo), hi - lo);
  open_ranges.push_back({k, lo, hi});
  scope_depth++;
  active_ = true;
}

KasanMetadataAccess::~KasanMetadataAccess() {
  if (!active_ || --scope_depth > 0) return;
  for (const OpenRange& r : open_ranges)
    kasan_asan_sync(*r.k, reinterpret_cast<const void*>(r.lo), r.hi - r.lo);
  open_ranges.clear();
}

} // namespace kmm

#endif // KMM_ASAN
