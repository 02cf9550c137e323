// SLUB: the slab allocator (mm/slub.c), the per-CPU fast paths, the node partial lists, slab
// creation and discard, shrink and shutdown.
//
// Design (as the kernel's slub.c):
//  - A slab is one page block (order s->order, __GFP_COMP) holding s->objects slots of s->size
//    bytes. Free objects are chained through a free pointer at object + s->offset, stored
//    hardened: stored = next ^ s->random ^ bswap64(address of the pointer), so a stray write or a
//    leaked pointer does not give a usable freelist. The chain order of a new slab is shuffled
//    (freelist randomisation) from a per-cache permutation; both are seeded from kmm.seed.
//  - Each CPU owns at most one slab per cache (the cpu slab, "frozen"). Its CPU freelist
//    (c->freelist) is popped and pushed by that CPU only, without any lock or atomic: that is the
//    fast path of kmem_cache_alloc and of kmem_cache_free when the object is in the cpu slab.
//  - A free from any other CPU, or of an object whose slab is not the cpu slab, goes to the
//    slab's own freelist (slab->freelist) under the node's list_lock. The owning CPU takes that
//    list over (again under list_lock) when its CPU freelist runs dry. The kernel does this step
//    with a cmpxchg on (freelist, counters); kmm uses the node lock, which keeps the fast path
//    lock-free and the slow path simple.
//  - Slow path (___slab_alloc): refill from the cpu slab's remote frees; else deactivate it and
//    take a slab from the node partial list; else allocate a new slab from the page allocator.
//  - Deactivation puts the CPU freelist back into the slab and the slab on the partial list (or
//    the full list, or discards it when it is empty and the node has min_partial slabs).
//  - Debug caches (any slub_debug flag) never use cpu slabs: every alloc and free runs under
//    list_lock with the checks of slub_debug.cpp, as the kernel's debug paths do.
//  - SLAB_TYPESAFE_BY_RCU caches give their slabs back to the page allocator only after an RCU
//    grace period (rcu.cpp).
//
// Lock order: slab_mutex (cache list, slab_common.cpp) -> node list_lock -> zone->lock (page
// allocator). list_lock is never held across a page allocation or a constructor call. The fast
// path takes no lock.
#include "slub.h"

#include <algorithm>
#include <cstring>

#include "bug.h"
#include "kasan_asan.h"
#include "kasan_hooks.h"
#include "kernel.h"
#include "kfence.h"
#include "page_alloc.h"
#include "pfn_list.h"
#include "rcu.h"
#include "slub_fast.h"

namespace kmm {

// ---- addresses and free pointers ----------------------------------------------------------------

void* slab_address(Kernel& k, const struct page* slab) { return k.mem.page_address(slab); }
void* fixup_red_left(const kmem_cache* s, void* slot) {
  return static_cast<char*>(slot) + s->red_left_pad;
}

struct page* virt_to_slab(Kernel& k, const void* p) {
  return slab_of(k, p);
}

void* get_freepointer(const kmem_cache* s, void* obj) { return freepointer_load(s, obj); }
void set_freepointer(const kmem_cache* s, void* obj, void* fp) { freepointer_store(s, obj, fp); }

unsigned obj_to_index(const kmem_cache* s, const struct page* slab, Kernel& k, const void* obj) {
  uintptr_t base = reinterpret_cast<uintptr_t>(slab_address(k, slab));
  return index_of_offset(s, reinterpret_cast<uintptr_t>(obj) - s->red_left_pad - base);
}

bool check_valid_pointer(Kernel& k, const kmem_cache* s, const struct page* slab, const void* p) {
  if (!p) return true;
  uintptr_t base = reinterpret_cast<uintptr_t>(slab_address(k, slab));
  uintptr_t o = reinterpret_cast<uintptr_t>(p) - s->red_left_pad;
  if (o < base || o >= base + uintptr_t(slab->slab.objects) * s->size) return false;
  return (o - base) % s->size == 0;
}

unsigned slab_ksize(const kmem_cache* s) {
  if (s->flags & (SLAB_RED_ZONE | SLAB_POISON)) return s->object_size;
  if (s->flags & (SLAB_TYPESAFE_BY_RCU | SLAB_STORE_USER)) return s->inuse;
  return s->size;
}

// ---- geometry -----------------------------------------------------------------------------------

static unsigned fls(unsigned x) { return x ? 32 - __builtin_clz(x) : 0; }
static unsigned order_objects(unsigned order, unsigned size) {
  return unsigned((PAGE_SIZE_ << order) / size);
}

// calc_slab_order: the smallest order in [min_order, max_order] whose leftover is at most
// 1/fract of the slab.
static unsigned calc_slab_order(unsigned size, unsigned min_order, unsigned max_order,
                                unsigned fract) {
  unsigned order = min_order;
  for (; order <= max_order; order++) {
    unsigned long slab_size = PAGE_SIZE_ << order;
    if (slab_size % size <= slab_size / fract) break;
  }
  return order;
}

// calculate_order (6.8+). min_objects = 4 * (fls(nr_cpus) + 1): 16 on 4 CPUs, 32 on 64.
static int calculate_order(Kernel& k, unsigned size) {
  SlabState& st = *k.slab;
  unsigned min_objects = st.min_objects;
  if (!min_objects) min_objects = 4 * (fls(k.nr_cpus) + 1);
  unsigned max_objects = std::max(order_objects(st.max_order, size), 1u);
  min_objects = std::min(min_objects, max_objects);
  unsigned min_order = std::max(st.min_order, get_order(uint64_t(min_objects) * size));
  if (order_objects(min_order, size) > MAX_OBJS_PER_PAGE)
    return int(get_order(uint64_t(size) * MAX_OBJS_PER_PAGE)) - 1;
  for (unsigned fraction = 16; fraction > 1; fraction /= 2) {
    unsigned order = calc_slab_order(size, min_order, st.max_order, fraction);
    if (order <= st.max_order) return int(order);
  }
  unsigned order = get_order(size);
  return order <= MAX_PAGE_ORDER_ ? int(order) : -1;
}

// calculate_sizes: the slot layout (see slub.h for a worked example) and the slab order.
int calculate_sizes(Kernel& k, kmem_cache* s) {
  slab_flags_t flags = s->flags;
  unsigned size = s->object_size;
  size = (size + 7) & ~7u;
  if ((flags & SLAB_POISON) && !(flags & SLAB_TYPESAFE_BY_RCU) && !s->ctor)
    s->flags |= __OBJECT_POISON;
  else s->flags &= ~__OBJECT_POISON;
  // A right red zone needs room after the object: one word if the object fills its last word.
  if ((flags & SLAB_RED_ZONE) && size == s->object_size) size += sizeof(void*);
  s->inuse = size;
  bool outside =
      (flags & (SLAB_TYPESAFE_BY_RCU | SLAB_POISON)) || s->ctor ||
      ((flags & SLAB_RED_ZONE) && (s->object_size < sizeof(void*) || slub_debug_orig_size(s)));
  if (outside) {
    s->offset = size; // after the object: it must not overwrite live or poisoned data
    size += sizeof(void*);
  } else {
    s->offset = (s->object_size / 2) & ~7u; // middle of the object, away from small overflows
  }
  if (flags & SLAB_STORE_USER) {
    size += 2 * sizeof(track);
    if (slub_debug_orig_size(s)) size += sizeof(unsigned long);
  }
  s->red_left_pad = 0;
  if (flags & SLAB_RED_ZONE) {
    size += sizeof(void*); // catch overwrites from the previous object
    s->red_left_pad = (sizeof(void*) + s->align - 1) / s->align * s->align;
    size += s->red_left_pad;
  }
  size = (size + s->align - 1) / s->align * s->align;
  s->size = size;
  s->reciprocal = uint32_t((uint64_t(1) << 32) / size + ((uint64_t(1) << 32) % size != 0));
  int order = calculate_order(k, size);
  if (order < 0) return -22;
  s->order = unsigned(order);
  s->objects = std::min(order_objects(s->order, size), MAX_OBJS_PER_PAGE);
  s->min_order = get_order(size);
  s->min_objects = std::min(order_objects(s->min_order, size), MAX_OBJS_PER_PAGE);
  s->allocflags = 0;
  if (s->order) s->allocflags |= __GFP_COMP;
  if (flags & SLAB_CACHE_DMA) s->allocflags |= GFP_DMA;
  if (flags & SLAB_CACHE_DMA32) s->allocflags |= GFP_DMA32;
  if (flags & SLAB_RECLAIM_ACCOUNT) s->allocflags |= __GFP_RECLAIMABLE;
  // set_min_partial(ilog2(size) / 2), clamped to [MIN_PARTIAL, MAX_PARTIAL].
  s->min_partial = std::clamp((fls(size) - 1) / 2, MIN_PARTIAL, MAX_PARTIAL);
  return 0;
}

// ---- slab pages -----------------------------------------------------------------------------

static uint64_t slab_random(Kernel& k) {
  // splitmix64 over an atomic counter: slabs are created on several CPUs at once.
  uint64_t z = k.slab->rng.fetch_add(0x9e3779b97f4a7c15ull, std::memory_order_relaxed) +
               0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// GFP_SLAB_BUG_MASK: a slab cannot live in highmem, and kmalloc decides DMA32 by the cache.
static gfp_t kmalloc_fix_flags(Kernel& k, gfp_t flags) {
  gfp_t invalid = flags & (__GFP_DMA32 | __GFP_HIGHMEM | ~__GFP_BITS_MASK);
  gfp_t fixed = flags & ~invalid;
  report_warn(k, "mm/slub.c", "kmalloc_fix_flags",
              strprintf("Unexpected gfp: %#x (%s). Fixing up to gfp: %#x (%s). Fix your code!",
                        invalid, gfp_names(invalid).c_str(), fixed, gfp_names(fixed).c_str()));
  return fixed;
}

inline constexpr gfp_t GFP_RECLAIM_MASK = __GFP_RECLAIM | __GFP_HIGH | __GFP_IO | __GFP_FS |
                                          __GFP_NOWARN | __GFP_RETRY_MAYFAIL | __GFP_NOFAIL |
                                          __GFP_NORETRY | __GFP_MEMALLOC | __GFP_NOMEMALLOC;
inline constexpr gfp_t GFP_CONSTRAINT_MASK = __GFP_HARDWALL | __GFP_THISNODE;

static void shuffle_freelist(Kernel& k, kmem_cache* s, struct page* slab, char* base) {
  unsigned count = slab->slab.objects;
  unsigned n = unsigned(s->random_seq.size());
  unsigned pos = unsigned(slab_random(k) % n);
  void* first = nullptr;
  void* prev = nullptr;
  for (unsigned seen = 0, i = 0; i < n && seen < count; i++) {
    unsigned idx = s->random_seq[(pos + i) % n];
    if (idx >= count) continue; // a min-order slab holds fewer objects
    void* obj = fixup_red_left(s, base + size_t(idx) * s->size);
    if (prev) set_freepointer(s, prev, obj);
    else first = obj;
    prev = obj;
    seen++;
  }
  set_freepointer(s, prev, nullptr);
  slab->slab.freelist = first;
}

// allocate_slab(): a new slab with every object free (freelist built, ctor run, debug patterns
// set). Called without locks.
static struct page* new_slab(Kernel& k, kmem_cache* s, gfp_t flags) {
  if (flags & (__GFP_DMA32 | __GFP_HIGHMEM | ~__GFP_BITS_MASK)) flags = kmalloc_fix_flags(k, flags);
  flags &= GFP_RECLAIM_MASK | GFP_CONSTRAINT_MASK;
  flags |= s->allocflags;
  gfp_t first = (flags | __GFP_NOWARN | __GFP_NORETRY) & ~__GFP_NOFAIL;
  if ((first & __GFP_DIRECT_RECLAIM) && s->order > s->min_order)
    first = (first | __GFP_NOMEMALLOC) & ~__GFP_RECLAIM;
  unsigned order = s->order, objects = s->objects;
  struct page* slab = __alloc_pages(k, first, order, PageOwner::Slab);
  if (!slab) {
    order = s->min_order;
    objects = s->min_objects;
    gfp_t second = flags;
    if (order) second |= __GFP_COMP;
    else second &= ~__GFP_COMP;
    slab = __alloc_pages(k, second, order, PageOwner::Slab);
    if (!slab) return nullptr;
  }
  slab->flags |= PG_slab;
  slab->slab.slab_cache = s;
  slab->slab.freelist = nullptr;
  slab->slab.inuse = 0;
  slab->slab.objects = static_cast<uint16_t>(objects);
  slab->slab.frozen = 0;
  slab->slab.slab_cpu = 0;
  k.mod_node_page_state((s->flags & SLAB_RECLAIM_ACCOUNT) ? NR_SLAB_RECLAIMABLE_B
                                                          : NR_SLAB_UNRECLAIMABLE_B,
                        long(PAGE_SIZE_ << order));
  char* base = static_cast<char*>(slab_address(k, slab));
  kasan_poison_slab(k, s, slab);
  KasanMetadataAccess slab_setup(base, PAGE_SIZE_ << order); // debug patterns in the red zones
  if (kmem_cache_debug(s)) setup_slab_debug(k, s, slab);
  for (unsigned i = 0; i < objects; i++) {
    void* obj = fixup_red_left(s, base + size_t(i) * s->size);
    if (kmem_cache_debug(s)) {
      init_object(s, obj, SLUB_RED_INACTIVE);
      init_tracking(s, obj);
    }
    if (s->ctor) {
      kasan_unpoison_new_object(k, s, obj);
      s->ctor(obj);
      kasan_poison_new_object(k, s, obj);
    }
  }
  if (objects >= 2 && !s->random_seq.empty()) {
    shuffle_freelist(k, s, slab, base);
  } else {
    for (unsigned i = 0; i < objects; i++) {
      void* obj = fixup_red_left(s, base + size_t(i) * s->size);
      void* next = i + 1 < objects ? fixup_red_left(s, base + size_t(i + 1) * s->size) : nullptr;
      set_freepointer(s, obj, next);
    }
    slab->slab.freelist = fixup_red_left(s, base);
  }
  s->node.nr_slabs.fetch_add(1, std::memory_order_relaxed);
  s->node.total_objects.fetch_add(objects, std::memory_order_relaxed);
  return slab;
}

static void free_slab_pages(Kernel& k, kmem_cache* s, struct page* slab) {
  unsigned order = (slab->flags & PG_head) ? slab->compound_order : 0;
  k.mod_node_page_state((s->flags & SLAB_RECLAIM_ACCOUNT) ? NR_SLAB_RECLAIMABLE_B
                                                          : NR_SLAB_UNRECLAIMABLE_B,
                        -long(PAGE_SIZE_ << order));
  slab->flags &= ~PG_slab;
  std::memset(slab->words, 0, sizeof slab->words);
  slab->lru_next = slab->lru_prev = 0;
  kmm::__free_pages(k, slab, order);
}

static void rcu_free_slab(Kernel& k, void* arg) {
  auto* slab = static_cast<struct page*>(arg);
  free_slab_pages(k, slab->slab.slab_cache, slab);
}

// discard_slab: the slab is on no list and holds no objects.
void discard_slab(Kernel& k, kmem_cache* s, struct page* slab) {
  s->node.nr_slabs.fetch_sub(1, std::memory_order_relaxed);
  s->node.total_objects.fetch_sub(slab->slab.objects, std::memory_order_relaxed);
  if (s->flags & SLAB_TYPESAFE_BY_RCU) {
    slab->slab.frozen = 1;
    slab->slab.slab_cpu = 0xfffe;      // waiting for a grace period (validate knows this mark)
    rcu_defer(k, rcu_free_slab, slab); // readers may still look at the objects' types
    return;
  }
  free_slab_pages(k, s, slab);
}

// ---- node lists (callers hold list_lock) --------------------------------------------------------

static inline uint32_t pfn_of(Kernel& k, struct page* slab) {
  return static_cast<uint32_t>(k.mem.page_to_pfn(slab));
}
static void add_partial_locked(Kernel& k, kmem_cache_node& n, struct page* slab, bool tail) {
  pfn_list_add(k.mem, n.partial, pfn_of(k, slab), tail);
  n.nr_partial++;
}
static void remove_partial_locked(Kernel& k, kmem_cache_node& n, struct page* slab) {
  pfn_list_del(k.mem, n.partial, pfn_of(k, slab));
  n.nr_partial--;
}
static void add_full_locked(Kernel& k, kmem_cache_node& n, struct page* slab) {
  pfn_list_add(k.mem, n.full, pfn_of(k, slab));
}
static void remove_full_locked(Kernel& k, kmem_cache_node& n, struct page* slab) {
  pfn_list_del(k.mem, n.full, pfn_of(k, slab));
}

// ---- the per-CPU paths --------------------------------------------------------------------------

// deactivate_slab: give the cpu slab back to the node, with the objects of the CPU freelist.
static void deactivate_slab(Kernel& k, kmem_cache* s, kmem_cache_cpu* c) {
  struct page* slab = c->slab;
  void* freelist = c->freelist;
  c->slab = nullptr;
  c->freelist = nullptr;
  if (!slab) return;
  // Find the tail of the CPU freelist (outside the lock: only this CPU sees it).
  unsigned n = 0;
  void* tail = nullptr;
  for (void* p = freelist; p; p = get_freepointer(s, p)) {
    tail = p;
    if (++n > slab->slab.objects) break; // corrupted chain: stop, validate reports it
  }
  kmem_cache_node& node = s->node;
  bool discard = false;
  node.list_lock.lock();
  if (tail) {
    set_freepointer(s, tail, slab->slab.freelist);
    slab->slab.freelist = freelist;
    slab->slab.inuse = static_cast<uint16_t>(slab->slab.inuse - n);
  }
  slab->slab.frozen = 0;
  slab->slab.slab_cpu = 0;
  if (slab->slab.inuse == 0 && node.nr_partial >= s->min_partial) discard = true;
  else if (slab->slab.freelist) add_partial_locked(k, node, slab, /*tail=*/true);
  else add_full_locked(k, node, slab);
  node.list_lock.unlock();
  if (discard) discard_slab(k, s, slab);
}

// Takes the whole freelist of a slab for a CPU (the slab becomes or stays frozen to it).
static void* freeze_slab_locked(kmem_cache* s, struct page* slab, unsigned cpu) {
  void* freelist = slab->slab.freelist;
  slab->slab.freelist = nullptr;
  slab->slab.inuse = slab->slab.objects;
  slab->slab.frozen = 1;
  slab->slab.slab_cpu = static_cast<uint16_t>(cpu);
  return freelist;
}

static void slab_out_of_memory(Kernel& k, kmem_cache* s, gfp_t gfp) {
  if (gfp & __GFP_NOWARN) return;
  std::string t = strprintf("SLUB: Unable to allocate memory on node -1, gfp=%#x(%s)\n", gfp,
                            gfp_names(gfp).c_str());
  t +=
      strprintf("  cache: %s, object size: %u, buffer size: %u, default order: %u, min order: %u\n",
                s->name.c_str(), s->object_size, s->size, s->order, s->min_order);
  t += strprintf("  node 0: slabs: %lu, objs: %lu, free: -\n", s->node.nr_slabs.load(),
                 s->node.total_objects.load());
  k.log.printk(t);
}

// ___slab_alloc: the CPU freelist is empty.
static void* slab_alloc_slowpath(Kernel& k, kmem_cache* s, kmem_cache_cpu* c, unsigned cpu,
                                 gfp_t gfp) {
  kmem_cache_node& n = s->node;
  if (c->slab) {
    n.list_lock.lock();
    void* freelist = freeze_slab_locked(s, c->slab, cpu); // remote frees, if any
    n.list_lock.unlock();
    if (freelist) {
      c->freelist = freepointer_load(s, freelist);
      return freelist;
    }
    deactivate_slab(k, s, c);
  }
  n.list_lock.lock();
  if (n.nr_partial) {
    struct page* slab = k.mem.pfn_to_page(n.partial.head);
    remove_partial_locked(k, n, slab);
    void* freelist = freeze_slab_locked(s, slab, cpu);
    n.list_lock.unlock();
    c->slab = slab;
    c->freelist = freepointer_load(s, freelist);
    return freelist;
  }
  n.list_lock.unlock();
  struct page* slab = new_slab(k, s, gfp);
  if (!slab) {
    slab_out_of_memory(k, s, gfp);
    return nullptr;
  }
  // A constructor may have allocated from this cache on this CPU: keep that cpu slab's objects.
  if (c->slab) deactivate_slab(k, s, c);
  void* freelist = freeze_slab_locked(s, slab, cpu);
  c->slab = slab;
  c->freelist = freepointer_load(s, freelist);
  return freelist;
}

// Debug caches: one object at a time from the partial list, with alloc_debug_processing.
static void* slab_alloc_debug(Kernel& k, kmem_cache* s, gfp_t gfp, unsigned orig_size,
                              uintptr_t caller) {
  kmem_cache_node& n = s->node;
  for (;;) {
    n.list_lock.lock();
    struct page* slab = n.nr_partial ? k.mem.pfn_to_page(n.partial.head) : nullptr;
    if (!slab) {
      n.list_lock.unlock();
      struct page* fresh = new_slab(k, s, gfp);
      if (!fresh) {
        slab_out_of_memory(k, s, gfp);
        return nullptr;
      }
      n.list_lock.lock();
      add_partial_locked(k, n, fresh, false);
      slab = fresh;
    }
    void* obj = slab->slab.freelist;
    bool ok = true;
    if (!check_valid_pointer(k, s, slab, obj) || !obj) {
      ok = false;
    } else {
      slab->slab.freelist = get_freepointer(s, obj);
      slab->slab.inuse++;
    }
    if (ok) ok = alloc_debug_processing(k, s, slab, obj, orig_size, caller);
    else if (obj)
      report_slab_object_err(k, s, slab, obj, "Freelist Pointer check fails",
                             "Marking all objects used");
    if (!ok) {
      // The slab is disabled: all objects marked used, off the partial list, never used again.
      slab->slab.freelist = nullptr;
      slab->slab.inuse = slab->slab.objects;
      slab->slab.frozen = 1;
      slab->slab.slab_cpu = 0xffff;
      remove_partial_locked(k, n, slab);
      add_full_locked(k, n, slab);
      n.list_lock.unlock();
      continue;
    }
    if (!slab->slab.freelist) {
      remove_partial_locked(k, n, slab);
      add_full_locked(k, n, slab);
    }
    n.list_lock.unlock();
    return obj;
  }
}

static void report_naive_double_free(Kernel& k, kmem_cache* s, struct page* slab, void* obj) {
  // set_freepointer()'s BUG_ON(object == fp) under CONFIG_SLAB_FREELIST_HARDENED; reported
  // instead of crashing, and the object is not freed again.
  report_slab_object_err(
      k, s, slab, obj, "Object already free",
      strprintf("Object at 0x%llx not freed", (unsigned long long)k.mem.kva(obj)));
}

// The general paths. The fast paths (slub_fast.h) hand whatever they do not handle themselves to
// these, untouched; so these do every check again from the start.

// slab_alloc_node() in full: might_alloc(), KFENCE sampling, debug caches, the CPU freelist or
// the slow path, zeroing and the KASAN hook.
__attribute__((noinline)) void* slab_alloc_general(Kernel& k, kmem_cache* s, gfp_t gfp,
                                                   size_t orig_size, uintptr_t caller,
                                                   unsigned cpu) {
  if ((gfp & __GFP_DIRECT_RECLAIM) && cpu_in_atomic(k.cpus[cpu]))
    report_sleep_in_atomic(k, "include/linux/sched/mm.h");
  void* obj;
  if (k.kfence) { // a sampled allocation (kfence_alloc)
    size_t want = orig_size ? orig_size : s->object_size;
    if ((obj = kfence_alloc(k, s->name.c_str(), want, s->align, gfp))) {
      if (s->ctor) s->ctor(obj);
      return obj;
    }
  }
  if (kmem_cache_debug(s)) {
    obj = slab_alloc_debug(k, s, gfp, unsigned(orig_size), caller);
  } else {
    kmem_cache_cpu* c = &s->cpu_slab[cpu];
    obj = c->freelist;
    if (obj) {
      c->freelist = freepointer_load(s, obj);
    } else {
      obj = slab_alloc_slowpath(k, s, c, cpu, gfp);
    }
  }
  if (!obj) return nullptr;
  bool init = (gfp & __GFP_ZERO) || s->init_on_alloc;
  obj = kasan_slab_alloc(k, s, obj, gfp, init);
  if (s->init_on_free && !freeptr_outside_object(s)) // maybe_wipe_obj_freeptr(): the word SLUB
    std::memset(static_cast<char*>(obj) + s->offset, 0, sizeof(void*)); // wrote after the wipe
  if (init) {
    // Zero only what the caller asked for in a kmalloc cache with a tracked size, so the kmalloc
    // red zone after it keeps 0xcc.
    unsigned zero = (slub_debug_orig_size(s) && orig_size) ? unsigned(orig_size) : s->object_size;
    std::memset(obj, 0, zero);
  }
  return obj;
}

void* slab_alloc(Kernel& k, kmem_cache* s, gfp_t gfp, size_t orig_size, uintptr_t caller) {
  return slab_alloc_fast(k, s, gfp, orig_size, caller);
}

// __slab_free: the object's slab is not this CPU's cpu slab.
static void slab_free_slowpath(Kernel& k, kmem_cache* s, struct page* slab, void* obj) {
  kmem_cache_node& n = s->node;
  n.list_lock.lock();
  void* prior = slab->slab.freelist;
  if (__builtin_expect(prior == obj, 0)) {
    n.list_lock.unlock();
    report_naive_double_free(k, s, slab, obj);
    return;
  }
  set_freepointer(s, obj, prior);
  slab->slab.freelist = obj;
  slab->slab.inuse--;
  if (slab->slab.frozen) { // another CPU's cpu slab (or a disabled one): it finds the object later
    n.list_lock.unlock();
    return;
  }
  bool was_full = prior == nullptr;
  if (slab->slab.inuse == 0 && n.nr_partial >= s->min_partial) {
    if (was_full) remove_full_locked(k, n, slab);
    else remove_partial_locked(k, n, slab);
    n.list_lock.unlock();
    discard_slab(k, s, slab);
    return;
  }
  if (was_full) {
    remove_full_locked(k, n, slab);
    add_partial_locked(k, n, slab, /*tail=*/true);
  }
  n.list_lock.unlock();
}

static void slab_free_debug(Kernel& k, kmem_cache* s, struct page* slab, void* obj,
                            uintptr_t caller) {
  kmem_cache_node& n = s->node;
  n.list_lock.lock();
  if (!free_debug_processing(k, s, slab, obj, caller)) {
    n.list_lock.unlock();
    return; // leaked on purpose: freeing a bad object would corrupt the slab
  }
  void* prior = slab->slab.freelist;
  if (prior == obj) {
    n.list_lock.unlock();
    report_naive_double_free(k, s, slab, obj);
    return;
  }
  set_freepointer(s, obj, prior);
  slab->slab.freelist = obj;
  bool was_full = prior == nullptr;
  slab->slab.inuse--;
  if (slab->slab.frozen) { // disabled after a failed check
    n.list_lock.unlock();
    return;
  }
  if (slab->slab.inuse == 0 && n.nr_partial >= s->min_partial) {
    if (was_full) remove_full_locked(k, n, slab);
    else remove_partial_locked(k, n, slab);
    n.list_lock.unlock();
    discard_slab(k, s, slab);
    return;
  }
  if (was_full) {
    remove_full_locked(k, n, slab);
    add_partial_locked(k, n, slab, true);
  }
  n.list_lock.unlock();
}

static __attribute__((noinline)) void report_invalid_object_pointer(Kernel& k, kmem_cache* s,
                                                                    struct page* slab, void* obj) {
  report_slab_err(k, s, slab,
                  strprintf("Invalid object pointer 0x%llx", (unsigned long long)k.mem.kva(obj)),
                  strprintf("Object at 0x%llx not freed", (unsigned long long)k.mem.kva(obj)));
}

// do_slab_free() in full: the pointer check, init_on_free, debug caches, the CPU freelist when
// the object is in the cpu slab, else the slab's own freelist under list_lock.
static inline void do_slab_free_inline(Kernel& k, kmem_cache* s, struct page* slab, void* obj,
                                       uintptr_t caller) {
  if (__builtin_expect(!object_pointer_ok(k, s, slab, obj), 0)) {
    report_invalid_object_pointer(k, s, slab, obj);
    return;
  }
  if (__builtin_expect(s->init_on_free, 0)) std::memset(obj, 0, s->object_size);
  if (__builtin_expect(kmem_cache_debug(s), 0)) {
    slab_free_debug(k, s, slab, obj, caller);
    return;
  }
  kmem_cache_cpu* c = &s->cpu_slab[k.cpu_id()];
  void* head = c->freelist;
  if (__builtin_expect(slab == c->slab && obj != head, 1)) {
    freepointer_store(s, obj, head);
    c->freelist = obj;
    return;
  }
  if (slab == c->slab) {
    report_naive_double_free(k, s, slab, obj);
    return;
  }
  slab_free_slowpath(k, s, slab, obj);
}

// slab_free() in full: slab_free_hook() first - KASAN sees the free (double/invalid free, then
// the quarantine) - then do_slab_free().
__attribute__((noinline)) void slab_free_general(Kernel& k, kmem_cache* s, struct page* slab,
                                                 void* obj, uintptr_t caller) {
  if (kasan_slab_free(k, s, obj, s->init_on_free)) return;
  do_slab_free_inline(k, s, slab, obj, caller);
}

void slab_free(Kernel& k, kmem_cache* s, struct page* slab, void* obj, uintptr_t caller) {
  slab_free_fast(k, s, slab, obj, caller);
}

void do_slab_free(Kernel& k, kmem_cache* s, struct page* slab, void* obj, uintptr_t caller) {
  do_slab_free_inline(k, s, slab, obj, caller);
}

// kmem_cache_free with cache_from_obj(): the object must be in a slab of `s`.
__attribute__((noinline)) void kmem_cache_free_general(Kernel& k, kmem_cache* s, void* obj,
                                                       uintptr_t caller) {
  if (is_kfence_address(k, obj)) {
    kfence_free(k, obj, "kmem_cache_free");
    return;
  }
  struct page* slab = slab_of(k, obj);
  if (__builtin_expect(!slab, 0)) {
    report_slab_not_slab(k, "kmem_cache_free", s, obj);
    return;
  }
  kmem_cache* real = slab->slab.slab_cache;
  if (__builtin_expect(real != s, 0)) {
    report_slab_wrong_cache(k, s, real, obj);
    return; // leaked, as the kernel does
  }
  slab_free_general(k, s, slab, obj, caller);
}

void kmem_cache_free_checked(Kernel& k, kmem_cache* s, void* obj, uintptr_t caller) {
  kmem_cache_free_fast(k, s, obj, caller);
}

// ---- flush, shrink, shutdown --------------------------------------------------------------------

void flush_all(Kernel& k, kmem_cache* s) {
  for (unsigned cpu = 0; cpu < k.nr_cpu_slots(); cpu++)
    if (s->cpu_slab[cpu].slab) deactivate_slab(k, s, &s->cpu_slab[cpu]);
}

int __kmem_cache_shrink(Kernel& k, kmem_cache* s) {
  if (k.kasan) kasan_quarantine_flush(k); // kasan_cache_shrink()
  flush_all(k, s);
  kmem_cache_node& n = s->node;
  std::vector<struct page*> empty, keep;
  n.list_lock.lock();
  for (uint32_t pfn = n.partial.head; pfn != PFN_NIL;) {
    struct page* slab = k.mem.pfn_to_page(pfn);
    pfn = slab->lru_next;
    remove_partial_locked(k, n, slab);
    (slab->slab.inuse == 0 ? empty : keep).push_back(slab);
  }
  // Fullest slabs first, so allocations fill them and the emptier ones can drain.
  std::stable_sort(keep.begin(), keep.end(),
                   [](struct page* a, struct page* b) { return a->slab.inuse > b->slab.inuse; });
  for (struct page* slab : keep) add_partial_locked(k, n, slab, /*tail=*/true);
  n.list_lock.unlock();
  for (struct page* slab : empty) discard_slab(k, s, slab);
  return 0;
}

bool __kmem_cache_shutdown(Kernel& k, kmem_cache* s, uintptr_t caller) {
  if (k.kasan) kasan_quarantine_remove_cache(k, s); // kasan_cache_shutdown()
  flush_all(k, s);
  kmem_cache_node& n = s->node;
  std::vector<struct page*> empty;
  std::vector<std::pair<struct page*, std::vector<void*>>> busy;
  n.list_lock.lock();
  for (pfn_list* l : {&n.partial, &n.full}) {
    for (uint32_t pfn = l->head; pfn != PFN_NIL;) {
      struct page* slab = k.mem.pfn_to_page(pfn);
      pfn = slab->lru_next;
      if (slab->slab.inuse == 0) {
        if (l == &n.partial) remove_partial_locked(k, n, slab);
        else remove_full_locked(k, n, slab);
        empty.push_back(slab);
        continue;
      }
      // list_slab_objects: every object not on the freelist is still allocated.
      std::vector<bool> is_free(slab->slab.objects);
      unsigned steps = 0;
      for (void* p = slab->slab.freelist; p && steps++ < slab->slab.objects;
           p = get_freepointer(s, p)) {
        if (!check_valid_pointer(k, s, slab, p)) break;
        is_free[obj_to_index(s, slab, k, p)] = true;
      }
      std::vector<void*> live;
      char* base = static_cast<char*>(slab_address(k, slab));
      for (unsigned i = 0; i < slab->slab.objects; i++)
        if (!is_free[i]) live.push_back(fixup_red_left(s, base + size_t(i) * s->size));
      busy.emplace_back(slab, std::move(live));
    }
  }
  n.list_lock.unlock();
  for (struct page* slab : empty) discard_slab(k, s, slab);
  for (auto& [slab, live] : busy) report_slab_objects_remaining(k, s, slab, live);
  (void)caller;
  return busy.empty();
}

} // namespace kmm
