// kmalloc's size classes and the fast paths of kmalloc() and kfree(), inline for the public
// wrappers (linux_slab.cpp): a size-class lookup, then SLUB's per-CPU fast path (slub_fast.h).
// Whatever they do not handle themselves - zero or above 8k, a cache that is not fastpath (KASAN,
// KFENCE, debug, init_on_*), KFENCE's pool, a pointer in no slab - goes untouched to __kmalloc()
// or kfree_internal() (kmalloc.cpp), which handle every case.
#pragma once

#include <cstdint>

#include "kernel.h"
#include "kmalloc.h"
#include "kmm/slab.h"
#include "slub_fast.h"

namespace kmm {

enum kmalloc_cache_type { KMALLOC_NORMAL, KMALLOC_RECLAIM, KMALLOC_DMA, NR_KMALLOC_TYPES };

// size_index[(size - 1) / 8] for sizes up to 192: 1..8 -> 8 (index 3), 65..96 -> 96 (index 1).
inline constexpr uint8_t size_index[24] = {3, 4, 5, 5, 6, 6, 6, 6, 1, 1, 1, 1,
                                           7, 7, 7, 7, 2, 2, 2, 2, 2, 2, 2, 2};

// The kmalloc_caches[][] index of a request of 1 .. KMALLOC_MAX_CACHE_SIZE bytes.
inline unsigned kmalloc_index(size_t size) {
  if (size <= 192) return size_index[(size - 1) / 8];
  return 64 - __builtin_clzll(uint64_t(size - 1)); // fls(size - 1): 193..256 -> 8
}

inline kmalloc_cache_type kmalloc_type(gfp_t flags) {
  if (__builtin_expect(!(flags & (__GFP_DMA | __GFP_RECLAIMABLE)), 1)) return KMALLOC_NORMAL;
  if (flags & __GFP_DMA) return KMALLOC_DMA;
  if (flags & __GFP_RECLAIMABLE) return KMALLOC_RECLAIM;
  return KMALLOC_NORMAL;
}

inline void* kmalloc_fast(Kernel& k, size_t size, gfp_t flags, uintptr_t caller) {
  if (__builtin_expect(size - 1 < KMALLOC_MAX_CACHE_SIZE, 1)) { // not 0, not above 8k
    kmem_cache* s = k.kmalloc_caches[kmalloc_type(flags)][kmalloc_index(size)];
    if (__builtin_expect(s->fastpath, 1)) return slab_alloc_fast(k, s, flags, size, caller);
  }
  return __kmalloc(k, size, flags, caller);
}

// KFENCE objects are in no slab, so they reach kfree_internal().
inline void kfree_fast(Kernel& k, const void* p, uintptr_t caller) {
  if (__builtin_expect(!ZERO_OR_NULL_PTR(p), 1))
    if (struct page* slab = slab_of(k, p))
      return slab_free_fast(k, slab->slab.slab_cache, slab, const_cast<void*>(p), caller);
  kfree_internal(k, p, caller);
}

} // namespace kmm
