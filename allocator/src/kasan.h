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

#include <algorithm>
#include <atomic>
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

// The chunks of one shadowed region of simulated memory (the direct map or the vmalloc range)
// whose KASAN state (its stored shadow, or in ASan builds ASan's mirror of it; each map of
// KasanState says which) may differ from its boot state, a bit each:
//   bit i set <=> chunk i, bytes [i * CHUNK, (i + 1) * CHUNK) of the region, may differ from boot.
// Byte 70000 of a region is in chunk 70000 / 32768 == 2, bit 2 of words[0].
// CPUs mark concurrently: the words are updated through relaxed atomic_refs, and a bit already
// set costs a load. Everything else reads or clears the words with the machine quiescent.
struct kasan_chunk_map {
  // 32 KiB: the memory one 4 KiB page of shadow stands for (a shadow byte per 8 bytes), for
  // KASAN's stored shadow as for ASan's.
  static constexpr size_t CHUNK = size_t(32) << 10;
  std::vector<uint64_t> words; // bit i of words[i / 64]: chunk i
  size_t bytes = 0;            // the region's size

  void init(size_t region_bytes) {
    bytes = region_bytes;
    words.assign((region_bytes / CHUNK + 64) / 64, 0);
  }
  // Marks the chunks of [offset, offset + size), byte offsets into the region.
  void mark(size_t offset, size_t size) {
    for (size_t i = offset / CHUNK, e = (offset + size + CHUNK - 1) / CHUNK; i < e; i++) {
      std::atomic_ref<uint64_t> word(words[i >> 6]);
      const uint64_t bit = uint64_t(1) << (i & 63);
      if (!(word.load(std::memory_order_relaxed) & bit))
        word.fetch_or(bit, std::memory_order_relaxed);
    }
  }

  // The walks run only at a restore to the boot image and at the machine's end. Each is compiled
  // into its caller (a template instantiated with the caller's lambda, or forced inline), so that
  // fuzz/sancov_ignore.txt, which lists those callers, keeps the walks out of the fuzzer's
  // coverage as well.
  [[gnu::always_inline]] bool marked(size_t offset) const {
    return words[offset / CHUNK >> 6] >> (offset / CHUNK & 63) & 1;
  }
  [[gnu::always_inline]] bool none() const {
    for (uint64_t w : words)
      if (w) return false;
    return true;
  }
  // fn(offset, size) for each marked chunk, in address order; the last one ends at the region's.
  template <typename Fn>
  void for_each(Fn&& fn) const {
    for (size_t w = 0; w < words.size(); w++)
      for (uint64_t b = words[w]; b; b &= b - 1) {
        const size_t at = (w * 64 + unsigned(__builtin_ctzll(b))) * CHUNK;
        if (at < bytes) fn(at, std::min(CHUNK, bytes - at));
      }
  }
  // for_each, then no chunk marked.
  template <typename Fn>
  void for_each_clear(Fn&& fn) {
    for_each(fn);
    for (uint64_t& w : words) w = 0;
  }
};

struct KasanState {
  Kernel* owner = nullptr;
  uint8_t* dm_shadow = nullptr; // direct map: mem/8 bytes, stored XOR KASAN_PAGE_FREE
  size_t dm_shadow_size = 0;
  uint8_t* vm_shadow = nullptr; // vmalloc range: size/8 bytes, stored XOR KASAN_VMALLOC_INVALID
  size_t vm_shadow_size = 0;
  // The chunks whose stored shadow was written since boot (kasan_poison / kasan_unpoison mark
  // them). Boot writes none, so these are all the shadow a restore to the boot image (recycle.h)
  // has to put back. In ASan builds they are also the chunks where those writes may have left
  // poison in ASan's mirror (kasan_asan_set marks nothing of its own).
  kasan_chunk_map shadow_written_dm, shadow_written_vm;
  // ASan builds (kasan_asan.h): the chunks where kasan_asan_sync may have poisoned ASan's mirror.
  // Not the maps above: a raw access inside a KasanMetadataAccess scope can reach a chunk whose
  // shadow was never written (a scenario `corrupt` into a page free since boot), and when the
  // scope ends, the sync mirrors that chunk's boot poison into ASan. Its shadow is still as boot
  // left it, so kasan_at_boot and the shadow restore rightly do not see it; only ASan's mirror
  // has to forget it. ASan's shadow holds kmm's poison only in chunks of these four maps.
  kasan_chunk_map asan_synced_dm, asan_synced_vm;
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
