// vmalloc (see vmalloc.h).
//
// Address space: one PROT_NONE reservation of `vmalloc=` bytes (default: twice the RAM, at least
// 64 MiB). alloc_vmap_area() is the kernel's lowest-address first fit; each area is followed by
// one unmapped guard page unless VM_NO_GUARD. Pages come from the buddy allocator one at a time
// (order 0, so physically scattered) and are mapped with mmap(MAP_FIXED|MAP_SHARED) of the memfd
// at their physical offsets; physically contiguous runs share one mmap call.
//
// vfree() unmaps at once (a later touch faults) but, as the kernel's lazy purge, keeps the
// virtual range off the free list until lazy_max_pages() pages are waiting; then all are purged.
//
// Lock order: vmap_area_lock (VmallocState::lock), then zone->lock inside the page allocator.
#include "vmalloc.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "bug.h"
#include "fault.h"
#include "kasan.h"
#include "kernel.h"
#include "kmm/machine.h"
#include "kmm/vmalloc.h"
#include "page_alloc.h"

namespace kmm {

static constexpr uintptr_t kPage = PAGE_SIZE_;

VmallocState::~VmallocState() {
  if (base) munmap(reinterpret_cast<void*>(base), size);
}

// Returns the range to the reservation: unmapped from the memfd, PROT_NONE again. Failing here
// would leave a stale alias of freed memory, so it is fatal, as a failed TLB flush would be.
static void protect_none(uintptr_t start, size_t len) {
  if (mmap(reinterpret_cast<void*>(start), len, PROT_NONE,
           MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) == MAP_FAILED)
    std::abort();
}

// The page-fault path for the vmalloc range: the kernel's oops text (or, with KASAN, its
// vmalloc-out-of-bounds report, once KASAN is built).
static bool vmalloc_fault(Kernel& k, uintptr_t addr, bool write) {
  // With KASAN the access is caught by its shadow first, as instrumented kernel code would be.
  if (kasan_enabled(k)) {
    kasan_check(k, reinterpret_cast<const void*>(addr), 1, write, "vmalloc_fault");
    map_scratch_page(addr);
    return true;
  }
  uint64_t kva = k.vmalloc->kva(addr);
  std::string title =
      strprintf("BUG: unable to handle page fault for address: %016llx", (unsigned long long)kva);
  std::string t = title + "\n";
  t += strprintf("#PF: supervisor %s access in kernel mode\n", write ? "write" : "read");
  t += strprintf("#PF: error_code(0x%04x) - not-present page\n", write ? 2 : 0);
  t += strprintf("Oops: %04x [#1] PREEMPT SMP NOPTI\n", write ? 2 : 0);
  t += cpu_line(k);
  Report r{ReportKind::PageFault, title, t};
  r.addr = kva;
  emit_report(k, std::move(r));
  map_scratch_page(addr);
  return true;
}

void vmalloc_init(Kernel& k) {
  auto st = std::make_unique<VmallocState>();
  uint64_t size =
      k.params.vmalloc ? k.params.vmalloc : std::max<uint64_t>(2 * k.mem.bytes, 64ull << 20);
  size = (size + kPage - 1) & ~uint64_t(kPage - 1);
  void* base = mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED)
    throw BootError("cannot reserve " + std::to_string(size) + " bytes for the vmalloc range");
  st->base = reinterpret_cast<uintptr_t>(base);
  st->size = size;
  st->free_ranges[st->base] = st->base + size;
  // lazy_max_pages(): fls(num_online_cpus()) * 32 MiB worth of pages.
  unsigned fls = 32 - __builtin_clz(k.nr_cpus);
  st->lazy_max = fls * ((32ul << 20) / kPage);
  k.vmalloc = std::move(st);
  register_fault_range(k, k.vmalloc->base, k.vmalloc->base + size, vmalloc_fault);
}

// --- the vmap-area allocator (callers hold st.lock) ---------------------------------------

static void insert_free_locked(VmallocState& st, uintptr_t start, uintptr_t end) {
  auto next = st.free_ranges.lower_bound(start);
  if (next != st.free_ranges.end() && next->first == end) { // merge with the range above
    end = next->second;
    next = st.free_ranges.erase(next);
  }
  if (next != st.free_ranges.begin()) {
    auto prev = std::prev(next);
    if (prev->second == start) { // merge with the range below
      prev->second = end;
      return;
    }
  }
  st.free_ranges[start] = end;
}

static uintptr_t alloc_vmap_area_locked(VmallocState& st, size_t size, size_t align) {
  for (auto it = st.free_ranges.begin(); it != st.free_ranges.end(); ++it) {
    uintptr_t start = (it->first + align - 1) & ~(align - 1);
    if (start + size > it->second || start + size < start) continue;
    uintptr_t rs = it->first, re = it->second;
    st.free_ranges.erase(it);
    if (rs < start) st.free_ranges[rs] = start;
    if (start + size < re) st.free_ranges[start + size] = re;
    return start;
  }
  return 0;
}

static void purge_vmap_areas_locked(VmallocState& st) {
  for (auto& va : st.purge_list) insert_free_locked(st, va->va_start, va->va_end);
  st.purge_list.clear();
  st.lazy_nr = 0;
}

static vmap_area* get_vm_area_locked(Kernel& k, size_t size, unsigned long flags,
                                     const char* caller) {
  VmallocState& st = *k.vmalloc;
  if (!(flags & VM_NO_GUARD)) size += kPage;
  uintptr_t start = alloc_vmap_area_locked(st, size, kPage);
  if (!start && !st.purge_list.empty()) { // purge lazily freed areas and retry once
    purge_vmap_areas_locked(st);
    start = alloc_vmap_area_locked(st, size, kPage);
  }
  if (!start) {
    k.log.printk(strprintf("vmap allocation for size %zu failed: use vmalloc=<size> to increase "
                           "size",
                           size));
    return nullptr;
  }
  auto va = std::make_unique<vmap_area>();
  va->va_start = start;
  va->va_end = start + size;
  va->flags = flags;
  va->caller = caller;
  vmap_area* raw = va.get();
  st.busy[start] = std::move(va);
  return raw;
}

// Maps the area's pages at their physical offsets in the memfd, one mmap per contiguous run.
static bool map_area_pages(Kernel& k, vmap_area& va) {
  size_t n = va.pages.size();
  for (size_t i = 0; i < n;) {
    unsigned long pfn = k.mem.page_to_pfn(va.pages[i]);
    size_t run = 1;
    while (i + run < n && k.mem.page_to_pfn(va.pages[i + run]) == pfn + run) run++;
    void* want = reinterpret_cast<void*>(va.va_start + i * kPage);
    void* got = mmap(want, run * kPage, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_SHARED, k.mem.memfd,
                     static_cast<off_t>(uint64_t(pfn) << PAGE_SHIFT_));
    if (got != want) return false;
    i += run;
  }
  return true;
}

static vmap_area* find_vmap_area_locked(VmallocState& st, uintptr_t addr) {
  auto it = st.busy.upper_bound(addr);
  if (it == st.busy.begin()) return nullptr;
  --it;
  return addr < it->second->va_end ? it->second.get() : nullptr;
}

// --- the API ---------------------------------------------------------------------------------

void* __vmalloc_node(Kernel& k, unsigned long size, gfp_t gfp, const char* caller) {
  const CpuState& c = k.cpu();
  if (c.in_irq) {
    report_warn(k, "mm/vmalloc.c", "__get_vm_area_node", "kernel BUG: BUG_ON(in_interrupt())");
    return nullptr;
  }
  // __vmalloc_node_range: WARN_ON_ONCE(!size), whatever the gfp.
  if (!size) {
    if (warn_once(k, WarnOnce::VmallocZero))
      report_warn(k, "mm/vmalloc.c", "__vmalloc_node_range", "WARN_ON_ONCE(!size)");
    return nullptr;
  }
  unsigned long totalram = 0;
  for (auto& z : k.zones) totalram += z.managed_pages;
  // The kernel checks the size as asked, before rounding it up to pages (so a size near
  // ULONG_MAX cannot wrap to 0), and prints it as asked.
  if ((size >> PAGE_SHIFT_) > totalram) {
    if (!(gfp & __GFP_NOWARN))
      warn_alloc(k, gfp, 0,
                 strprintf("vmalloc error: size %lu, exceeds total pages", size).c_str());
    return nullptr;
  }
  unsigned long real = (size + kPage - 1) & ~(kPage - 1);
  VmallocState& st = *k.vmalloc;
  vmap_area* va;
  {
    std::lock_guard<std::mutex> guard(st.lock);
    va = get_vm_area_locked(k, real, VM_ALLOC, caller);
  }
  if (!va) {
    if (!(gfp & __GFP_NOWARN))
      warn_alloc(k, gfp, 0,
                 strprintf("vmalloc error: size %lu, vm_struct allocation failed", size).c_str());
    return nullptr;
  }
  // Pages one at a time, as the bulk allocator hands them out: order 0, highmem allowed.
  gfp_t page_gfp = (gfp & ~(__GFP_DMA | __GFP_DMA32 | __GFP_COMP)) | __GFP_HIGHMEM;
  if (gfp & (__GFP_DMA | __GFP_DMA32)) page_gfp = gfp & ~__GFP_COMP;
  unsigned long nr = real >> PAGE_SHIFT_;
  va->pages.reserve(nr);
  for (unsigned long i = 0; i < nr; i++) {
    struct page* p = __alloc_pages(k, page_gfp | __GFP_NOWARN, 0, PageOwner::Vmalloc);
    if (!p) break;
    va->pages.push_back(p);
  }
  bool ok = va->pages.size() == nr && map_area_pages(k, *va);
  if (!ok) {
    bool pages_failed = va->pages.size() != nr;
    // The kernel prints area->nr_pages * PAGE_SIZE here: the pages it got, not the size asked.
    if (!(gfp & __GFP_NOWARN))
      warn_alloc(k, gfp, 0,
                 strprintf("vmalloc error: size %lu, %s", va->pages.size() * kPage,
                           pages_failed ? "failed to allocate pages" : "failed to map pages")
                     .c_str());
    for (struct page* p : va->pages) free_the_page(k, p, 0);
    va->pages.clear();
    std::lock_guard<std::mutex> guard(st.lock);
    protect_none(va->va_start, va->size());
    uintptr_t s = va->va_start, e = va->va_end;
    st.busy.erase(s);
    insert_free_locked(st, s, e);
    return nullptr;
  }
  for (struct page* p : va->pages) {
    p->owner_data = static_cast<uint32_t>((va->va_start - st.base) >> PAGE_SHIFT_);
    p->_refcount = 1;
  }
  k.mod_node_page_state(NR_VMALLOC, static_cast<long>(nr));
  void* addr = reinterpret_cast<void*>(va->va_start);
  kasan_unpoison_vmalloc(k, addr, size);
  // __GFP_ZERO pages were zeroed by the page allocator through the direct map: the alias
  // shows the same bytes.
  return addr;
}

void vfree(Kernel& k, const void* addr) {
  if (k.cpu().in_irq) {
    // vfree_atomic(): deferred to a workqueue in the kernel; nothing else runs meanwhile here,
    // so it is done now with the same effect.
  } else {
    const CpuState& c = k.cpu();
    if (c.preempt_count > 0 || c.irq_disable_depth > 0) report_sleep_in_atomic(k, "mm/vmalloc.c");
  }
  if (!addr) return;
  uintptr_t a = reinterpret_cast<uintptr_t>(addr);
  VmallocState& st = *k.vmalloc;
  if (!st.contains(a) || (a & (kPage - 1))) {
    report_warn(k, "mm/vmalloc.c", "vfree",
                strprintf("Trying to vfree() bad address (%016llx)",
                          (unsigned long long)(st.contains(a) ? st.kva(a) : a)));
    return;
  }
  std::unique_ptr<vmap_area> va;
  {
    std::lock_guard<std::mutex> guard(st.lock);
    auto it = st.busy.find(a);
    if (it != st.busy.end() && (it->second->flags & VM_ALLOC)) {
      va = std::move(it->second);
      st.busy.erase(it);
      protect_none(va->va_start, va->size());
    }
  }
  if (!va) {
    report_warn(k, "mm/vmalloc.c", "vfree",
                strprintf("Trying to vfree() nonexistent vm area (%016llx)",
                          (unsigned long long)st.kva(a)));
    return;
  }
  kasan_poison_vmalloc(k, reinterpret_cast<void*>(va->va_start), va->size());
  for (struct page* p : va->pages) {
    p->owner_data = 0;
    p->_refcount = 0;
    free_the_page(k, p, 0);
  }
  k.mod_node_page_state(NR_VMALLOC, -static_cast<long>(va->pages.size()));
  std::lock_guard<std::mutex> guard(st.lock);
  st.lazy_nr += va->size() >> PAGE_SHIFT_;
  va->pages.clear();
  st.purge_list.push_back(std::move(va));
  if (st.lazy_nr > st.lazy_max) purge_vmap_areas_locked(st);
}

void* vmap(Kernel& k, struct page** pages, unsigned int count, unsigned long flags) {
  {
    const CpuState& c = k.cpu();
    if (c.preempt_count > 0 || c.irq_disable_depth > 0 || c.in_irq > 0)
      report_sleep_in_atomic(k, "mm/vmalloc.c");
  }
  if (!count) return nullptr;
  unsigned long totalram = 0;
  for (auto& z : k.zones) totalram += z.managed_pages;
  if (count > totalram) return nullptr;
  for (unsigned i = 0; i < count; i++)
    if (!k.mem.is_page(pages[i]) || !(pages[i]->flags & PG_alloc)) {
      report_warn(k, "mm/vmalloc.c", "vmap", strprintf("page %u is not an allocated page", i));
      return nullptr;
    }
  VmallocState& st = *k.vmalloc;
  std::lock_guard<std::mutex> guard(st.lock);
  vmap_area* va =
      get_vm_area_locked(k, size_t(count) * kPage, VM_MAP | (flags & VM_NO_GUARD), "vmap");
  if (!va) return nullptr;
  va->pages.assign(pages, pages + count);
  kasan_unpoison_vmalloc(k, reinterpret_cast<void*>(va->va_start), size_t(count) * kPage);
  if (!map_area_pages(k, *va)) {
    protect_none(va->va_start, va->size());
    uintptr_t s = va->va_start, e = va->va_end;
    st.busy.erase(s);
    insert_free_locked(st, s, e);
    return nullptr;
  }
  return reinterpret_cast<void*>(va->va_start);
}

void vunmap(Kernel& k, const void* addr) {
  if (k.cpu().in_irq) {
    report_warn(k, "mm/vmalloc.c", "vunmap", "BUG_ON(in_interrupt())");
    return;
  }
  if (!addr) return;
  uintptr_t a = reinterpret_cast<uintptr_t>(addr);
  VmallocState& st = *k.vmalloc;
  std::lock_guard<std::mutex> guard(st.lock);
  auto it = st.contains(a) ? st.busy.find(a) : st.busy.end();
  if (it == st.busy.end() || !(it->second->flags & VM_MAP)) {
    report_warn(k, "mm/vmalloc.c", "vunmap",
                strprintf("Trying to vunmap() nonexistent vm area (%016llx)",
                          (unsigned long long)(st.contains(a) ? st.kva(a) : a)));
    return;
  }
  std::unique_ptr<vmap_area> va = std::move(it->second);
  st.busy.erase(it);
  kasan_poison_vmalloc(k, reinterpret_cast<void*>(va->va_start), va->size());
  protect_none(va->va_start, va->size());
  st.lazy_nr += va->size() >> PAGE_SHIFT_;
  va->pages.clear();
  st.purge_list.push_back(std::move(va));
  if (st.lazy_nr > st.lazy_max) purge_vmap_areas_locked(st);
}

struct page* vmalloc_to_page(Kernel& k, const void* addr) {
  uintptr_t a = reinterpret_cast<uintptr_t>(addr);
  VmallocState& st = *k.vmalloc;
  if (!st.contains(a)) return nullptr;
  std::lock_guard<std::mutex> guard(st.lock);
  vmap_area* va = find_vmap_area_locked(st, a);
  if (!va) return nullptr;
  size_t idx = (a - va->va_start) / kPage;
  return idx < va->pages.size() ? va->pages[idx] : nullptr;
}

bool is_vmalloc_addr(const Kernel& k, const void* addr) {
  return k.vmalloc && k.vmalloc->contains(reinterpret_cast<uintptr_t>(addr));
}

// /proc/vmallocinfo: busy areas in address order, then the lazily freed ones.
static std::string proc_vmallocinfo(Kernel& k) {
  VmallocState& st = *k.vmalloc;
  std::lock_guard<std::mutex> guard(st.lock);
  std::string t;
  for (auto& [start, va] : st.busy) {
    t += strprintf("0x%016llx-0x%016llx %7zu", (unsigned long long)st.kva(va->va_start),
                   (unsigned long long)st.kva(va->va_end), va->size());
    t += strprintf(" %s+0x0/0x0", va->caller);
    if (!va->pages.empty()) t += strprintf(" pages=%zu", va->pages.size());
    if (va->flags & VM_ALLOC) t += " vmalloc";
    if (va->flags & VM_MAP) t += " vmap";
    if (!va->pages.empty()) t += strprintf(" N0=%zu", va->pages.size());
    t += "\n";
  }
  std::vector<const vmap_area*> lazy;
  for (auto& va : st.purge_list) lazy.push_back(va.get());
  std::sort(lazy.begin(), lazy.end(),
            [](const vmap_area* a, const vmap_area* b) { return a->va_start < b->va_start; });
  for (const vmap_area* va : lazy)
    t += strprintf("0x%016llx-0x%016llx %7zu unpurged vm_area\n",
                   (unsigned long long)st.kva(va->va_start), (unsigned long long)st.kva(va->va_end),
                   va->size());
  return t;
}

void register_vmalloc_procfs(Kernel& k) {
  k.procfs.add("/proc/vmallocinfo", {proc_vmallocinfo, nullptr});
}

void vmalloc_validate(Kernel& k, std::vector<std::string>& errors) {
  VmallocState& st = *k.vmalloc;
  std::lock_guard<std::mutex> guard(st.lock);
  // Every byte of the reservation is in exactly one of: a free range, a busy area, a purge-list
  // area. Walk them merged in address order.
  thread_local std::vector<std::pair<uintptr_t, uintptr_t>> spans; // storage kept between calls
  spans.clear();
  for (auto& [s, e] : st.free_ranges) spans.push_back({s, e});
  for (auto& [s, va] : st.busy) spans.push_back({va->va_start, va->va_end});
  for (auto& va : st.purge_list) spans.push_back({va->va_start, va->va_end});
  std::sort(spans.begin(), spans.end());
  uintptr_t cursor = st.base;
  for (auto& [s, e] : spans) {
    if (s != cursor)
      errors.push_back(strprintf("vmalloc: %s at %016llx",
                                 s < cursor ? "overlapping ranges" : "lost range",
                                 (unsigned long long)st.kva(std::min(s, cursor))));
    if (s >= e || (s & (kPage - 1)) || (e & (kPage - 1)))
      errors.push_back(strprintf("vmalloc: bad range %016llx-%016llx",
                                 (unsigned long long)st.kva(s), (unsigned long long)st.kva(e)));
    cursor = std::max(cursor, e);
  }
  if (cursor != st.base + st.size) errors.push_back("vmalloc: ranges do not cover the reservation");
  for (auto it = st.free_ranges.begin(); it != st.free_ranges.end(); ++it) {
    auto next = std::next(it);
    if (next != st.free_ranges.end() && it->second == next->first)
      errors.push_back(strprintf("vmalloc: free ranges at %016llx not merged",
                                 (unsigned long long)st.kva(next->first)));
  }
  unsigned long vmalloc_pages = 0;
  for (auto& [s, va] : st.busy) {
    size_t mapped = va->pages.size() * kPage;
    size_t guard = (va->flags & VM_NO_GUARD) ? 0 : kPage;
    if (mapped + guard != va->size())
      errors.push_back(
          strprintf("vmalloc: area %016llx maps %zu bytes in %zu with a %zu-byte guard",
                    (unsigned long long)st.kva(s), mapped, va->size(), guard));
    for (size_t i = 0; i < va->pages.size(); i++) {
      const struct page* p = va->pages[i];
      if (!(p->flags & PG_alloc))
        errors.push_back(strprintf("vmalloc: area %016llx page %zu (pfn 0x%lx) is not allocated",
                                   (unsigned long long)st.kva(s), i, k.mem.page_to_pfn(p)));
      else if ((va->flags & VM_ALLOC) && p->owner != PageOwner::Vmalloc)
        errors.push_back(strprintf("vmalloc: area %016llx page %zu (pfn 0x%lx) is owned by %s",
                                   (unsigned long long)st.kva(s), i, k.mem.page_to_pfn(p),
                                   page_owner_name(p->owner)));
    }
    if (va->flags & VM_ALLOC) vmalloc_pages += va->pages.size();
  }
  if (static_cast<long>(vmalloc_pages) != k.node_page_state(NR_VMALLOC))
    errors.push_back(strprintf("vmalloc: areas hold %lu pages, nr_vmalloc says %ld", vmalloc_pages,
                               k.node_page_state(NR_VMALLOC)));
}

} // namespace kmm
