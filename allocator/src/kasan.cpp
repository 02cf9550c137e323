// Software Generic KASAN (see kasan.h): shadow memory, the allocators' poison hooks, the access
// check and the report in the kernel's form (mm/kasan/report.c, report_generic.c).
#include "kasan.h"

#include <algorithm>
#include <cstring>

#include "buddy.h"
#include "bug.h"
#include "kasan_asan.h"
#include "kernel.h"
#include "kmm/machine.h"
#include "vmalloc.h"

namespace kmm {

std::string (*kasan_describe_slab_object)(Kernel& k, const void* addr, const char* bug_type,
                                          std::string* cache, int64_t* offset) = nullptr;

KasanState::~KasanState() {
  // ASan's copy goes with the machine: its host ranges are unmapped next and may be reused.
  if (owner) kasan_asan_unregister(*owner, *this);
  host_zeroed_unmap(dm_shadow, dm_shadow_size);
  host_zeroed_unmap(vm_shadow, vm_shadow_size);
}

bool kasan_enabled(const Kernel& k) { return k.kasan != nullptr; }

static uint8_t* map_shadow(size_t bytes) {
  void* p = host_zeroed_map(bytes); // pooled: touched shadow pages stay backed across boots
  if (!p) throw BootError("kasan: cannot map " + std::to_string(bytes) + " bytes of shadow");
  return static_cast<uint8_t*>(p);
}

void kasan_init(Kernel& k) {
  if (!k.params.kasan) return;
  auto st = std::make_unique<KasanState>();
  st->dm_shadow_size = k.mem.bytes / KASAN_GRANULE_SIZE;
  st->dm_shadow = map_shadow(st->dm_shadow_size);
  st->vm_shadow_size = k.vmalloc->size / KASAN_GRANULE_SIZE;
  st->vm_shadow = map_shadow(st->vm_shadow_size);
  st->shadow_written_dm.init(k.mem.bytes);
  st->shadow_written_vm.init(k.vmalloc->size);
  st->owner = &k;
  k.kasan = std::move(st);
  kasan_asan_register(k);
  kasan_slab_init(k);
  k.log.printk("kasan: KernelAddressSanitizer initialized (generic)");
}

// The stored byte and the XOR that decodes it, for an address of simulated memory; nullptr for
// an address kmm does not shadow. A writer passes `size`, the bytes from a it is about to shadow:
// their chunks are marked written.
static uint8_t* shadow_slot(Kernel& k, uintptr_t a, uint8_t* key, size_t size = 0) {
  KasanState& st = *k.kasan;
  uintptr_t dm = reinterpret_cast<uintptr_t>(k.mem.direct_map);
  if (a >= dm && a - dm < k.mem.bytes) {
    *key = KASAN_PAGE_FREE;
    if (size) st.shadow_written_dm.mark(a - dm, size);
    return st.dm_shadow + (a - dm) / KASAN_GRANULE_SIZE;
  }
  if (k.vmalloc && k.vmalloc->contains(a)) {
    *key = KASAN_VMALLOC_INVALID;
    if (size) st.shadow_written_vm.mark(a - k.vmalloc->base, size);
    return st.vm_shadow + (a - k.vmalloc->base) / KASAN_GRANULE_SIZE;
  }
  return nullptr;
}

const uint8_t* kasan_shadow_span(Kernel& k, uintptr_t a, size_t n, uint8_t* key) {
  if (!k.kasan) return nullptr;
  // n granules from a fit before `end` (written so that a huge n cannot wrap around).
  auto fits = [&](uintptr_t base, size_t bytes) {
    return a >= base && a - base <= bytes && n <= (bytes - (a - base)) / KASAN_GRANULE_SIZE;
  };
  const uintptr_t dm = reinterpret_cast<uintptr_t>(k.mem.direct_map);
  if (fits(dm, k.mem.bytes)) {
    *key = KASAN_PAGE_FREE;
    return k.kasan->dm_shadow + (a - dm) / KASAN_GRANULE_SIZE;
  }
  if (k.vmalloc && fits(k.vmalloc->base, k.vmalloc->size)) {
    *key = KASAN_VMALLOC_INVALID;
    return k.kasan->vm_shadow + (a - k.vmalloc->base) / KASAN_GRANULE_SIZE;
  }
  return nullptr;
}

size_t kasan_first_poisoned(const uint8_t* stored, size_t n, uint8_t key) {
  const uint64_t keys = 0x0101010101010101ull * key;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) { // eight granules (64 bytes of memory) a step
    uint64_t w;
    std::memcpy(&w, stored + i, 8);
    if (w != keys) break;
  }
  for (; i < n; i++)
    if (stored[i] != key) return i;
  return n;
}

uint8_t kasan_shadow(Kernel& k, const void* addr) {
  uint8_t key;
  uint8_t* s = k.kasan ? shadow_slot(k, reinterpret_cast<uintptr_t>(addr), &key) : nullptr;
  return s ? static_cast<uint8_t>(*s ^ key) : 0;
}

void kasan_poison(Kernel& k, const void* addr, size_t size, uint8_t value) {
  if (!k.kasan || !size) return;
  uint8_t key;
  uint8_t* s = shadow_slot(k, reinterpret_cast<uintptr_t>(addr), &key, size);
  if (!s) return;
  std::memset(s, value ^ key, (size + KASAN_GRANULE_SIZE - 1) / KASAN_GRANULE_SIZE);
  kasan_asan_set(k, addr, size, value);
}

void kasan_unpoison(Kernel& k, const void* addr, size_t size) {
  if (!k.kasan || !size) return;
  uint8_t key;
  uint8_t* s = shadow_slot(k, reinterpret_cast<uintptr_t>(addr), &key, size);
  if (!s) return;
  size_t full = size / KASAN_GRANULE_SIZE;
  std::memset(s, 0 ^ key, full);
  if (size % KASAN_GRANULE_SIZE) s[full] = static_cast<uint8_t>((size % KASAN_GRANULE_SIZE) ^ key);
  kasan_asan_set(k, addr, full * KASAN_GRANULE_SIZE, 0);
  if (size % KASAN_GRANULE_SIZE)
    kasan_asan_set(k, static_cast<const char*>(addr) + full * KASAN_GRANULE_SIZE, 1,
                   static_cast<uint8_t>(size % KASAN_GRANULE_SIZE));
}

bool kasan_at_boot(Kernel& k) {
  if (!k.kasan) return true;
  const KasanState& st = *k.kasan;
  return st.shadow_written_dm.none() && st.shadow_written_vm.none() &&
         kasan_quarantine_bytes(k) == 0;
}

// Zeroes the stored shadow (the boot state, kasan.h) of the chunks `written` marks, and the marks.
static void unwrite_shadow(kasan_chunk_map& written, uint8_t* shadow) {
  written.for_each_clear([&](size_t at, size_t bytes) {
    std::memset(shadow + at / KASAN_GRANULE_SIZE, 0, bytes / KASAN_GRANULE_SIZE);
  });
}

void kasan_restore_boot(Kernel& k) {
  if (!k.kasan) return;
  KasanState& st = *k.kasan;
  // ASan's mirror first: it forgets the chunks shadow_written_* marks, which the unwrite clears.
  kasan_asan_forget(k, st);
  unwrite_shadow(st.shadow_written_dm, st.dm_shadow);
  unwrite_shadow(st.shadow_written_vm, st.vm_shadow);
  if (k.kasan_quarantine) {
    std::lock_guard<std::mutex> guard(k.kasan_quarantine->lock);
    k.kasan_quarantine->fifo.clear();
    k.kasan_quarantine->bytes = 0;
  }
}

void kasan_alloc_pages(Kernel& k, struct page* page, unsigned order) {
  if (k.kasan) kasan_unpoison(k, k.mem.page_address(page), PAGE_SIZE_ << order);
}

void kasan_free_pages(Kernel& k, struct page* page, unsigned order) {
  if (k.kasan) kasan_poison(k, k.mem.page_address(page), PAGE_SIZE_ << order, KASAN_PAGE_FREE);
}

void kasan_unpoison_vmalloc(Kernel& k, const void* addr, size_t size) {
  if (!k.kasan) return;
  size_t mapped = (size + PAGE_SIZE_ - 1) & ~(PAGE_SIZE_ - 1);
  kasan_unpoison(k, addr, size);
  size_t valid = (size + KASAN_GRANULE_SIZE - 1) & ~size_t(KASAN_GRANULE_SIZE - 1);
  kasan_poison(k, static_cast<const char*>(addr) + valid, mapped - valid, KASAN_VMALLOC_INVALID);
}

void kasan_poison_vmalloc(Kernel& k, const void* addr, size_t size) {
  kasan_poison(k, addr, size, KASAN_VMALLOC_INVALID);
  // The area is unmapped (PROT_NONE) now: a stray access faults and vmalloc_fault reports it.
  // ASan must not see it first, or one access would give two reports.
  kasan_asan_clear(addr, size);
}

// --- reports ---------------------------------------------------------------------------------

// The address the kernel would print for a pointer into simulated memory.
static uint64_t kernel_addr(Kernel& k, uintptr_t a) {
  if (k.mem.is_direct(reinterpret_cast<const void*>(a)))
    return k.mem.kva(reinterpret_cast<const void*>(a));
  if (k.vmalloc && k.vmalloc->contains(a)) return k.vmalloc->kva(a);
  return a;
}

static const char* bug_type_for(uint8_t shadow) {
  switch (shadow) {
  case KASAN_PAGE_REDZONE:
  case KASAN_SLAB_REDZONE: return "slab-out-of-bounds";
  case KASAN_PAGE_FREE: return "use-after-free";
  case KASAN_SLAB_FREE:
  case KASAN_SLAB_FREE_META: return "slab-use-after-free";
  case KASAN_VMALLOC_INVALID: return "vmalloc-out-of-bounds";
  default: return shadow < KASAN_GRANULE_SIZE ? "out-of-bounds" : "unknown-crash";
  }
}

// "Memory state around the buggy address": five rows of 16 shadow bytes (128 bytes of memory
// each), the middle one holding the address, with a caret under its shadow byte.
static std::string memory_state(Kernel& k, uintptr_t a) {
  std::string t = "Memory state around the buggy address:\n";
  const uintptr_t row_bytes = 16 * KASAN_GRANULE_SIZE;
  uintptr_t row0 = (a & ~(row_bytes - 1)) - 2 * row_bytes;
  for (int r = 0; r < 5; r++) {
    uintptr_t row = row0 + r * row_bytes;
    uint8_t key;
    if (!shadow_slot(k, row, &key) || !shadow_slot(k, row + row_bytes - 1, &key)) continue;
    t += strprintf("%s%016llx:", r == 2 ? ">" : " ", (unsigned long long)kernel_addr(k, row));
    for (int i = 0; i < 16; i++)
      t += strprintf(" %02x",
                     kasan_shadow(k, reinterpret_cast<const void*>(row + i * KASAN_GRANULE_SIZE)));
    t += "\n";
    if (r == 2) {
      size_t col = 1 + 16 + 1 + 3 * ((a - row) / KASAN_GRANULE_SIZE) + 1;
      t += std::string(col, ' ') + "^\n";
    }
  }
  return t;
}

static std::string describe_addr(Kernel& k, uintptr_t a, const char* type, Report* r) {
  std::string t;
  const void* p = reinterpret_cast<const void*>(a);
  if (kasan_describe_slab_object)
    t += kasan_describe_slab_object(k, p, type, &r->cache, &r->offset);
  if (k.mem.is_direct(p)) {
    if (!t.empty()) t += "\n";
    t += "The buggy address belongs to the physical page:\n";
    t += dump_page(k, k.mem.virt_to_page(p), "kasan: bad access detected");
  } else if (k.vmalloc && k.vmalloc->contains(a)) {
    if (!t.empty()) t += "\n";
    t += strprintf("The buggy address belongs to the virtual mapping at\n [%016llx, ...) created "
                   "by:\n vmalloc\n",
                   (unsigned long long)k.vmalloc->kva(a & ~(PAGE_SIZE_ - 1)));
  }
  return t;
}

static void kasan_report(Kernel& k, uintptr_t a, size_t size, bool write, const char* type,
                         const char* fn, bool described, const std::string& call_trace = "") {
  uint64_t ka = kernel_addr(k, a);
  std::string title = strprintf("BUG: KASAN: %s in %s", type, fn);
  Report r{ReportKind::Kasan, title, ""};
  std::string t = "==================================================================\n";
  t += title + "\n";
  t += strprintf("%s of size %zu at addr %016llx by task %s/%d\n\n", write ? "Write" : "Read", size,
                 (unsigned long long)ka, k.cpu().current.comm.c_str(), k.cpu().current.pid);
  t += cpu_line(k);
  t += call_trace + "\n";
  if (described) {
    std::string d = describe_addr(k, a, type, &r);
    if (!d.empty()) t += d + "\n";
    t += memory_state(k, a);
  }
  t += "==================================================================\n";
  r.text = t;
  r.addr = ka;
  emit_report(k, std::move(r));
}

// check_region_inline() and kasan_report(): reports the access if KASAN's shadow forbids it.
// `trace` is the call trace of an access ASan caught; `always` reports even an access the shadow
// allows (ASan saw poison there, so something is off: "unknown-crash" keeps it visible).
static bool check_access(Kernel& k, const void* addr, size_t size, bool write, const char* fn,
                         const std::string& trace, bool always) {
  if (!k.kasan || !size) return true;
  uintptr_t a = reinterpret_cast<uintptr_t>(addr);
  uint8_t key;
  if (size > UINTPTR_MAX - a) { // the access wraps around the address space
    kasan_report(k, a, size, write, "wild-memory-access", fn, false, trace);
    return false;
  }
  if (!shadow_slot(k, a, &key)) {
    const char* type = a < PAGE_SIZE_ ? "null-ptr-deref" : "wild-memory-access";
    kasan_report(k, a, size, write, type, fn, false, trace);
    return false;
  }
  // Find the first inaccessible byte: first the shadow of the whole access at once (the common
  // case, all accessible, ends there), then granule by granule from the first one not fully so.
  uintptr_t end = a + size;
  uintptr_t from = a & ~uintptr_t(KASAN_GRANULE_SIZE - 1);
  const size_t granules = (end - from + KASAN_GRANULE_SIZE - 1) / KASAN_GRANULE_SIZE;
  if (const uint8_t* span = kasan_shadow_span(k, from, granules, &key)) {
    const size_t i = kasan_first_poisoned(span, granules, key);
    if (i == granules && !always) return true;
    from += std::min(i, granules) * KASAN_GRANULE_SIZE;
  }
  for (uintptr_t g = from; g < end; g += KASAN_GRANULE_SIZE) {
    uint8_t key2;
    uint8_t* s = shadow_slot(k, g, &key2);
    if (!s) {
      kasan_report(k, a, size, write, "wild-memory-access", fn, false, trace);
      return false;
    }
    uint8_t v = static_cast<uint8_t>(*s ^ key2);
    if (v == 0) continue;
    uintptr_t first = std::max(g, a);
    uintptr_t last = std::min(g + KASAN_GRANULE_SIZE, end) - 1;
    if (v < KASAN_GRANULE_SIZE && last - g < v) continue; // within the valid prefix
    // get_bug_type(): a partial granule's meaning is in the next shadow byte.
    uint8_t meaning = v;
    if (v < KASAN_GRANULE_SIZE) {
      uint8_t* n = shadow_slot(k, g + KASAN_GRANULE_SIZE, &key2);
      meaning = n ? static_cast<uint8_t>(*n ^ key2) : v;
    }
    (void)first;
    kasan_report(k, a, size, write, bug_type_for(meaning), fn, true, trace);
    return false;
  }
  if (always) kasan_report(k, a, size, write, "unknown-crash", fn, true, trace);
  return !always;
}

bool kasan_check(Kernel& k, const void* addr, size_t size, bool write, const char* fn) {
  return check_access(k, addr, size, write, fn, "", false);
}

void kasan_report_asan(Kernel& k, uintptr_t addr, size_t size, bool write, const char* fn,
                       const std::string& call_trace) {
  check_access(k, reinterpret_cast<const void*>(addr), size, write, fn, call_trace, true);
}

void kasan_report_invalid_free(Kernel& k, const void* addr, const char* type, const char* fn) {
  uintptr_t a = reinterpret_cast<uintptr_t>(addr);
  uint64_t ka = kernel_addr(k, a);
  std::string title = strprintf("BUG: KASAN: %s in %s", type, fn);
  std::string t = "==================================================================\n";
  t += title + "\n";
  t += strprintf("Free of addr %016llx by task %s/%d\n\n", (unsigned long long)ka,
                 k.cpu().current.comm.c_str(), k.cpu().current.pid);
  t += cpu_line(k) + "\n";
  Report r{ReportKind::Kasan, title, ""};
  std::string d = describe_addr(k, a, type, &r);
  if (!d.empty()) t += d + "\n";
  uint8_t key;
  if (shadow_slot(k, a, &key)) t += memory_state(k, a);
  t += "==================================================================\n";
  r.text = t;
  r.addr = ka;
  emit_report(k, std::move(r));
}

} // namespace kmm
