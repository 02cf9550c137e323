// kmalloc's internal entry points (kmalloc.cpp), shared by the public wrappers, RCU and devres.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kmm/gfp.h"

struct kmem_cache;

namespace kmm {

struct Kernel;

void create_kmalloc_caches(Kernel& k);
// The kmalloc cache for a request of `size` (1 .. KMALLOC_MAX_CACHE_SIZE) and these flags.
kmem_cache* kmalloc_slab(Kernel& k, size_t size, gfp_t flags);
void* __kmalloc(Kernel& k, size_t size, gfp_t flags, uintptr_t caller);
void* __kmalloc_cache(Kernel& k, kmem_cache* s, gfp_t flags, size_t size, uintptr_t caller);
void kfree_internal(Kernel& k, const void* p, uintptr_t caller);
size_t __ksize(Kernel& k, const void* p);
void* __krealloc(Kernel& k, const void* p, size_t new_size, gfp_t flags, uintptr_t caller);
size_t kmalloc_size_roundup(Kernel& k, size_t size);

} // namespace kmm
