// SLUB's lock-free per-CPU fast paths (mm/slub.c: the lockless part of slab_alloc_node() and
// do_slab_free()), inline so that kmalloc, kfree and the kmem_cache API reach them without a
// call. They are small functions whose only calls are tail calls to the general paths in
// slub.cpp (noinline, and doing every check again from the start), so the compiler gives them no
// stack frame and no saved registers. Behaviour is that of the general paths alone: whatever a
// fast path does not handle itself, it hands over untouched.
//
// Preconditions shared by both: the CPU freelist (c->freelist) is touched only by its CPU, so a
// pop or a push needs no lock and no atomic; s->fastpath says no debug flag, no init_on_alloc or
// init_on_free, and neither KASAN nor KFENCE on the machine.
#pragma once

#include <cstdint>

#include "kasan_asan.h"
#include "kernel.h"
#include "slub.h"

namespace kmm {

// The general paths (slub.cpp): slab_alloc_node() and slab_free() in full.
void* slab_alloc_general(Kernel& k, kmem_cache* s, gfp_t gfp, size_t orig_size, uintptr_t caller,
                         unsigned cpu);
void slab_free_general(Kernel& k, kmem_cache* s, struct page* slab, void* obj, uintptr_t caller);
// kmem_cache_free() in full: KFENCE, not a slab, wrong cache, then slab_free_general().
void kmem_cache_free_general(Kernel& k, kmem_cache* s, void* obj, uintptr_t caller);

// Hardened free pointer: the stored word is next ^ s->random ^ bswap64(&word). Worked example
// with random 0: the slot at 0x1000 pointing to 0x2000 stores 0x2000 ^ 0x0010000000000000.
inline uintptr_t freelist_ptr(const kmem_cache* s, uintptr_t v, uintptr_t ptr_addr) {
  return v ^ s->random ^ __builtin_bswap64(ptr_addr);
}

// Free pointers live in free objects, which KASAN keeps poisoned: not ASan-instrumented. Other
// files use get_freepointer / set_freepointer.
inline KMM_NO_SANITIZE_ADDRESS void* freepointer_load(const kmem_cache* s, void* obj) {
  uintptr_t addr = reinterpret_cast<uintptr_t>(obj) + s->offset;
  return reinterpret_cast<void*>(freelist_ptr(s, *reinterpret_cast<uintptr_t*>(addr), addr));
}
inline KMM_NO_SANITIZE_ADDRESS void freepointer_store(const kmem_cache* s, void* obj, void* fp) {
  uintptr_t addr = reinterpret_cast<uintptr_t>(obj) + s->offset;
  *reinterpret_cast<uintptr_t*>(addr) = freelist_ptr(s, reinterpret_cast<uintptr_t>(fp), addr);
}

// Index of an object whose offset in the slab is an exact multiple of s->size. The reciprocal
// ceil(2^32/size) makes this a multiply: offset 448*3 = 1344 with size 448 gives
// (1344 * 9586981) >> 32 == 3. Exact for multiples of size below 2^32.
inline unsigned index_of_offset(const kmem_cache* s, uintptr_t off) {
  return static_cast<unsigned>((uint64_t(off) * s->reciprocal) >> 32);
}

// check_valid_pointer()'s cheap always-on form for the free fast path: a multiply instead of
// the modulo.
inline bool object_pointer_ok(Kernel& k, const kmem_cache* s, const struct page* slab,
                              const void* p) {
  // page_address(slab) - direct_map from the struct page's byte offset in mem_map, one multiply
  // by 4096 / 64 instead of page_to_pfn()'s division and a shift back (the slab at pfn 3: offset
  // 192 in mem_map, 12288 in RAM).
  constexpr uintptr_t ram_per_memmap_byte = PAGE_SIZE_ / sizeof(struct page);
  static_assert(ram_per_memmap_byte * sizeof(struct page) == PAGE_SIZE_);
  uintptr_t slab_phys =
      (reinterpret_cast<uintptr_t>(slab) - reinterpret_cast<uintptr_t>(k.mem.mem_map)) *
      ram_per_memmap_byte;
  uintptr_t off = k.mem.virt_to_phys(p) - s->red_left_pad - slab_phys;
  unsigned idx = index_of_offset(s, off);
  return (idx < slab->slab.objects) & (uint64_t(idx) * s->size == off); // one branch
}

// virt_to_slab(): the slab (head page) holding p, or nullptr if p is in no slab.
inline struct page* slab_of(Kernel& k, const void* p) {
  if (!k.mem.is_direct(p)) return nullptr;
  struct page* pg = k.mem.virt_to_page(p);
  if (pg->flags & PG_tail) pg = k.mem.pfn_to_page(pg->compound_head);
  return (pg->flags & PG_slab) ? pg : nullptr;
}

inline bool cpu_in_atomic(const CpuState& cs) {
  return (cs.preempt_count > 0) | (cs.irq_disable_depth > 0) | (cs.in_irq > 0); // no branches
}

// k.cpu_id() with one read of the thread_local (each read of an extern thread_local goes
// through its init-function check).
inline unsigned this_cpu(const Kernel&) { return static_cast<unsigned>(Kernel::current_cpu); }

// Allocation: a fastpath cache, no zeroing, not in atomic context for a sleeping allocation, and
// a non-empty CPU freelist - then one pop.
inline void* slab_alloc_fast(Kernel& k, kmem_cache* s, gfp_t gfp, size_t orig_size,
                             uintptr_t caller) {
  const unsigned cpu = this_cpu(k);
  kmem_cache_cpu* c = &s->cpu_slab[cpu];
  void* obj = c->freelist;
  // Written so that the common case (fastpath cache, no __GFP_ZERO, a non-empty freelist, no
  // nesting) falls through every branch. A sleeping allocation in any nesting at all (one load:
  // atomic_depth is the sum of the three context counters, kernel.h) goes to the general path,
  // which judges it with cpu_in_atomic() and reports.
  if (__builtin_expect(!s->fastpath || (gfp & __GFP_ZERO) || obj == nullptr, 0))
    return slab_alloc_general(k, s, gfp, orig_size, caller, cpu);
  if (__builtin_expect(k.cpus[cpu].atomic_depth != 0, 0) && (gfp & __GFP_DIRECT_RECLAIM))
    return slab_alloc_general(k, s, gfp, orig_size, caller, cpu);
  c->freelist = freepointer_load(s, obj);
  return obj;
}

// Free of an object of `slab`: a fastpath cache, a valid object pointer, the object in this
// CPU's cpu slab and not its freelist head (a double free) - then one push.
inline void slab_free_fast(Kernel& k, kmem_cache* s, struct page* slab, void* obj,
                           uintptr_t caller) {
  kmem_cache_cpu* c = &s->cpu_slab[this_cpu(k)];
  void* head = c->freelist;
  if (__builtin_expect(
          !s->fastpath || slab != c->slab || obj == head || !object_pointer_ok(k, s, slab, obj), 0))
    return slab_free_general(k, s, slab, obj, caller);
  freepointer_store(s, obj, head);
  c->freelist = obj;
}

// kmem_cache_free(): the object must be in a slab of `s` (cache_from_obj). KFENCE objects are in
// no slab, so they reach the general path.
inline void kmem_cache_free_fast(Kernel& k, kmem_cache* s, void* obj, uintptr_t caller) {
  struct page* slab = slab_of(k, obj);
  if (__builtin_expect(!slab || slab->slab.slab_cache != s, 0))
    return kmem_cache_free_general(k, s, obj, caller);
  slab_free_fast(k, s, slab, obj, caller);
}

} // namespace kmm
