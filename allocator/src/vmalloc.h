// vmalloc (mm/vmalloc.c): the vmap-area allocator over a reserved host address range, and
// vmalloc/vmap on real mappings of the machine's memfd, so a vmalloc area aliases the direct map
// like the kernel's and its guard page is a real PROT_NONE page.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kmm/gfp.h"

struct page;

namespace kmm {

struct Kernel;

// x86_64 VMALLOC_START without KASLR: reports print vmalloc addresses in this range.
inline constexpr uint64_t VMALLOC_START_VA = 0xffffc90000000000ull;

// A busy (or lazily freed) area: [va_start, va_end) in host addresses, guard page included.
// Invariants: page aligned; the first nr_pages pages are mapped to `pages` (vmalloc/vmap), the
// rest (the guard) is PROT_NONE; busy areas never overlap each other or a free range.
struct vmap_area {
  uintptr_t va_start = 0;
  uintptr_t va_end = 0;
  unsigned long flags = 0;         // VM_ALLOC, VM_MAP ...
  std::vector<struct page*> pages; // mapped pages, in address order
  const char* caller = "";         // the API entry that created it (vmallocinfo)
  size_t size() const { return va_end - va_start; }
};

struct VmallocState {
  uintptr_t base = 0; // host reservation
  size_t size = 0;
  std::mutex lock; // vmap_area_lock: everything below
  // Free ranges, start -> end: disjoint and never adjacent (merged on insert).
  std::map<uintptr_t, uintptr_t> free_ranges;
  std::map<uintptr_t, std::unique_ptr<vmap_area>> busy; // by va_start
  std::vector<std::unique_ptr<vmap_area>> purge_list;   // vfree'd, unmapped, VA not yet reusable
  unsigned long lazy_nr = 0;                            // pages on the purge list
  unsigned long lazy_max = 0;                           // lazy_max_pages(): purge beyond this

  ~VmallocState();
  uint64_t kva(uintptr_t host) const { return VMALLOC_START_VA + (host - base); }
  bool contains(uintptr_t a) const { return a >= base && a < base + size; }
};

// Reserves the range and registers the fault handler (from Machine::boot).
void vmalloc_init(Kernel& k);

void* __vmalloc_node(Kernel& k, unsigned long size, gfp_t gfp, const char* caller);
void vfree(Kernel& k, const void* addr);
void* vmap(Kernel& k, struct page** pages, unsigned int count, unsigned long flags);
void vunmap(Kernel& k, const void* addr);
struct page* vmalloc_to_page(Kernel& k, const void* addr);
bool is_vmalloc_addr(const Kernel& k, const void* addr);

void register_vmalloc_procfs(Kernel& k);

// Self-check for kmm::validate.
void vmalloc_validate(Kernel& k, std::vector<std::string>& errors);

} // namespace kmm
