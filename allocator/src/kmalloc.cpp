// kmalloc (mm/slab_common.c, mm/slub.c): the kmalloc-8 .. kmalloc-8k caches in three types
// (normal, reclaimable "kmalloc-rcl-", DMA "dma-kmalloc-"), large kmalloc straight from the page
// allocator (accounted as unreclaimable slab, as the kernel does), kfree, ksize and krealloc.
#include "kmalloc.h"

#include <cstring>

#include "bug.h"
#include "kasan_asan.h"
#include "kasan_hooks.h"
#include "kernel.h"
#include "kfence.h"
#include "kmalloc_fast.h"
#include "page_alloc.h"
#include "slub.h"
#include "slub_fast.h"

namespace kmm {

static const char* const kmalloc_type_prefix[NR_KMALLOC_TYPES] = {"kmalloc-", "kmalloc-rcl-",
                                                                  "dma-kmalloc-"};
// kmalloc_info[]: index -> (size, short name). Index 1 and 2 are the odd sizes 96 and 192.
static const struct {
  unsigned size;
  const char* name;
} kmalloc_info[14] = {{0, "0"},     {96, "96"},   {192, "192"}, {8, "8"},     {16, "16"},
                      {32, "32"},   {64, "64"},   {128, "128"}, {256, "256"}, {512, "512"},
                      {1024, "1k"}, {2048, "2k"}, {4096, "4k"}, {8192, "8k"}};

static inline kmem_cache* kmalloc_slab_inline(Kernel& k, size_t size, gfp_t flags) {
  return k.kmalloc_caches[kmalloc_type(flags)][kmalloc_index(size)];
}
kmem_cache* kmalloc_slab(Kernel& k, size_t size, gfp_t flags) {
  return kmalloc_slab_inline(k, size, flags);
}

// create_kmalloc_caches: 8, 16, 32, 64, 96, 128, 192, 256 ... 8k for each type, in the kernel's
// creation order (so /proc/slabinfo lists them as the kernel does, newest first).
void create_kmalloc_caches(Kernel& k) {
  static const unsigned order[] = {3, 4, 5, 6, 1, 7, 2, 8, 9, 10, 11, 12, 13};
  for (int type = 0; type < NR_KMALLOC_TYPES; type++) {
    for (unsigned idx : order) {
      unsigned size = kmalloc_info[idx].size;
      std::string name = std::string(kmalloc_type_prefix[type]) + kmalloc_info[idx].name;
      slab_flags_t flags = SLAB_KMALLOC;
      if (type == KMALLOC_RECLAIM) flags |= SLAB_RECLAIM_ACCOUNT;
      if (type == KMALLOC_DMA) flags |= SLAB_CACHE_DMA;
      // Power-of-two kmalloc objects are naturally aligned; the others to ARCH_KMALLOC_MINALIGN.
      unsigned align = (size & (size - 1)) == 0 ? size : 8;
      kmem_cache* s = create_cache(k, name.c_str(), size, align, flags | SLAB_NO_MERGE, nullptr, 0);
      if (!s) throw std::runtime_error("kmm: cannot create " + name);
      s->flags &= ~SLAB_NO_MERGE; // boot caches are not merged into, but later caches may merge
      s->is_kmalloc = true;
      k.kmalloc_caches[type][idx] = s;
    }
  }
}

// __kmalloc_large_node: whole pages, compound, accounted in NR_SLAB_UNRECLAIMABLE_B.
// Out of line: inlined into __kmalloc its stack frame would cost every small kmalloc.
static __attribute__((noinline)) void* kmalloc_large(Kernel& k, size_t size, gfp_t flags) {
  unsigned order = get_order(size); // above MAX_PAGE_ORDER: __alloc_pages warns and fails
  struct page* page = __alloc_pages(k, flags | __GFP_COMP, order, PageOwner::KmallocLarge);
  if (!page) return nullptr;
  k.mod_node_page_state(NR_SLAB_UNRECLAIMABLE_B, long(PAGE_SIZE_ << order));
  void* p = k.mem.page_address(page);
  kasan_kmalloc_large(k, p, size, flags);
  return p;
}

static __attribute__((noinline)) void* kmalloc_cache_kasan(Kernel& k, kmem_cache* s, gfp_t flags,
                                                           size_t size, uintptr_t caller) {
  void* p = slab_alloc(k, s, flags, size, caller);
  if (p) kasan_kmalloc(k, s, p, size, flags);
  return p;
}

// A fastpath cache has no KASAN to tell: the slab fast path, a tail call.
static inline void* kmalloc_cache_inline(Kernel& k, kmem_cache* s, gfp_t flags, size_t size,
                                         uintptr_t caller) {
  if (__builtin_expect(s->fastpath, 1)) return slab_alloc_fast(k, s, flags, size, caller);
  if (k.kasan) return kmalloc_cache_kasan(k, s, flags, size, caller);
  return slab_alloc(k, s, flags, size, caller);
}
void* __kmalloc_cache(Kernel& k, kmem_cache* s, gfp_t flags, size_t size, uintptr_t caller) {
  return kmalloc_cache_inline(k, s, flags, size, caller);
}

void* __kmalloc(Kernel& k, size_t size, gfp_t flags, uintptr_t caller) {
  if (__builtin_expect(size - 1 >= KMALLOC_MAX_CACHE_SIZE, 0)) { // 0 or above 8k
    if (size == 0) return ZERO_SIZE_PTR;
    return kmalloc_large(k, size, flags);
  }
  return kmalloc_cache_inline(k, kmalloc_slab_inline(k, size, flags), flags, size, caller);
}

static void free_large_kmalloc(Kernel& k, struct page* page, const void* p) {
  unsigned order = (page->flags & PG_head) ? page->compound_order : 0;
  if (order == 0)
    report_warn(k, "mm/slub.c", "free_large_kmalloc",
                strprintf("object pointer: 0x%llx", (unsigned long long)k.mem.kva(p)));
  if (!kasan_kfree_large(k, p)) return; // a bad free KASAN reported: leave the pages alone
  k.mod_node_page_state(NR_SLAB_UNRECLAIMABLE_B, -long(PAGE_SIZE_ << order));
  kmm::__free_pages(k, page, order);
}

// kfree of anything but a slab object outside KFENCE: every case, in the kernel's order.
static __attribute__((noinline)) void kfree_general(Kernel& k, const void* p, uintptr_t caller) {
  if (is_kfence_address(k, p)) {
    kfence_free(k, p, "kfree");
    return;
  }
  if (!k.mem.is_direct(p)) {
    report_warn(k, "mm/slub.c", "kfree",
                strprintf("kfree(%p): object is not in the direct map", p));
    return;
  }
  struct page* page = k.mem.virt_to_page(p);
  if (page->flags & PG_tail) page = k.mem.pfn_to_page(page->compound_head);
  if (page->flags & PG_slab) {
    slab_free(k, page->slab.slab_cache, page, const_cast<void*>(p), caller);
    return;
  }
  if ((page->flags & PG_alloc) && page->owner == PageOwner::KmallocLarge) {
    free_large_kmalloc(k, page, p);
    return;
  }
  // Not a kmalloc allocation: the kernel dumps the page and leaves it alone.
  report_warn(k, "mm/slub.c", "free_large_kmalloc",
              dump_page(k, page, "Not a kmalloc allocation") +
                  strprintf("object pointer: 0x%llx", (unsigned long long)k.mem.kva(p)));
}

// kfree() in full (kfree_fast() hands over whatever it does not handle itself).
void kfree_internal(Kernel& k, const void* p, uintptr_t caller) {
  if (ZERO_OR_NULL_PTR(p)) return;
  if (__builtin_expect(!k.kfence && k.mem.is_direct(p), 1)) {
    struct page* page = k.mem.virt_to_page(p);
    if (page->flags & PG_tail) page = k.mem.pfn_to_page(page->compound_head);
    if (__builtin_expect(page->flags & PG_slab, 1))
      return slab_free_fast(k, page->slab.slab_cache, page, const_cast<void*>(p), caller);
  }
  kfree_general(k, p, caller);
}

size_t __ksize(Kernel& k, const void* p) {
  if (ZERO_OR_NULL_PTR(p)) return 0;
  if (is_kfence_address(k, p)) return kfence_ksize(k, p);
  if (!kasan_check_byte(k, p, "ksize")) return 0;
  if (!k.mem.is_direct(p)) {
    report_warn(k, "mm/slab_common.c", "__ksize", "ksize() of a pointer outside the direct map");
    return 0;
  }
  struct page* page = k.mem.virt_to_page(p);
  if (page->flags & PG_tail) page = k.mem.pfn_to_page(page->compound_head);
  if (page->flags & PG_slab) {
    kmem_cache* s = page->slab.slab_cache;
    // The caller may now use the whole bucket: stop checking the kmalloc red zone.
    if (slub_debug_orig_size(s)) set_orig_size(s, const_cast<void*>(p), s->object_size);
    return slab_ksize(s);
  }
  if ((page->flags & PG_alloc) && page->owner == PageOwner::KmallocLarge) {
    // WARN_ON(object != folio_address(folio)): kfree_sensitive() would zero a whole folio's
    // worth from the inner pointer, past the end of the allocation.
    if (p != k.mem.page_address(page)) {
      report_warn(k, "mm/slab_common.c", "__ksize",
                  "ksize() of a pointer inside a large kmalloc allocation, not its start");
      return 0;
    }
    return size_t(PAGE_SIZE_) << ((page->flags & PG_head) ? page->compound_order : 0);
  }
  report_warn(k, "mm/slab_common.c", "__ksize", "ksize() of a pointer that is not kmalloc'ed");
  return 0;
}

size_t kmalloc_size_roundup(Kernel& k, size_t size) {
  if (size == 0) return 0;
  if (size <= KMALLOC_MAX_CACHE_SIZE) return kmalloc_slab(k, size, GFP_KERNEL)->object_size;
  if (size > KMALLOC_MAX_SIZE) return size;
  return size_t(PAGE_SIZE_) << get_order(size);
}

// __do_krealloc (newest kernels): keep the object when the new size fits, re-zero or re-red-zone
// the tail; otherwise copy into a new kmalloc object.
void* __krealloc(Kernel& k, const void* p, size_t new_size, gfp_t flags, uintptr_t caller) {
  if (new_size == 0) {
    kfree_internal(k, p, caller);
    return ZERO_SIZE_PTR;
  }
  if (ZERO_OR_NULL_PTR(p)) return __kmalloc(k, new_size, flags, caller);
  if (!kasan_check_byte(k, p, "krealloc")) return nullptr; // a freed object: reported, NULL
  if (is_kfence_address(k, p)) {
    size_t kks = kfence_ksize(k, p);
    if (new_size <= kks) return const_cast<void*>(p);
    void* ret = __kmalloc(k, new_size, flags, caller);
    if (ret) {
      std::memcpy(ret, p, kks);
      kfree_internal(k, p, caller);
    }
    return ret;
  }
  size_t ks = 0, orig_size = 0;
  kmem_cache* s = nullptr;
  struct page* page = k.mem.is_direct(p) ? k.mem.virt_to_page(p) : nullptr;
  if (page && (page->flags & PG_tail)) page = k.mem.pfn_to_page(page->compound_head);
  if (page && (page->flags & PG_slab)) {
    s = page->slab.slab_cache;
    orig_size = slub_debug_orig_size(s) ? get_orig_size(s, const_cast<void*>(p)) : s->object_size;
    ks = s->object_size;
  } else if (page && (page->flags & PG_alloc) && page->owner == PageOwner::KmallocLarge) {
    ks = size_t(PAGE_SIZE_) << ((page->flags & PG_head) ? page->compound_order : 0);
  } else {
    report_warn(k, "mm/slab_common.c", "krealloc",
                "krealloc() of a pointer that is not kmalloc'ed");
    return nullptr;
  }
  if (new_size <= ks) {
    char* q = static_cast<char*>(const_cast<void*>(p));
    KasanMetadataAccess scope(q, ks); // kasan_disable_current(): the tail may be poisoned
    if ((flags & __GFP_ZERO) || k.params.init_on_alloc) {
      if (orig_size && orig_size < new_size) std::memset(q + orig_size, 0, new_size - orig_size);
      else std::memset(q + new_size, 0, ks - new_size);
    }
    if (s && slub_debug_orig_size(s)) {
      set_orig_size(s, q, unsigned(new_size));
      if ((s->flags & SLAB_RED_ZONE) && new_size < ks)
        std::memset(q + new_size, SLUB_RED_ACTIVE, ks - new_size);
    }
    kasan_krealloc(k, q, new_size, flags);
    return q;
  }
  void* ret = __kmalloc(k, new_size, flags, caller);
  if (ret) {
    KasanMetadataAccess scope(p, orig_size ? orig_size : ks); // the old bucket's red zone too
    std::memcpy(ret, p, orig_size ? orig_size : ks);
    kfree_internal(k, p, caller);
  }
  return ret;
}

} // namespace kmm
