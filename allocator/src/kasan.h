// Software Generic KASAN (mm/kasan/): a shadow byte for every 8 bytes of simulated memory with
// the kernel's shadow codes, poisoned and unpoisoned by the allocators, and checked on every
// access made through kasan_check_read/write, the scenario language and the harness.
//
// Shadow encoding (mm/kasan/kasan.h, Generic): 0 = all 8 bytes accessible, 1..7 = the first N
// bytes accessible, and the negative codes below. The shadow is lazily backed host memory that
// reads as zero when untouched, so kmm stores each region's shadow XOR-ed with that region's
// initial state: untouched direct-map shadow means KASAN_PAGE_FREE (every page is free at boot),
// untouched vmalloc shadow means KASAN_VMALLOC_INVALID. Boot writes nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kmm/gfp.h"

struct page;
struct kmem_cache;

namespace kmm {

struct Kernel;

inline constexpr unsigned KASAN_GRANULE_SIZE = 8;
inline constexpr uint8_t KASAN_PAGE_FREE = 0xFF;
inline constexpr uint8_t KASAN_PAGE_REDZONE = 0xFE;
inline constexpr uint8_t KASAN_SLAB_REDZONE = 0xFC;
inline constexpr uint8_t KASAN_SLAB_FREE = 0xFB;
inline constexpr uint8_t KASAN_SLAB_FREE_META = 0xFA;
inline constexpr uint8_t KASAN_VMALLOC_INVALID = 0xF8;

struct KasanState {
  Kernel* owner = nullptr;
  uint8_t* dm_shadow = nullptr; // direct map: mem/8 bytes, stored XOR KASAN_PAGE_FREE
  size_t dm_shadow_size = 0;
  uint8_t* vm_shadow = nullptr; // vmalloc range: size/8 bytes, stored XOR KASAN_VMALLOC_INVALID
  size_t vm_shadow_size = 0;
  // ASan builds (kasan_asan.h): the 32 KiB chunks of the direct map and of the vmalloc range
  // whose ASan shadow may hold poison, a bit each. Set on every poisoning, so that the machine's
  // end (or its restore to the boot image) clears what it poisoned instead of scanning all of
  // its shadow.
  std::vector<uint64_t> asan_poisoned_dm, asan_poisoned_vm;
  // The 32 KiB chunks of the direct map and of the vmalloc range whose shadow was written since
  // boot, a bit each (kasan_poison / kasan_unpoison set them). Boot writes none, so these are all
  // the shadow a restore to the boot image (recycle.h) has to put back.
  std::vector<uint64_t> shadow_written_dm, shadow_written_vm;
  ~KasanState();
};

bool kasan_enabled(const Kernel& k);
void kasan_init(Kernel& k); // after vmalloc_init; nothing when kasan=off

// For recycle.cpp. Whether KASAN is as boot left it: no shadow written, the quarantine empty.
bool kasan_at_boot(Kernel& k);
// Puts it back there: the written chunks of the shadow (and of ASan's mirror of it) to their boot
// state, the quarantine emptied. Its objects are in slabs the caller gives back with the pages.
void kasan_restore_boot(Kernel& k);

// Shadow updates on [addr, addr + size) of simulated memory; addr granule aligned.
void kasan_poison(Kernel& k, const void* addr, size_t size, uint8_t value);
// Makes [addr, addr + size) accessible; a partial last granule gets the count of valid bytes.
void kasan_unpoison(Kernel& k, const void* addr, size_t size);
uint8_t kasan_shadow(Kernel& k, const void* addr); // the (decoded) shadow byte of addr
// The stored shadow of the n granules from the granule-aligned address a when all lie in one
// shadowed region (the direct map or the vmalloc range), and the XOR that decodes it (*key);
// nullptr otherwise. kasan_first_poisoned: the index of the first of those n stored bytes that
// does not decode to 0 (fully accessible), or n.
const uint8_t* kasan_shadow_span(Kernel& k, uintptr_t a, size_t n, uint8_t* key);
size_t kasan_first_poisoned(const uint8_t* stored, size_t n, uint8_t key);

// The page allocator's hooks.
void kasan_alloc_pages(Kernel& k, struct page* page, unsigned order);
void kasan_free_pages(Kernel& k, struct page* page, unsigned order);
// vmalloc's: an area of `size` bytes mapped at addr (the slack to the page end stays invalid).
void kasan_unpoison_vmalloc(Kernel& k, const void* addr, size_t size);
void kasan_poison_vmalloc(Kernel& k, const void* addr, size_t size);

// Checks an access; returns false (after reporting) if it touches poisoned memory. `fn` is the
// function named in the report title ("BUG: KASAN: <type> in <fn>").
bool kasan_check(Kernel& k, const void* addr, size_t size, bool write, const char* fn);
// A bad access ASan caught in an ASan build (kasan_asan.cpp): the KASAN report for it, its type
// taken from KASAN's shadow, with the call trace ASan gave.
void kasan_report_asan(Kernel& k, uintptr_t addr, size_t size, bool write, const char* fn,
                       const std::string& call_trace);
// The "double-free" / "invalid-free" reports of kfree and kmem_cache_free.
void kasan_report_invalid_free(Kernel& k, const void* addr, const char* type, const char* fn);

// Lets the slab layer describe the object around a buggy address; set by the slab layer.
// Returns the description block ("The buggy address belongs to the object at ...") or "", and
// sets *cache and *offset (the address's offset from the object's start) when it is a slab object.
extern std::string (*kasan_describe_slab_object)(Kernel& k, const void* addr, const char* bug_type,
                                                 std::string* cache, int64_t* offset);

// The quarantine (mm/kasan/quarantine.c): freed slab objects wait here, oldest first, until
// they hold more than 1/32 of RAM; then the oldest go back to SLUB.
struct KasanQuarantine {
  struct Entry {
    kmem_cache* cache;
    void* object;
  };
  std::mutex lock;
  std::deque<Entry> fifo;
  size_t bytes = 0; // sum of the objects' slot sizes
};
void kasan_slab_init(Kernel& k);
size_t kasan_quarantine_bytes(Kernel& k);

} // namespace kmm
