// struct page: one record per 4 KiB page frame, as the kernel's mem_map/vmemmap.
//
// It is in the global namespace because kernel-style code writes `struct page *`.
// Invariants (checked by page_check() in validate.cpp and by kmm::validate):
//  - A free buddy block's head has page_type PGTY_buddy and private_ == its order; its other pages
//    are zero. page_type is written and read only under the zone lock: the free path inspects the
//    buddy of the block it frees while that buddy's owner may be rewriting its flags on another
//    CPU, so "is this a free block" must not share a memory location with the owner's flags.
//  - A page on a per-CPU list has PG_pcp and private_ == its order; refcount 0.
//  - The head of a live allocation has PG_alloc, refcount >= 1 and private_ == its order
//    (tails of a non-compound allocation are zero; tails of a compound page have PG_tail and
//    compound_head == the head's pfn).
//  - PGTY_buddy, PG_pcp, PG_alloc and PG_reserved are mutually exclusive.
//  - sizeof(struct page) == 64: 16 GiB of simulated RAM needs 256 MiB of page records, which are
//    backed lazily (only touched records cost host memory).
#pragma once

#include <cstdint>

namespace kmm {

// Page flag bits (the kernel's PG_* subset that kmm needs, plus PG_pcp and PG_alloc, which the
// kernel encodes differently: in the refcount). Bit 0 is unused: "free buddy block" is a page type.
enum : uint16_t {
  PG_pcp = 1u << 1,        // on a per-CPU page list
  PG_alloc = 1u << 2,      // head of a block handed out by the page allocator
  PG_reserved = 1u << 3,   // never managed by the buddy allocator (pfn 0, holes)
  PG_head = 1u << 4,       // compound head (__GFP_COMP)
  PG_tail = 1u << 5,       // compound tail
  PG_slab = 1u << 6,       // owned by SLUB
  PG_lru = 1u << 7,        // on an LRU list (anon or page cache)
  PG_dirty = 1u << 8,      // page cache page needing writeback
  PG_referenced = 1u << 9, // second-chance bit
  PG_active = 1u << 10,    // on the active LRU
  PG_isolated = 1u << 11,  // taken off the buddy lists by CMA isolation
  PG_poisoned = 1u << 12,  // filled with PAGE_POISON at free (page_poison=1)
};

// Page types, as the kernel's page_type: a free block is not a flag but what the page is.
enum : uint16_t {
  PGTY_buddy = 0xf0, // head of a free block in a buddy free list
};

// Who holds an allocated page: every page is accounted to exactly one owner (validate checks it).
enum class PageOwner : uint8_t {
  None = 0,     // free or reserved
  Kernel,       // alloc_pages() by kernel code
  Slab,         // a slab of a kmem_cache
  KmallocLarge, // kmalloc() > KMALLOC_MAX_CACHE_SIZE
  Vmalloc,      // backing page of a vmalloc area
  Anon,         // a task's anonymous page
  PageCache,    // a file page
  PageTable,    // a task's page table
  Cma,          // handed out by cma_alloc()
  Dma,          // dma_alloc_coherent()
  Kfence,       // the KFENCE pool
};
const char* page_owner_name(PageOwner owner);

inline constexpr uint32_t PFN_NIL = ~0u; // end of a pfn-linked list

} // namespace kmm

struct kmem_cache;

struct page {
  uint16_t flags;     // PG_* bits, written by whoever holds the page
  uint16_t page_type; // PGTY_buddy or 0; only under zone->lock (see the invariants above)
  uint32_t private_;  // order of a buddy/pcp block or of an allocation
  int32_t _refcount;  // references; the block is freed when it drops to 0
  uint32_t lru_next;  // pfn links: buddy free list, pcp list, slab partial list or LRU
  uint32_t lru_prev;
  uint32_t compound_head; // head pfn for compound tails
  kmm::PageOwner owner;   // who holds the page (None when free)
  uint8_t list_mt;        // migratetype of the free/pcp list holding the block
  uint8_t compound_order; // order of a compound head
  uint8_t pcp_cpu;        // CPU whose pcp list holds the page (when PG_pcp)
  uint32_t owner_data;    // owner-specific small datum (task pid, vmap area id ...)
  union {
    struct {                         // PG_slab
      struct kmem_cache* slab_cache; // the cache this slab belongs to
      void* freelist;                // first free object (encoded chain inside the slab)
      uint16_t inuse;                // objects handed out
      uint16_t objects;              // objects in the slab
      uint16_t frozen;               // owned by a CPU as its cpu slab
      uint16_t slab_cpu;             // which CPU, when frozen
    } slab;
    struct {          // Anon, PageCache
      void* mapping;  // owning task or file
      uint64_t index; // page index within it
    } mapped;
    uint64_t words[4];
  };
};
static_assert(sizeof(struct page) == 64, "struct page must stay 64 bytes");

namespace kmm {
inline bool PageBuddy(const struct page& p) { return p.page_type == PGTY_buddy; }
} // namespace kmm
