// SLUB's data types and what must always hold (mm/slab.h, mm/slub.c), and the entry points the
// other slab files share. The design and the lock order are at the top of slub.cpp.
//
// Object layout inside a slot of s->size bytes (calculate_sizes, worked example for a 328-byte
// object, align 8, SLAB_POISON|SLAB_RED_ZONE|SLAB_HWCACHE_ALIGN: align becomes 64):
//
//   [left red zone 64][object 328][right red zone 8][free pointer 8][word 8][pad 32] = 448
//    red_left_pad      object_size  inuse = 336       offset = 336   (RED_ZONE's mandatory word)
//
// The pointer handed to users is slot + red_left_pad (red_left_pad is 0 without SLAB_RED_ZONE).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kmm/gfp.h"
#include "kmm/page.h"
#include "kmm/slab.h"
#include "mmzone.h"
#include "spinlock.h"

namespace kmm {
struct Kernel;
struct PageCensus;
} // namespace kmm

// Internal flag: object body poisoned (SLAB_POISON without ctor or RCU).
inline constexpr slab_flags_t __OBJECT_POISON = 0x80000000u;
inline constexpr slab_flags_t SLAB_DEBUG_FLAGS =
    SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER | SLAB_TRACE;
// Caches with any of these never merge (SLAB_NEVER_MERGE).
inline constexpr slab_flags_t SLAB_NEVER_MERGE = SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER |
                                                 SLAB_TRACE | SLAB_TYPESAFE_BY_RCU |
                                                 SLAB_NOLEAKTRACE | SLAB_FAILSLAB | SLAB_NO_MERGE;
// Caches merge only if they agree on these (SLAB_MERGE_SAME).
inline constexpr slab_flags_t SLAB_MERGE_SAME =
    SLAB_RECLAIM_ACCOUNT | SLAB_CACHE_DMA | SLAB_CACHE_DMA32 | SLAB_ACCOUNT;

namespace kmm {

// Poison and red-zone bytes (include/linux/poison.h).
inline constexpr uint8_t POISON_INUSE = 0x5a;      // padding, and a fresh debug slab
inline constexpr uint8_t POISON_FREE = 0x6b;       // body of a free object
inline constexpr uint8_t POISON_END = 0xa5;        // last byte of a poisoned object
inline constexpr uint8_t SLUB_RED_INACTIVE = 0xbb; // red zones of a free object
inline constexpr uint8_t SLUB_RED_ACTIVE = 0xcc;   // red zones of an allocated object
inline constexpr unsigned MAX_OBJS_PER_PAGE = 32767;
inline constexpr unsigned MIN_PARTIAL = 5, MAX_PARTIAL = 10;

// struct track (SLAB_STORE_USER): who allocated or freed an object, and when. 32 bytes as with
// CONFIG_STACKDEPOT. `when` is in jiffies; kmm's jiffies advance by one per tracked operation,
// so ages are deterministic.
struct track {
  uint64_t addr;   // caller (host return address)
  uint32_t handle; // stack depot handle (none kept: 0)
  int32_t cpu;
  int32_t pid;
  uint32_t pad_;
  uint64_t when;
};
static_assert(sizeof(track) == 32);
enum track_item { TRACK_ALLOC, TRACK_FREE };

} // namespace kmm

// Per-CPU slab state. Touched only by the thread holding that CPU's scope, except by flush_all()
// (validate, shrink, destroy), which the caller runs while no other thread allocates from the
// cache. Invariant: freelist == nullptr or every object on it lies in `slab`, and `slab` (if set)
// is frozen to this CPU (slab->slab.frozen == 1, slab_cpu == this CPU).
// (No tid: the kernel's transaction id exists for the lockless cmpxchg of (freelist, tid),
// which kmm's per-CPU threads do not need.)
struct alignas(64) kmem_cache_cpu {
  void* freelist = nullptr;    // next free object of `slab` (decoded pointer chain)
  struct page* slab = nullptr; // the CPU slab, or nullptr
};

// Per-node state, under list_lock. Invariants:
//  - every slab of the cache is exactly one of: on `partial` (0 < free objects, not frozen), on
//    `full` (no free objects on slab->freelist, not frozen), or frozen as some CPU's slab;
//  - nr_partial == length of partial; nr_slabs/total_objects count all of the cache's slabs.
//  - for every slab: slab.inuse == slab.objects - length(slab.freelist). (For a frozen slab the
//    objects on its CPU freelist count as in use, as in the kernel.)
struct kmem_cache_node {
  kmm::SpinLock list_lock;
  kmm::pfn_list partial; // slabs with free objects (head = most recently added)
  unsigned long nr_partial = 0;
  kmm::pfn_list full; // slabs with no free objects (kept always; the kernel only
                      // with debugging) so validate and shutdown can walk them
  std::atomic<unsigned long> nr_slabs{0};
  std::atomic<unsigned long> total_objects{0};
};

// A slab cache. Geometry fields are fixed at creation (calculate_sizes/calculate_order) and read
// without locks. Invariants: object_size <= inuse <= offset-or-inuse < size; size % align == 0;
// objects * size <= PAGE_SIZE << order; red_left_pad == 0 unless SLAB_RED_ZONE.
struct kmem_cache {
  kmm::Kernel* k = nullptr;
  std::string name;
  unsigned object_size = 0; // the object the user asked for (largest of merged aliases)
  unsigned size = 0;        // slot stride, with all metadata (the slabinfo objsize)
  unsigned inuse = 0;       // offset of the metadata after the object (and right red zone)
  unsigned offset = 0;      // free pointer offset from the object start
  unsigned align = 0;
  unsigned red_left_pad = 0;
  unsigned order = 0;       // slab order (s->oo)
  unsigned objects = 0;     // objects per slab of `order`
  unsigned min_order = 0;   // fallback order (s->min)
  unsigned min_objects = 0; // objects per slab of min_order
  unsigned min_partial = kmm::MIN_PARTIAL;
  uint32_t reciprocal = 0; // ceil(2^32 / size), for obj_to_index without a division
  slab_flags_t flags = 0;
  gfp_t allocflags = 0; // __GFP_COMP, GFP_DMA, __GFP_RECLAIMABLE as the flags ask
  void (*ctor)(void*) = nullptr;
  uint64_t random = 0;              // freelist hardening key (s->random)
  std::vector<unsigned> random_seq; // freelist randomisation: slot offsets, shuffled
  int refcount = 1;                 // merged aliases hold references
  bool is_kmalloc = false;
  bool init_on_alloc = false, init_on_free = false;
  // The lock-free fast paths may serve this cache: no debug flag, no init_on_alloc/free, and
  // neither KASAN nor KFENCE on the machine (what the kernel's static keys decide). Always
  // slab_wants_fastpath(): set at creation and again by kmem_cache_init_late() once KASAN and
  // KFENCE are up; validate() checks it.
  bool fastpath = false;
  bool shutdown_failed = false; // destroy found objects: the cache is leaked, as the kernel does
  bool dead = false;            // destroyed; the descriptor is kept to report a second destroy
  std::vector<std::string> aliases; // names merged into this cache (sysfs links)
  kmem_cache_cpu cpu_slab[kmm::MAX_CPUS];
  kmem_cache_node node;
};

namespace kmm {

// The slab layer of one machine (hangs off Kernel::slab).
struct SlabState {
  std::mutex slab_mutex;                        // slab_caches, creation and destruction
  std::vector<kmem_cache*> slab_caches;         // newest first, as /proc/slabinfo lists them
  std::vector<std::unique_ptr<kmem_cache>> all; // owns every descriptor, dead ones too
  std::atomic<long> slab_errors{0}; // slub_kunit's counter: +1 per object_err, slab_err,
                                    // slab_fix and byte-range report
  std::atomic<uint64_t> jiffies{0};
  std::atomic<uint64_t> rng{0}; // freelist shuffles (seeded from kmm.seed at boot)   // ticks once
                                // per tracked (SLAB_STORE_USER) operation
  // slub_debug= as parsed: global flags and per-cache entries.
  slab_flags_t debug_flags = 0;
  std::vector<std::pair<std::string, slab_flags_t>> debug_caches;
  unsigned min_objects = 0, min_order = 0, max_order = 3;
  bool nomerge = false;
  struct RcuState* rcu = nullptr; // rcu.cpp
  ~SlabState();
};

// ---- slub.cpp: the allocator ----
void kmem_cache_init(Kernel& k);      // boot: parse slub_* params, create the kmalloc caches, /proc
void kmem_cache_init_late(Kernel& k); // boot, after KASAN and KFENCE: every cache's fastpath
bool slab_wants_fastpath(const Kernel& k, const kmem_cache* s);
void* slab_alloc(Kernel& k, kmem_cache* s, gfp_t gfp, size_t orig_size, uintptr_t caller);
void slab_free(Kernel& k, kmem_cache* s, struct page* slab, void* obj, uintptr_t caller);
// slab_free without the KASAN hook: the quarantine's way back into SLUB.
void do_slab_free(Kernel& k, kmem_cache* s, struct page* slab, void* obj, uintptr_t caller);
// kmem_cache_free: finds the object's slab and checks it belongs to s (cache_from_obj).
void kmem_cache_free_checked(Kernel& k, kmem_cache* s, void* obj, uintptr_t caller);
int calculate_sizes(Kernel& k, kmem_cache* s); // 0 or -errno
void flush_all(Kernel& k, kmem_cache* s);
int __kmem_cache_shrink(Kernel& k, kmem_cache* s);
// Frees empty slabs and reports leftovers; false if objects remain.
bool __kmem_cache_shutdown(Kernel& k, kmem_cache* s, uintptr_t caller);
void discard_slab(Kernel& k, kmem_cache* s, struct page* slab);
unsigned slab_ksize(const kmem_cache* s);
// The slab holding an address of the direct map, or nullptr.
struct page* virt_to_slab(Kernel& k, const void* p);
void* slab_address(Kernel& k, const struct page* slab);
void* fixup_red_left(const kmem_cache* s, void* slot);
bool check_valid_pointer(Kernel& k, const kmem_cache* s, const struct page* slab, const void* p);
void* get_freepointer(const kmem_cache* s, void* obj);
void set_freepointer(const kmem_cache* s, void* obj, void* fp);
unsigned obj_to_index(const kmem_cache* s, const struct page* slab, Kernel& k, const void* obj);
inline bool kmem_cache_debug(const kmem_cache* s) { return s->flags & SLAB_DEBUG_FLAGS; }
inline bool freeptr_outside_object(const kmem_cache* s) { return s->offset >= s->inuse; }
inline unsigned get_info_end(const kmem_cache* s) {
  return freeptr_outside_object(s) ? s->inuse + sizeof(void*) : s->inuse;
}
inline bool slub_debug_orig_size(const kmem_cache* s) {
  return (s->flags & SLAB_STORE_USER) && (s->flags & SLAB_KMALLOC);
}

// ---- slab_common.cpp: creation, merging, destruction, /proc/slabinfo, sysfs ----
kmem_cache* create_cache(Kernel& k, const char* name, unsigned size, unsigned align,
                         slab_flags_t flags, void (*ctor)(void*), uintptr_t caller);
void destroy_cache(Kernel& k, kmem_cache* s, uintptr_t caller);
slab_flags_t kmem_cache_flags(Kernel& k, slab_flags_t flags, const char* name);
void register_slab_procfs(Kernel& k);
void parse_slub_debug(Kernel& k, const std::string& arg);

// ---- slub_debug.cpp: the debug checks (all run under the node list_lock) ----
void setup_slab_debug(Kernel& k, kmem_cache* s, struct page* slab);
void init_object(const kmem_cache* s, void* obj, uint8_t val);
void init_tracking(const kmem_cache* s, void* obj);
void set_track(Kernel& k, const kmem_cache* s, void* obj, track_item t, uintptr_t addr);
void set_orig_size(const kmem_cache* s, void* obj, unsigned orig);
unsigned get_orig_size(const kmem_cache* s, void* obj);
// alloc_debug_processing / free_debug_processing: false = do not hand out / do not free.
bool alloc_debug_processing(Kernel& k, kmem_cache* s, struct page* slab, void* obj,
                            unsigned orig_size, uintptr_t caller);
bool free_debug_processing(Kernel& k, kmem_cache* s, struct page* slab, void* obj,
                           uintptr_t caller);
// validate_slab_cache: checks every slab; returns the number of errors counted.
long validate_slab_cache(Kernel& k, kmem_cache* s);
// Silent self-check for kmm::validate (no reports, no repairs).
void slab_check_quiet(Kernel& k, kmem_cache* s, struct page* slab,
                      std::vector<std::string>& errors);
void trace(Kernel& k, const kmem_cache* s, struct page* slab, void* obj, bool alloc);

// ---- slub_report.cpp: one function per SLUB report (all ReportKind::SlubDebug) ----
void report_slab_object_err(Kernel& k, const kmem_cache* s, const struct page* slab, void* obj,
                            const std::string& reason, const std::string& fix = "");
void report_slab_err(Kernel& k, const kmem_cache* s, const struct page* slab,
                     const std::string& reason, const std::string& fix = "");
void report_slab_bytes_overwritten(Kernel& k, const kmem_cache* s, const struct page* slab,
                                   void* obj, const char* what, const uint8_t* fault,
                                   const uint8_t* end, uint8_t expected);
void report_slab_padding(Kernel& k, const kmem_cache* s, const struct page* slab,
                         const uint8_t* fault, const uint8_t* end);
void report_slab_objects_remaining(Kernel& k, const kmem_cache* s, const struct page* slab,
                                   const std::vector<void*>& objects);
void report_slab_wrong_cache(Kernel& k, const kmem_cache* s, const kmem_cache* real, void* obj);
void report_slab_not_slab(Kernel& k, const char* fn, const kmem_cache* s, const void* obj);
void report_slab_fix_only(Kernel& k, const kmem_cache* s, const std::string& fix);
std::string slab_print_tracking(Kernel& k, const kmem_cache* s, void* obj);

// `census`: what validate()'s walk of mem_map saw (page_census.h).
void slab_validate(Kernel& k, std::vector<std::string>& errors, const PageCensus& census);

} // namespace kmm
