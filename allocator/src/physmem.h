// Physical memory: one memfd of mem= bytes, mapped once as the direct map, and the struct page
// array (mem_map). Physical address == offset into the memfd; pfn == physical address >> 12.
//
// Host memory is recycled: a machine's destructor keeps its memfd and mem_map in a small pool, so
// the next boot of the same size skips memfd_create, mmap and munmap and, above all, the page
// faults (about 10 us each on a virtualised host: an order-10 block touched for the first time
// cost 10 ms). The struct pages are zeroed (their resident part); RAM is not cleaned at all. The
// pages the old machine wrote are *stale* in the new one: their host bytes are left over, but
// the machine must see `fill` there, so a stale page is set to `fill` when it is handed out
// (prep_new_page), the only moment its bytes become visible, unless the allocation zeroes it
// anyway (forget_stale). A page not written since it was last clean is *pristine*: it holds
// `fill`, so an allocation that zeroes it (init_on_alloc, __GFP_ZERO) skips the memset when fill
// is 0, and page_poison's check skips it. "Written" is what the machine cannot rule out: a page
// handed out counts as written, as its owner may write any byte, unless the owner marks what it
// writes (a scenario's pages, kernel.h: then a page handed out and given back unwritten stays
// pristine). Cleaning thus costs what the inputs write, at most what they allocate, not mem=;
// what the machine sees is byte for byte a fresh boot (tests/physmem_test.cpp). A machine restored
// to its boot image (recycle.h) marks the pages its run wrote stale the same way.
//
// Addresses printed in reports are the kernel's, never host pointers: the direct map at
// PAGE_OFFSET (0xffff888000000000 + phys) and struct pages in the vmemmap
// (0xffffea0000000000 + pfn * 64), as on an x86_64 kernel without KASLR.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kmm/page.h"
#include "mmzone.h"

namespace kmm {

inline constexpr uint64_t PAGE_OFFSET_VA = 0xffff888000000000ull;
inline constexpr uint64_t VMEMMAP_START_VA = 0xffffea0000000000ull;

struct PhysMem {
  int memfd = -1;
  uint8_t* direct_map = nullptr; // host mapping of [0, bytes)
  uint64_t bytes = 0;
  unsigned long nr_pages = 0;
  struct page* mem_map = nullptr; // nr_pages records, lazily backed anonymous memory
  size_t mem_map_bytes = 0;
  uint8_t fill = 0;                  // what RAM read as at boot (recycling restores it)
  std::vector<uint8_t> pageblock_mt; // migratetype of each pageblock
  // One bit per page. Invariant: a page that is neither stale nor written holds `fill` in every
  // host byte (first_unclean_pristine() checks it). Every writer of RAM writes pages it was
  // handed (allocations, slabs, vmalloc, migration targets), which prep_new_page marks written
  // unless their owner marks its own writes (kernel.h), or marks them itself (poisoning at free,
  // a scenario's write and fill). CPUs hand out pages concurrently, and 64 pages share a word:
  // every access is atomic (relaxed: a page moves between CPUs only through the allocator's
  // locks).
  std::vector<uint64_t> stale;   // bytes left by a previous machine on this host memory
  std::vector<uint64_t> written; // may hold other bytes than `fill`, since boot
  // One byte per group of 64 pages (a word of `written`), set when a struct page of the group
  // changed while not handed out: free blocks and per-CPU lists link, split and relabel free
  // pages, and every such write goes through the pfn_list operations on that very page
  // (pfn_list.h), which touch() it and the neighbours they relink. Cleared with the boot image's
  // taking and restoring: the struct pages a run changed are in groups handed out (`written`) or
  // touched since, so a restore copies only those back (recycle.h).
  std::vector<uint8_t> touched;

  PhysMem() = default;
  PhysMem(const PhysMem&) = delete;
  PhysMem& operator=(const PhysMem&) = delete;
  ~PhysMem();
  // RAM reads as `fill` everywhere (page_poison boots with PAGE_POISON), struct pages as zero.
  // Throws BootError if the host refuses the memory.
  void init(uint64_t size, uint8_t fill = 0);

  struct page* pfn_to_page(unsigned long pfn) const {
    return mem_map + pfn;
  }
  unsigned long page_to_pfn(const struct page* p) const {
    return static_cast<unsigned long>(p - mem_map);
  }
  bool pfn_valid(unsigned long pfn) const { return pfn < nr_pages; }
  bool is_page(const struct page* p) const {
    return p >= mem_map && p < mem_map + nr_pages &&
           (reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(mem_map)) %
                   sizeof(struct page) ==
               0;
  }
  void* page_address(const struct page* p) const {
    return direct_map + (static_cast<uint64_t>(page_to_pfn(p)) << PAGE_SHIFT_);
  }
  bool is_direct(const void* p) const {
    auto a = reinterpret_cast<uintptr_t>(p), b = reinterpret_cast<uintptr_t>(direct_map);
    return a >= b && a - b < bytes;
  }
  uint64_t virt_to_phys(const void* p) const {
    return reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(direct_map);
  }
  void* phys_to_virt(uint64_t phys) const { return direct_map + phys; }
  struct page* virt_to_page(const void* p) const {
    return pfn_to_page(virt_to_phys(p) >> PAGE_SHIFT_);
  }
  // The address the kernel would print for a direct-map pointer or a struct page.
  uint64_t kva(const void* p) const { return PAGE_OFFSET_VA + virt_to_phys(p); }
  uint64_t page_kva(const struct page* p) const {
    return VMEMMAP_START_VA + uint64_t(page_to_pfn(p)) * sizeof(struct page);
  }

  void touch(unsigned long pfn) {
    std::atomic_ref<uint8_t>(touched[pfn >> 6]).store(1, std::memory_order_relaxed);
  }

  static bool test_bit(const std::vector<uint64_t>& b, unsigned long pfn) {
    auto& word = const_cast<uint64_t&>(b[pfn >> 6]); // atomic_ref<const T> is C++26
    const uint64_t w = std::atomic_ref<uint64_t>(word).load(std::memory_order_relaxed);
    return (w >> (pfn & 63)) & 1;
  }
  // The page holds `fill` in every byte (see stale/written).
  bool pristine(unsigned long pfn) const {
    return !test_bit(stale, pfn) && !test_bit(written, pfn);
  }
  // Pages [pfn, pfn + n) are being handed out: a stale one is set to `fill` (what a fresh machine
  // has there); the caller then marks all written. Call before anything reads their bytes;
  // pristine() is still true of a page that was only stale, until mark_written().
  void clean_stale(unsigned long pfn, unsigned long n);
  // Pages [pfn, pfn + n) were overwritten whole by their new owner (zeroed): no longer stale.
  void forget_stale(unsigned long pfn, unsigned long n);
  bool has_stale(unsigned long pfn, unsigned long n) const;
  void mark_written(unsigned long pfn, unsigned long n);
  // The first pristine page that does not hold `fill` in every byte (the invariant above
  // broken), or nr_pages. Reads all of RAM: for tests and KMM_FUZZ_RECYCLE_CHECK.
  unsigned long first_unclean_pristine() const;

  int get_pageblock_migratetype(unsigned long pfn) const {
    return pageblock_mt[pfn >> pageblock_order];
  }
  void set_pageblock_migratetype(unsigned long pfn, int mt) {
    pageblock_mt[pfn >> pageblock_order] = static_cast<uint8_t>(mt);
  }
};

// Unmaps the pooled host memory of destroyed machines: the next boot of any size starts from a
// new memfd (tests compare such a fresh boot with a recycled one). Returns how many were freed.
size_t physmem_drain_pool();
// Boots so far that reused pooled host memory (for tests and benchmarks).
uint64_t physmem_reuse_count();
// Lazily backed host memory that reads as zero, from the pool of destroyed machines' when one
// of that size is there (no page faults for what is already backed); nullptr if the host refuses.
// host_zeroed_unmap() zeroes what is backed and pools it (physmem_drain_pool() empties the pool).
void* host_zeroed_map(size_t bytes);
void host_zeroed_unmap(void* p, size_t bytes);

struct Kernel;

// Zone boundaries for mem= (the rule is in docs/machine.md):
//  - mem > 4 GiB: as on a PC: DMA below 16 MiB, DMA32 below 4 GiB, Normal above.
//  - mem <= 4 GiB: scaled so every zone exists: DMA is the first mem/16 (at most 16 MiB),
//    DMA32 ends at mem/2, Normal holds the rest. The DMA zone still lies below 16 MiB and
//    DMA32 below 4 GiB, so 24- and 32-bit DMA masks keep their meaning.
//  - movablecore=N takes the top N bytes (rounded to pageblocks) out of Normal into Movable.
// pfn 0 is reserved, as the kernel reserves the first page of RAM.
void setup_zones(Kernel& k);

} // namespace kmm
