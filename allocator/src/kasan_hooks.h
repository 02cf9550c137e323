// Hook points where KASAN (a later layer) poisons and unpoisons slab memory in its shadow.
// For now every hook is an inline no-op, so the slab fast paths cost nothing for them. The KASAN
// implementation replaces these bodies (keeping the signatures) with calls into kasan.cpp that
// return at once when kasan=off.
#pragma once

#include <cstddef>

#include "kmm/gfp.h"

struct kmem_cache;
struct page;

namespace kmm {

struct Kernel;

// A new slab: poison every slot (KASAN_SLAB_REDZONE) before objects are set up.
inline void kasan_poison_slab(Kernel&, kmem_cache*, struct page*) {}
// Around the constructor of a new object: the ctor may write the object.
inline void kasan_unpoison_new_object(Kernel&, kmem_cache*, void*) {}
inline void kasan_poison_new_object(Kernel&, kmem_cache*, void*) {}
// An object handed out by kmem_cache_alloc (unpoison object_size); returns the object.
inline void* kasan_slab_alloc(Kernel&, kmem_cache*, void* obj, gfp_t, bool /*init*/) { return obj; }
// kmalloc of `size`: poison [size, object_size) as the kmalloc red zone.
inline void kasan_kmalloc(Kernel&, kmem_cache*, const void*, size_t, gfp_t) {}
// An object being freed. Returns true if KASAN takes it (quarantine): SLUB must not free it now.
// It is also where KASAN detects a double or invalid free.
inline bool kasan_slab_free(Kernel&, kmem_cache*, void*, bool /*init*/) { return false; }
// Large kmalloc (page allocator backed).
inline void kasan_kmalloc_large(Kernel&, const void*, size_t, gfp_t) {}
inline void kasan_kfree_large(Kernel&, const void*) {}
// krealloc kept the object at a new size: re-poison the tail.
inline void kasan_krealloc(Kernel&, const void*, size_t, gfp_t) {}

} // namespace kmm
