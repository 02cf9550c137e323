// KASAN for slab memory (mm/kasan/common.c, generic.c, quarantine.c): the slab hooks of
// kasan_hooks.h, the quarantine that delays reuse of freed objects, and the description of the
// object around a buggy address.
//
// Shadow life of a slab object (Generic):
//   new slab             whole slab KASAN_SLAB_REDZONE (0xfc)
//   kmem_cache_alloc     [0, object_size) accessible (a partial last granule keeps its count)
//   kmalloc(size)        [0, size) accessible, [round_up(size, 8), object_size) 0xfc: the
//                        kmalloc slack is a red zone, and ksize() does not change that
//   free                 [0, object_size) KASAN_SLAB_FREE (0xfb), then into the quarantine;
//                        SLAB_TYPESAFE_BY_RCU objects stay accessible and skip the quarantine
//   quarantine full      the oldest objects go back to SLUB (their shadow stays 0xfb)
// kmalloc_large: the pages are unpoisoned by the page allocator; [round_up(size, 8), end of
// the pages) becomes KASAN_PAGE_REDZONE (0xfe).
#include <cstring>
#include <deque>
#include <mutex>

#include "bug.h"
#include "kasan.h"
#include "kasan_asan.h"
#include "kasan_hooks.h"
#include "kernel.h"
#include "kfence.h"
#include "page_alloc.h"
#include "slub.h"

namespace kmm {

static size_t round_up_granule(size_t n) {
  return (n + KASAN_GRANULE_SIZE - 1) & ~size_t(KASAN_GRANULE_SIZE - 1);
}

static struct page* slab_of(Kernel& k, const void* p) {
  struct page* page = compound_head(k, k.mem.virt_to_page(p));
  return (page->flags & PG_slab) ? page : nullptr;
}

// nearest_obj(): the start of the object slot whose user area holds p.
static char* nearest_obj(Kernel& k, kmem_cache* s, struct page* slab, const void* p) {
  char* base = static_cast<char*>(k.mem.page_address(slab));
  size_t off = static_cast<const char*>(p) - base;
  size_t idx = off / s->size;
  if (idx >= slab->slab.objects) idx = slab->slab.objects - 1;
  return base + idx * s->size + s->red_left_pad;
}

void kasan_poison_slab_hook(Kernel& k, kmem_cache* s, struct page* slab) {
  kasan_poison(k, k.mem.page_address(slab), PAGE_SIZE_ << s->order, KASAN_SLAB_REDZONE);
}

void kasan_unpoison_new_object_hook(Kernel& k, kmem_cache* s, void* obj) {
  kasan_unpoison(k, obj, s->object_size);
}

void kasan_poison_new_object_hook(Kernel& k, kmem_cache* s, void* obj) {
  kasan_poison(k, obj, round_up_granule(s->object_size), KASAN_SLAB_REDZONE);
}

void* kasan_slab_alloc_hook(Kernel& k, kmem_cache* s, void* obj, gfp_t, bool) {
  kasan_unpoison(k, obj, s->object_size);
  return obj;
}

void kasan_kmalloc_hook(Kernel& k, kmem_cache* s, const void* obj, size_t size, gfp_t) {
  if (is_kfence_address(k, obj)) return; // KFENCE guards its own objects
  kasan_unpoison(k, obj, size);
  size_t start = round_up_granule(size), end = round_up_granule(s->object_size);
  if (end > start)
    kasan_poison(k, static_cast<const char*>(obj) + start, end - start, KASAN_SLAB_REDZONE);
}

void kasan_krealloc_hook(Kernel& k, const void* obj, size_t size, gfp_t gfp) {
  if (is_kfence_address(k, obj)) return;
  struct page* slab = slab_of(k, obj);
  if (slab) {
    kasan_kmalloc_hook(k, slab->slab.slab_cache, obj, size, gfp);
    return;
  }
  struct page* head = compound_head(k, k.mem.virt_to_page(obj));
  unsigned order = (head->flags & PG_head) ? head->compound_order : 0;
  kasan_unpoison(k, obj, size);
  size_t start = round_up_granule(size), end = PAGE_SIZE_ << order;
  if (end > start)
    kasan_poison(k, static_cast<const char*>(obj) + start, end - start, KASAN_PAGE_REDZONE);
}

void kasan_kmalloc_large_hook(Kernel& k, const void* p, size_t size, gfp_t gfp) {
  kasan_krealloc_hook(k, p, size, gfp);
}

bool kasan_kfree_large_hook(Kernel& k, const void* p) {
  struct page* head = compound_head(k, k.mem.virt_to_page(p));
  if (p != k.mem.page_address(head)) {
    kasan_report_invalid_free(k, p, "invalid-free", "kfree");
    return false;
  }
  if (kasan_shadow(k, p) >= KASAN_GRANULE_SIZE) {
    kasan_report_invalid_free(k, p, "double-free", "kfree");
    return false;
  }
  return true;
}

// A quarantined object goes back to SLUB, which writes its free pointer and (slub_debug) its
// patterns into memory KASAN keeps poisoned: SLUB is not instrumented in the kernel either.
static void release(Kernel& k, kmem_cache* s, struct page* slab, void* obj) {
  KasanMetadataAccess scope(static_cast<char*>(obj) - s->red_left_pad, s->size);
  do_slab_free(k, s, slab, obj, 0);
}

// Releases the oldest quarantined objects until the quarantine fits its budget.
static void quarantine_reduce(Kernel& k, size_t budget) {
  KasanQuarantine& q = *k.kasan_quarantine;
  for (;;) {
    KasanQuarantine::Entry e;
    {
      std::lock_guard<std::mutex> guard(q.lock);
      if (q.bytes <= budget || q.fifo.empty()) return;
      e = q.fifo.front();
      q.fifo.pop_front();
      q.bytes -= e.cache->size;
    }
    struct page* slab = slab_of(k, e.object);
    if (slab) release(k, e.cache, slab, e.object);
  }
}

static size_t quarantine_budget(Kernel& k) { return k.mem.bytes / 32; }

bool kasan_slab_free_hook(Kernel& k, kmem_cache* s, void* obj, bool init) {
  struct page* slab = slab_of(k, obj);
  // check_slab_allocation(): a pointer inside an object is an invalid free; an object whose
  // first byte is already poisoned is a double free. Either way SLUB must not free it.
  if (!slab || nearest_obj(k, s, slab, obj) != obj) {
    kasan_report_invalid_free(k, obj, "invalid-free", "kmem_cache_free");
    return true;
  }
  if (kasan_shadow(k, obj) >= KASAN_GRANULE_SIZE) {
    kasan_report_invalid_free(k, obj, "double-free", "kmem_cache_free");
    return true;
  }
  // Objects of SLAB_TYPESAFE_BY_RCU caches may be used until a grace period passes: they are
  // neither poisoned nor delayed.
  if (s->flags & SLAB_TYPESAFE_BY_RCU) return false;
  // slab_free_hook(): init_on_free wipes the object now, before the quarantine delays its reuse.
  if (init) { // the whole object, past a kmalloc request into its red zone, as SLUB does
    KasanMetadataAccess scope(obj, s->object_size);
    std::memset(obj, 0, s->object_size);
  }
  kasan_poison(k, obj, round_up_granule(s->object_size), KASAN_SLAB_FREE);
  KasanQuarantine& q = *k.kasan_quarantine;
  {
    std::lock_guard<std::mutex> guard(q.lock);
    q.fifo.push_back({s, obj});
    q.bytes += s->size;
  }
  quarantine_reduce(k, quarantine_budget(k));
  return true;
}

bool kasan_check_byte_hook(Kernel& k, const void* p, const char* fn) {
  return kasan_check(k, p, 1, false, fn);
}

// Empties the quarantine (kmem_cache_shrink, kmem_cache_destroy and the shrinker call this).
void kasan_quarantine_flush(Kernel& k) {
  if (k.kasan_quarantine) quarantine_reduce(k, 0);
}

// Drops the quarantined objects of one cache (kmem_cache_destroy), as kasan_cache_shutdown.
void kasan_quarantine_remove_cache(Kernel& k, kmem_cache* s) {
  if (!k.kasan_quarantine) return;
  KasanQuarantine& q = *k.kasan_quarantine;
  std::deque<KasanQuarantine::Entry> mine;
  {
    std::lock_guard<std::mutex> guard(q.lock);
    for (auto it = q.fifo.begin(); it != q.fifo.end();) {
      if (it->cache == s) {
        mine.push_back(*it);
        q.bytes -= s->size;
        it = q.fifo.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& e : mine)
    if (struct page* slab = slab_of(k, e.object)) release(k, s, slab, e.object);
}

size_t kasan_quarantine_bytes(Kernel& k) {
  if (!k.kasan_quarantine) return 0;
  std::lock_guard<std::mutex> guard(k.kasan_quarantine->lock);
  return k.kasan_quarantine->bytes;
}

// describe_object_addr(): where the address lies relative to the object around it.
static std::string describe_slab_object(Kernel& k, const void* addr, const char* bug_type,
                                        std::string* cache, int64_t* offset) {
  if (!k.mem.is_direct(addr) || is_kfence_address(k, addr)) return "";
  struct page* slab = slab_of(k, addr);
  if (!slab) return "";
  kmem_cache* s = slab->slab.slab_cache;
  char* obj = nearest_obj(k, s, slab, addr);
  // kasan_get_alloc_size(): the accessible prefix, from the shadow; a freed object counts whole.
  size_t alloc_size = 0;
  for (size_t off = 0; off < s->object_size; off += KASAN_GRANULE_SIZE) {
    uint8_t v = kasan_shadow(k, obj + off);
    if (v == 0) {
      alloc_size += KASAN_GRANULE_SIZE;
      continue;
    }
    if (v < KASAN_GRANULE_SIZE) alloc_size += v;
    break;
  }
  if (alloc_size == 0 || alloc_size > s->object_size) alloc_size = s->object_size;
  const char* a = static_cast<const char*>(addr);
  const char* rel_type;
  long rel_bytes;
  if (a < obj) {
    rel_type = "to the left";
    rel_bytes = obj - a;
  } else if (a >= obj + alloc_size) {
    rel_type = "to the right";
    rel_bytes = a - (obj + alloc_size);
  } else {
    rel_type = "inside";
    rel_bytes = a - obj;
  }
  *cache = s->name;
  *offset = a - obj;
  std::string state;
  if (std::string(bug_type) == "slab-out-of-bounds") state = "allocated ";
  else if (std::string(bug_type) == "slab-use-after-free") state = "freed ";
  std::string t = strprintf("The buggy address belongs to the object at %016llx\n which belongs to "
                            "the cache %s of size %u\n",
                            (unsigned long long)k.mem.kva(obj), s->name.c_str(), s->object_size);
  t += strprintf(
      "The buggy address is located %ld bytes %s of\n %s%zu-byte region [%016llx, %016llx)\n",
      rel_bytes, rel_type, state.c_str(), alloc_size, (unsigned long long)k.mem.kva(obj),
      (unsigned long long)k.mem.kva(obj + alloc_size));
  return t;
}

void kasan_slab_init(Kernel& k) {
  if (!k.kasan) return;
  k.kasan_quarantine = std::make_unique<KasanQuarantine>();
  kasan_describe_slab_object = describe_slab_object;
}

} // namespace kmm
