// kmalloc's size classes and the fast paths of kmalloc() and kfree(), inline for the public
// wrappers (linux_slab.cpp): a size-class lookup (one load), then SLUB's per-CPU fast path
// (slub_fast.h). Whatever they do not handle themselves - zero or above 8k, a reclaimable or DMA
// request, a cache that is not fastpath (KASAN, KFENCE, debug, init_on_*), KFENCE's pool, a
// pointer in no slab - goes untouched to __kmalloc() or kfree_internal() (kmalloc.cpp), which
// handle every case.
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

// The kernel's kmalloc_index(): size_index[] up to 192, fls(size - 1) above (193..256 -> 8).
constexpr unsigned kmalloc_index_slow(size_t size) {
  if (size <= 192) return size_index[(size - 1) / 8];
  return 64 - __builtin_clzll(uint64_t(size - 1));
}

// The same for every size up to KMALLOC_MAX_CACHE_SIZE, one byte per 8-byte step (1 KiB), so the
// fast path pays one load and no branch. Exact: fls(size - 1) changes only at size 2^n + 1, the
// first size of a step (257..264 -> 512, index 9).
struct KmallocSizeIndex {
  uint8_t index[KMALLOC_MAX_CACHE_SIZE / 8];
};
constexpr KmallocSizeIndex make_kmalloc_size_index() {
  KmallocSizeIndex t{};
  for (size_t i = 0; i < KMALLOC_MAX_CACHE_SIZE / 8; i++)
    t.index[i] = static_cast<uint8_t>(kmalloc_index_slow(i * 8 + 1));
  return t;
}
inline constexpr KmallocSizeIndex kmalloc_size_index = make_kmalloc_size_index();
static_assert(kmalloc_size_index.index[0] == 3 && kmalloc_size_index.index[8] == 1 &&
              kmalloc_size_index.index[31] == 8 && kmalloc_size_index.index[32] == 9 &&
              kmalloc_size_index.index[1023] == 13);

// The kmalloc_caches[][] index of a request of 1 .. KMALLOC_MAX_CACHE_SIZE bytes.
inline unsigned kmalloc_index(size_t size) { return kmalloc_size_index.index[(size - 1) / 8]; }

inline kmalloc_cache_type kmalloc_type(gfp_t flags) {
  if (__builtin_expect(!(flags & (__GFP_DMA | __GFP_RECLAIMABLE)), 1)) return KMALLOC_NORMAL;
  if (flags & __GFP_DMA) return KMALLOC_DMA;
  if (flags & __GFP_RECLAIMABLE) return KMALLOC_RECLAIM;
  return KMALLOC_NORMAL;
}

// Reclaimable and DMA requests take __kmalloc(), which finds their caches.
inline void* kmalloc_fast(Kernel& k, size_t size, gfp_t flags, uintptr_t caller) {
  if (__builtin_expect(
          size - 1 < KMALLOC_MAX_CACHE_SIZE && !(flags & (__GFP_DMA | __GFP_RECLAIMABLE)), 1)) {
    kmem_cache* s = k.kmalloc_caches[KMALLOC_NORMAL][kmalloc_index(size)];
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
