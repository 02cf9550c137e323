// Zones, free areas, per-CPU page lists and the constants of the page allocator
// (include/linux/mmzone.h). The data types of the buddy layer and what must always hold.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>

#include "kmm/page.h"
#include "spinlock.h"

namespace kmm {

inline constexpr unsigned PAGE_SHIFT_ = 12;
inline constexpr uint64_t PAGE_SIZE_ = 1ull << PAGE_SHIFT_;
inline constexpr unsigned MAX_PAGE_ORDER_ = 10; // inclusive: orders 0..10
inline constexpr unsigned NR_PAGE_ORDERS = MAX_PAGE_ORDER_ + 1;
inline constexpr unsigned PAGE_ALLOC_COSTLY_ORDER = 3;
inline constexpr unsigned pageblock_order = 9; // HUGETLB_PAGE_ORDER on x86_64: 2 MiB blocks
inline constexpr unsigned long pageblock_nr_pages = 1ul << pageblock_order;
inline constexpr unsigned MAX_CPUS = 64;

enum migratetype : uint8_t {
  MIGRATE_UNMOVABLE,
  MIGRATE_MOVABLE,
  MIGRATE_RECLAIMABLE,
  MIGRATE_PCPTYPES, // the number of types on pcp lists
  MIGRATE_HIGHATOMIC = MIGRATE_PCPTYPES,
  MIGRATE_CMA,
  MIGRATE_ISOLATE,
  MIGRATE_TYPES
};
extern const char* const migratetype_names[MIGRATE_TYPES];
inline bool migratetype_is_mergeable(int mt) { return mt < MIGRATE_PCPTYPES; }

enum zone_type : uint8_t { ZONE_DMA, ZONE_DMA32, ZONE_NORMAL, ZONE_MOVABLE, MAX_NR_ZONES };
extern const char* const zone_names[MAX_NR_ZONES];

enum zone_watermarks { WMARK_MIN, WMARK_LOW, WMARK_HIGH, WMARK_PROMO, NR_WMARK };

// Zone counters (enum zone_stat_item): changed under zone->lock, read locklessly.
enum zone_stat_item {
  NR_FREE_PAGES,
  NR_ZONE_INACTIVE_ANON,
  NR_ZONE_ACTIVE_ANON,
  NR_ZONE_INACTIVE_FILE,
  NR_ZONE_ACTIVE_FILE,
  NR_ZONE_UNEVICTABLE,
  NR_ZONE_WRITE_PENDING,
  NR_MLOCK,
  NR_BOUNCE,
  NR_ZSPAGES,
  NR_FREE_CMA_PAGES,
  NR_ZONE_STAT_ITEMS
};
extern const char* const zone_stat_names[NR_ZONE_STAT_ITEMS];

// A free list is a doubly linked list threaded through page->lru_next/lru_prev by pfn, so it
// holds no host pointers and costs nothing per node beyond struct page.
struct pfn_list {
  uint32_t head = PFN_NIL; // first pfn, PFN_NIL when empty
  uint32_t tail = PFN_NIL; // last pfn
  bool empty() const { return head == PFN_NIL; }
};

// free_area[order]: every block on free_list[mt] is free, of exactly this order, aligned to it
// (pfn % (1 << order) == 0), lies in this zone, and its pageblock's migratetype is mt unless the
// block was stolen with its pageblock not (yet) claimed. nr_free == total of nr_free_mt.
struct free_area {
  pfn_list free_list[MIGRATE_TYPES];
  unsigned long nr_free_mt[MIGRATE_TYPES]; // blocks on each list (for /proc/pagetypeinfo)
  unsigned long nr_free;                   // blocks of this order, all migratetypes
};

// Per-CPU page lists (struct per_cpu_pages). Touched only by its CPU's thread, except by
// drain_all_pages(), hence the (uncontended) lock, as the kernel's pcp->lock since 5.19.
// count == pages on all lists; each list holds blocks of one order and one pcp migratetype.
inline constexpr unsigned NR_PCP_ORDERS = PAGE_ALLOC_COSTLY_ORDER + 1;
inline constexpr unsigned NR_PCP_LISTS = MIGRATE_PCPTYPES * NR_PCP_ORDERS;
struct alignas(64) per_cpu_pages {
  SpinLock lock;
  int count = 0; // pages (not blocks) on the lists
  int high = 0;  // free to buddy when count >= high
  int batch = 0; // refill / drain chunk
  pfn_list lists[NR_PCP_LISTS];
};
inline unsigned order_to_pindex(int mt, unsigned order) { return MIGRATE_PCPTYPES * order + mt; }

struct zone {
  // Fixed at boot.
  zone_type idx = ZONE_DMA;
  const char* name = "";
  unsigned long zone_start_pfn = 0;
  unsigned long spanned_pages = 0; // pfns covered
  unsigned long present_pages = 0; // pfns with memory
  unsigned long managed_pages = 0; // pages the buddy allocator manages (present minus reserved)
  unsigned long cma_pages = 0;     // pages in MIGRATE_CMA pageblocks

  // Recomputed by setup_per_zone_wmarks() when min_free_kbytes or the scale factor changes.
  unsigned long _watermark[NR_WMARK] = {};
  unsigned long watermark_boost = 0;
  unsigned long lowmem_reserve[MAX_NR_ZONES] = {};
  unsigned long nr_reserved_highatomic = 0;

  // Under lock.
  mutable std::mutex lock;
  free_area free_area_[NR_PAGE_ORDERS] = {};
  std::atomic<long> vm_stat[NR_ZONE_STAT_ITEMS] = {};

  per_cpu_pages pcp[MAX_CPUS]; // [cpu]; only the first nr_cpus are used

  unsigned long end_pfn() const { return zone_start_pfn + spanned_pages; }
  bool populated() const { return present_pages != 0; }
  unsigned long wmark(int i) const { return _watermark[i] + watermark_boost; }
  long free_pages() const { return vm_stat[NR_FREE_PAGES].load(std::memory_order_relaxed); }
};

} // namespace kmm
