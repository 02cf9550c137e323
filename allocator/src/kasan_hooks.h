// Hook points where KASAN poisons and unpoisons slab memory in its shadow (kasan_slab.cpp does
// the work). Each hook is an inline test of k.kasan, so with kasan=off the slab fast paths pay
// one predictable branch.
#pragma once

#include <cstddef>

#include "kernel.h"
#include "kmm/gfp.h"

struct kmem_cache;
struct page;

namespace kmm {

void kasan_poison_slab_hook(Kernel&, kmem_cache*, struct page*);
void kasan_unpoison_new_object_hook(Kernel&, kmem_cache*, void*);
void kasan_poison_new_object_hook(Kernel&, kmem_cache*, void*);
void* kasan_slab_alloc_hook(Kernel&, kmem_cache*, void* obj, gfp_t, bool init);
void kasan_kmalloc_hook(Kernel&, kmem_cache*, const void*, size_t, gfp_t);
bool kasan_slab_free_hook(Kernel&, kmem_cache*, void*, bool init);
void kasan_kmalloc_large_hook(Kernel&, const void*, size_t, gfp_t);
bool kasan_kfree_large_hook(Kernel&, const void*);
void kasan_krealloc_hook(Kernel&, const void*, size_t, gfp_t);
bool kasan_check_byte_hook(Kernel&, const void*, const char* fn);
void kasan_quarantine_flush(Kernel&);
void kasan_quarantine_remove_cache(Kernel&, kmem_cache*);

#define KMM_KASAN_ON(k) __builtin_expect((k).kasan != nullptr, 0)

// A new slab: poison every slot (KASAN_SLAB_REDZONE) before objects are set up.
inline void kasan_poison_slab(Kernel& k, kmem_cache* s, struct page* p) {
  if (KMM_KASAN_ON(k)) kasan_poison_slab_hook(k, s, p);
}
// Around the constructor of a new object: the ctor may write the object.
inline void kasan_unpoison_new_object(Kernel& k, kmem_cache* s, void* o) {
  if (KMM_KASAN_ON(k)) kasan_unpoison_new_object_hook(k, s, o);
}
inline void kasan_poison_new_object(Kernel& k, kmem_cache* s, void* o) {
  if (KMM_KASAN_ON(k)) kasan_poison_new_object_hook(k, s, o);
}
// An object handed out by kmem_cache_alloc (unpoison object_size); returns the object.
inline void* kasan_slab_alloc(Kernel& k, kmem_cache* s, void* obj, gfp_t gfp, bool init) {
  return KMM_KASAN_ON(k) ? kasan_slab_alloc_hook(k, s, obj, gfp, init) : obj;
}
// kmalloc of `size`: poison [size, object_size) as the kmalloc red zone.
inline void kasan_kmalloc(Kernel& k, kmem_cache* s, const void* p, size_t size, gfp_t gfp) {
  if (KMM_KASAN_ON(k)) kasan_kmalloc_hook(k, s, p, size, gfp);
}
// An object being freed. Returns true if KASAN takes it (quarantine, or a double/invalid free
// it reported): SLUB must not free it now.
inline bool kasan_slab_free(Kernel& k, kmem_cache* s, void* p, bool init) {
  return KMM_KASAN_ON(k) && kasan_slab_free_hook(k, s, p, init);
}
// Large kmalloc (page allocator backed). kasan_kfree_large returns false for a bad free.
inline void kasan_kmalloc_large(Kernel& k, const void* p, size_t size, gfp_t gfp) {
  if (KMM_KASAN_ON(k)) kasan_kmalloc_large_hook(k, p, size, gfp);
}
inline bool kasan_kfree_large(Kernel& k, const void* p) {
  return !KMM_KASAN_ON(k) || kasan_kfree_large_hook(k, p);
}
// krealloc kept the object at a new size: re-poison the tail.
inline void kasan_krealloc(Kernel& k, const void* p, size_t size, gfp_t gfp) {
  if (KMM_KASAN_ON(k)) kasan_krealloc_hook(k, p, size, gfp);
}
// kasan_check_byte(): krealloc and ksize of a freed object report and fail.
inline bool kasan_check_byte(Kernel& k, const void* p, const char* fn) {
  return !KMM_KASAN_ON(k) || kasan_check_byte_hook(k, p, fn);
}

} // namespace kmm
