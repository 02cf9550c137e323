// <kmm/slab.h>: the kernel's slab and kmalloc API (include/linux/slab.h), RCU callbacks and the
// device-managed allocations, acting on the machine current on this thread. [contract]
//
// Included by <kmm/linux.h>. Names, signatures and flag values are the kernel's (6.12), so
// kernel-style code compiles unchanged:
//
//   struct kmem_cache* s = kmem_cache_create("foo", sizeof(struct foo), 0, SLAB_HWCACHE_ALIGN,
//   NULL); struct foo* f = kmem_cache_alloc(s, GFP_KERNEL); kmem_cache_free(s, f);
//   kmem_cache_destroy(s);
//
// Misuse is reported on the machine in the kernel's words (slub_debug messages, WARNs) and never
// crashes the host: a wrong-cache or double free leaks the object as the kernel does.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kmm/device.h"
#include "kmm/gfp.h"

typedef unsigned int slab_flags_t;

// Cache flags (include/linux/slab.h, 6.12 bit values).
// clang-format off
inline constexpr slab_flags_t SLAB_CONSISTENCY_CHECKS = 0x00000100u; // slub_debug F
inline constexpr slab_flags_t SLAB_RED_ZONE           = 0x00000400u; // slub_debug Z
inline constexpr slab_flags_t SLAB_POISON             = 0x00000800u; // slub_debug P
inline constexpr slab_flags_t SLAB_KMALLOC            = 0x00001000u; // a kmalloc cache (orig_size tracking)
inline constexpr slab_flags_t SLAB_HWCACHE_ALIGN      = 0x00002000u; // align objects to cache lines
inline constexpr slab_flags_t SLAB_CACHE_DMA          = 0x00004000u; // slabs from ZONE_DMA
inline constexpr slab_flags_t SLAB_CACHE_DMA32        = 0x00008000u; // slabs from ZONE_DMA32
inline constexpr slab_flags_t SLAB_STORE_USER         = 0x00010000u; // slub_debug U: alloc/free tracks
inline constexpr slab_flags_t SLAB_RECLAIM_ACCOUNT    = 0x00020000u; // SReclaimable, __GFP_RECLAIMABLE
inline constexpr slab_flags_t SLAB_PANIC              = 0x00040000u; // panic if creation fails
inline constexpr slab_flags_t SLAB_TYPESAFE_BY_RCU    = 0x00080000u; // slabs freed after a grace period
inline constexpr slab_flags_t SLAB_TRACE              = 0x00200000u; // slub_debug T
inline constexpr slab_flags_t SLAB_NOLEAKTRACE        = 0x00800000u; // accepted
inline constexpr slab_flags_t SLAB_NO_MERGE           = 0x01000000u; // never merge with another cache
inline constexpr slab_flags_t SLAB_FAILSLAB           = 0x02000000u; // accepted
inline constexpr slab_flags_t SLAB_ACCOUNT            = 0x04000000u; // memcg accounting: accepted
inline constexpr slab_flags_t SLAB_NO_USER_FLAGS      = 0x10000000u; // ignore slub_debug= for this cache

// kmalloc limits (SLUB, 4 KiB pages): the largest slab-backed kmalloc and the largest kmalloc.
inline constexpr size_t KMALLOC_SHIFT_HIGH     = 13;
inline constexpr size_t KMALLOC_MAX_CACHE_SIZE = size_t(1) << KMALLOC_SHIFT_HIGH; // 8192
inline constexpr size_t KMALLOC_SHIFT_MAX      = 22;                              // MAX_PAGE_ORDER + PAGE_SHIFT
inline constexpr size_t KMALLOC_MAX_SIZE       = size_t(1) << KMALLOC_SHIFT_MAX;   // 4 MiB
inline constexpr size_t KMALLOC_MIN_SIZE       = 8;
// clang-format on

// kmalloc(0) returns ZERO_SIZE_PTR: not NULL, never dereferenceable, ignored by kfree.
#define ZERO_SIZE_PTR ((void*)16)
#define ZERO_OR_NULL_PTR(x) ((unsigned long)(x) <= (unsigned long)ZERO_SIZE_PTR)

#ifndef NUMA_NO_NODE
#define NUMA_NO_NODE (-1)
#endif

struct kmem_cache; // opaque

// ---- caches ---------------------------------------------------------------------------------
struct kmem_cache* kmem_cache_create(const char* name, unsigned int size, unsigned int align,
                                     slab_flags_t flags, void (*ctor)(void*));
void kmem_cache_destroy(struct kmem_cache* s);
int kmem_cache_shrink(struct kmem_cache* s);
unsigned int kmem_cache_size(struct kmem_cache* s);
const char* kmem_cache_name(const struct kmem_cache* s);

void* kmem_cache_alloc(struct kmem_cache* s, gfp_t flags);
void* kmem_cache_alloc_node(struct kmem_cache* s, gfp_t flags, int node);
inline void* kmem_cache_zalloc(struct kmem_cache* s, gfp_t flags) {
  return kmem_cache_alloc(s, flags | __GFP_ZERO);
}
void kmem_cache_free(struct kmem_cache* s, void* objp);
// Returns the number of objects allocated (all of them) or 0 (none: all-or-nothing).
int kmem_cache_alloc_bulk(struct kmem_cache* s, gfp_t flags, size_t size, void** p);
// s may be NULL: each object's own cache is used (as kfree_bulk does).
void kmem_cache_free_bulk(struct kmem_cache* s, size_t size, void** p);

// ---- kmalloc --------------------------------------------------------------------------------
void* kmalloc(size_t size, gfp_t flags);
void* kmalloc_node(size_t size, gfp_t flags, int node);
inline void* kzalloc(size_t size, gfp_t flags) { return kmalloc(size, flags | __GFP_ZERO); }
inline void* kzalloc_node(size_t size, gfp_t flags, int node) {
  return kmalloc_node(size, flags | __GFP_ZERO, node);
}
void* kmalloc_array(size_t n, size_t size, gfp_t flags); // NULL if n * size overflows
inline void* kcalloc(size_t n, size_t size, gfp_t flags) {
  return kmalloc_array(n, size, flags | __GFP_ZERO);
}
void* krealloc(const void* p, size_t new_size, gfp_t flags);
void kfree(const void* objp);
void kfree_sensitive(const void* objp);
size_t ksize(const void* objp);
size_t kmalloc_size_roundup(size_t size);
void* kmemdup(const void* src, size_t len, gfp_t gfp);
char* kstrdup(const char* s, gfp_t gfp);
char* kstrndup(const char* s, size_t max, gfp_t gfp);
// kmalloc of `size` bytes from a given kmalloc-type cache (a SLAB_KMALLOC cache made by the
// caller, as slub_kunit does): the object's requested size is tracked for the kmalloc red zone.
void* __kmalloc_cache_noprof(struct kmem_cache* s, gfp_t flags, size_t size);

// ---- RCU (simulated, deterministic) -----------------------------------------------------------
// Grace periods end at synchronize_rcu() and rcu_barrier() (and when 10000 callbacks are queued,
// as the kernel's qhimark forces one); callbacks then run in the order they were queued, on the
// calling thread. rcu_read_lock() sections on other CPUs delay synchronize_rcu().
struct rcu_head {
  struct rcu_head* next;
  void (*func)(struct rcu_head* head);
};
typedef void (*rcu_callback_t)(struct rcu_head* head);
void call_rcu(struct rcu_head* head, rcu_callback_t func);
void synchronize_rcu(void);
void rcu_barrier(void);
void rcu_read_lock(void);
void rcu_read_unlock(void);
// kfree(ptr) after a grace period; `head` lies inside the object that starts at `ptr`.
void kvfree_call_rcu(struct rcu_head* head, void* ptr);
void kvfree_rcu_barrier(void);
#define kfree_rcu(ptr, rhf) kvfree_call_rcu(&((ptr)->rhf), (void*)(ptr))
#define kvfree_rcu(ptr, rhf) kfree_rcu(ptr, rhf)

// ---- device-managed allocations (released when the kmm::Device is destroyed) -------------------
void* devm_kmalloc(struct device* dev, size_t size, gfp_t gfp);
inline void* devm_kzalloc(struct device* dev, size_t size, gfp_t gfp) {
  return devm_kmalloc(dev, size, gfp | __GFP_ZERO);
}
void* devm_kcalloc(struct device* dev, size_t n, size_t size, gfp_t gfp);
void devm_kfree(struct device* dev, const void* p);
char* devm_kstrdup(struct device* dev, const char* s, gfp_t gfp);
