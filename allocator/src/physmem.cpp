// Physical memory and zone layout (see physmem.h).
#include "physmem.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "kasan_asan.h"
#include "kernel.h"
#include "kmm/machine.h"

namespace kmm {

namespace {

// The host memory of one destroyed machine, cleaned and kept for the next boot of that size.
struct HostRam {
  int memfd;
  uint8_t* direct_map;
  uint64_t bytes;
  struct page* mem_map;
  size_t mem_map_bytes;
  uint8_t fill;                // what RAM holds wherever `stale` has no bit
  std::vector<uint64_t> stale; // pages whose host bytes a machine left behind
};

// Small enough that the pool never holds much: fuzz machines are 8-64 MiB, and cleaned RAM with
// fill 0 holds no host pages at all (only a poisoned 8 MiB machine keeps its RAM resident).
constexpr size_t kPoolEntries = 8;
constexpr uint64_t kPoolMaxBytes = 1ull << 30;

std::mutex pool_lock;
std::vector<HostRam> pool;
std::atomic<uint64_t> reuses{0};

const long kHostPage = sysconf(_SC_PAGESIZE);

void unmap(const HostRam& h) {
  munmap(h.direct_map, h.bytes);
  munmap(h.mem_map, h.mem_map_bytes);
  close(h.memfd);
}

bool host_has_swap() {
  struct sysinfo si;
  return sysinfo(&si) != 0 || si.totalswap != 0;
}

// Zeroes the backed part of an anonymous mapping (the rest reads as zero): cost in what the
// machine touched, not in mem=. A swapped-out page is not resident but not zero
// either: with swap, the gaps are discarded too.
bool zero_mem_map(struct page* mem_map, size_t len) {
  static const bool swap = host_has_swap();
  const size_t pg = size_t(kHostPage);
  std::vector<unsigned char> resident((len + pg - 1) / pg);
  if (mincore(mem_map, len, resident.data()) != 0) return false;
  auto* base = reinterpret_cast<uint8_t*>(mem_map);
  for (size_t i = 0; i < resident.size();) {
    const bool in = resident[i] & 1;
    size_t j = i;
    while (j < resident.size() && bool(resident[j] & 1) == in) j++;
    const size_t end = std::min(j * pg, len);
    if (in) std::memset(base + i * pg, 0, end - i * pg);
    else if (swap && madvise(base + i * pg, (j - i) * pg, MADV_DONTNEED) != 0) return false;
    i = j;
  }
  return true;
}

// Makes every RAM byte hold `fill` (a pooled memory taken by a machine with another fill than
// its last one). Fill 0 punches the whole file: the kernel frees only the pages that exist.
bool fill_ram(HostRam& h, uint8_t fill) {
  if (fill == 0) {
    if (fallocate(h.memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, off_t(h.bytes)) != 0)
      return false;
  } else {
    std::memset(h.direct_map, fill, h.bytes);
  }
  std::fill(h.stale.begin(), h.stale.end(), 0);
  h.fill = fill;
  return true;
}

// Pools a destroyed machine's memory, or unmaps it. RAM stays as the machine left it: the pages
// it handed out become stale (physmem.h), cleaned when a later machine hands them out.
void release(HostRam h) {
  bool keep = h.bytes <= kPoolMaxBytes &&
              // KFENCE leaves PROT_NONE guard pages in the direct map.
              mprotect(h.direct_map, h.bytes, PROT_READ | PROT_WRITE) == 0 &&
              zero_mem_map(h.mem_map, h.mem_map_bytes);
  if (keep) {
    std::lock_guard<std::mutex> guard(pool_lock);
    if (pool.size() < kPoolEntries) {
      pool.push_back(std::move(h));
      return;
    }
  }
  unmap(h);
}

// A pooled memory of `size` bytes, preferring one already holding `fill`.
bool take_pooled(uint64_t size, uint8_t fill, HostRam* out) {
  std::lock_guard<std::mutex> guard(pool_lock);
  auto best = pool.end();
  for (auto it = pool.begin(); it != pool.end(); ++it)
    if (it->bytes == size && (best == pool.end() || it->fill == fill)) best = it;
  if (best == pool.end()) return false;
  *out = std::move(*best);
  pool.erase(best);
  return true;
}

// Maps the RAM file at a host address aligned to the largest buddy block, so that a host pointer
// is as aligned as the kernel address it stands for (kmalloc(8192) is 8 KiB aligned, an order-9
// block 2 MiB aligned), whatever address the host's mmap would have picked: reserve the size plus
// the alignment, map the file at the aligned point inside, give back the slack.
uint8_t* map_direct(int memfd, uint64_t size) {
  const uint64_t align = uint64_t(PAGE_SIZE_) << MAX_PAGE_ORDER_;
  void* r =
      mmap(nullptr, size + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED)
    throw BootError(std::string("cannot reserve simulated RAM: ") + std::strerror(errno));
  const uintptr_t base = reinterpret_cast<uintptr_t>(r);
  const uintptr_t at = (base + align - 1) & ~uintptr_t(align - 1);
  void* dm = mmap(reinterpret_cast<void*>(at), size, PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_NORESERVE | MAP_FIXED, memfd, 0);
  if (dm == MAP_FAILED) {
    munmap(r, size + align);
    throw BootError(std::string("cannot map simulated RAM: ") + std::strerror(errno));
  }
  if (at > base) munmap(r, at - base);
  if (base + align > at) munmap(reinterpret_cast<void*>(at + size), base + align - at);
  return static_cast<uint8_t*>(dm);
}

// Zeroed anonymous mappings given back by destroyed machines (KASAN's shadows), by size.
struct AnonMap {
  void* p;
  size_t bytes;
};
std::vector<AnonMap> anon_pool;

} // namespace

void* host_zeroed_map(size_t bytes) {
  {
    std::lock_guard<std::mutex> guard(pool_lock);
    for (auto it = anon_pool.begin(); it != anon_pool.end(); ++it)
      if (it->bytes == bytes) {
        void* p = it->p;
        anon_pool.erase(it);
        return p;
      }
  }
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void host_zeroed_unmap(void* p, size_t bytes) {
  if (!p) return;
  if (zero_mem_map(static_cast<struct page*>(p), bytes)) {
    std::lock_guard<std::mutex> guard(pool_lock);
    if (anon_pool.size() < kPoolEntries * 2) {
      anon_pool.push_back({p, bytes});
      return;
    }
  }
  munmap(p, bytes);
}

size_t physmem_drain_pool() {
  std::vector<HostRam> all;
  {
    std::lock_guard<std::mutex> guard(pool_lock);
    all.swap(pool);
  }
  for (const HostRam& h : all) unmap(h);
  std::vector<AnonMap> anon;
  {
    std::lock_guard<std::mutex> guard(pool_lock);
    anon.swap(anon_pool);
  }
  for (const AnonMap& a : anon) munmap(a.p, a.bytes);
  return all.size();
}

uint64_t physmem_reuse_count() { return reuses.load(std::memory_order_relaxed); }

// Calls f(word, mask, base) for each word of bitmap b that the bits [pfn, pfn + n) touch: mask
// is their part of the word, base the pfn of the word's bit 0. A word at a time: an order-10
// block is 16 words, not 1024 bit tests.
template <class F>
static void for_each_word(std::vector<uint64_t>& b, unsigned long pfn, unsigned long n, F f) {
  for (unsigned long i = pfn; i < pfn + n;) {
    const unsigned long bits = std::min(64 - (i & 63), pfn + n - i);
    const uint64_t mask = (bits == 64 ? ~uint64_t(0) : (uint64_t(1) << bits) - 1) << (i & 63);
    f(std::atomic_ref<uint64_t>(b[i >> 6]), mask, i & ~63ul);
    i += bits;
  }
}

bool PhysMem::has_stale(unsigned long pfn, unsigned long n) const {
  bool any = false; // (atomic_ref<const T> is C++26: hence the cast)
  for_each_word(const_cast<std::vector<uint64_t>&>(stale), pfn, n,
                [&](std::atomic_ref<uint64_t> word, uint64_t mask, unsigned long) {
                  any = any || (word.load(std::memory_order_relaxed) & mask);
                });
  return any;
}

void PhysMem::clean_stale(unsigned long pfn, unsigned long n) {
  for_each_word(
      stale, pfn, n, [&](std::atomic_ref<uint64_t> word, uint64_t mask, unsigned long base) {
        uint64_t hit = word.load(std::memory_order_relaxed) & mask;
        if (!hit) return;
        word.fetch_and(~hit, std::memory_order_relaxed);
        for (; hit; hit &= hit - 1)
          std::memset(direct_map + (uint64_t(base + std::countr_zero(hit)) << PAGE_SHIFT_), fill,
                      PAGE_SIZE_);
      });
}

void PhysMem::forget_stale(unsigned long pfn, unsigned long n) {
  for_each_word(stale, pfn, n, [](std::atomic_ref<uint64_t> word, uint64_t mask, unsigned long) {
    if (word.load(std::memory_order_relaxed) & mask)
      word.fetch_and(~mask, std::memory_order_relaxed);
  });
}

void PhysMem::mark_written(unsigned long pfn, unsigned long n) {
  // A locked RMW only for bits not yet set: most pages handed out again were handed out before.
  for_each_word(written, pfn, n, [](std::atomic_ref<uint64_t> word, uint64_t mask, unsigned long) {
    if ((word.load(std::memory_order_relaxed) & mask) != mask)
      word.fetch_or(mask, std::memory_order_relaxed);
  });
}

// Not ASan-instrumented: under kasan=on, free pages are poisoned in ASan's shadow (kasan_asan.h).
KMM_NO_SANITIZE_ADDRESS unsigned long PhysMem::first_unclean_pristine() const {
  const uint64_t want = 0x0101010101010101ull * fill;
  for (unsigned long pfn = 0; pfn < nr_pages; pfn++) {
    if (!pristine(pfn)) continue;
    const auto* w = reinterpret_cast<const uint64_t*>(direct_map + (uint64_t(pfn) << PAGE_SHIFT_));
    for (size_t i = 0; i < PAGE_SIZE_ / 8; i++)
      if (w[i] != want) return pfn;
  }
  return nr_pages;
}

PhysMem::~PhysMem() {
  if (direct_map && mem_map && memfd >= 0) {
    for (size_t i = 0; i < stale.size(); i++) stale[i] |= written[i];
    release({memfd, direct_map, bytes, mem_map, mem_map_bytes, fill, std::move(stale)});
    return;
  }
  if (direct_map) munmap(direct_map, bytes);
  if (mem_map) munmap(mem_map, mem_map_bytes);
  if (memfd >= 0) close(memfd);
}

void PhysMem::init(uint64_t size, uint8_t ram_fill) {
  bytes = size;
  nr_pages = static_cast<unsigned long>(size >> PAGE_SHIFT_);
  mem_map_bytes = nr_pages * sizeof(struct page);
  pageblock_mt.assign((nr_pages + pageblock_nr_pages - 1) / pageblock_nr_pages, MIGRATE_MOVABLE);
  const size_t words = (nr_pages + 63) / 64;
  written.assign(words, 0);
  touched.assign(words, 0);
  HostRam h;
  if (take_pooled(size, ram_fill, &h)) {
    if (h.fill != ram_fill && !fill_ram(h, ram_fill)) {
      unmap(h);
      throw BootError(std::string("cannot clean simulated RAM: ") + std::strerror(errno));
    }
    reuses.fetch_add(1, std::memory_order_relaxed);
    memfd = h.memfd;
    direct_map = h.direct_map;
    mem_map = h.mem_map;
    fill = ram_fill;
    stale = std::move(h.stale);
    return;
  }
  stale.assign(words, 0);
  memfd = memfd_create("kmm-ram", MFD_CLOEXEC);
  if (memfd < 0) throw BootError(std::string("memfd_create failed: ") + std::strerror(errno));
  if (ftruncate(memfd, static_cast<off_t>(size)) != 0)
    throw BootError("cannot size simulated RAM to " + std::to_string(size) +
                    " bytes: " + std::strerror(errno));
  direct_map = map_direct(memfd, size);
  // Anonymous memory reads as zero and is backed only when touched: a zeroed struct page is a
  // valid "tail of a free block", so boot writes only the head of each free block.
  void* mm = mmap(nullptr, mem_map_bytes, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mm == MAP_FAILED)
    throw BootError(std::string("cannot map struct pages: ") + std::strerror(errno));
  mem_map = static_cast<struct page*>(mm);
  if (ram_fill) std::memset(direct_map, ram_fill, bytes);
  fill = ram_fill;
}

void setup_zones(Kernel& k) {
  const unsigned long nr = k.mem.nr_pages;
  const unsigned long mib = (1ul << 20) >> PAGE_SHIFT_; // pages per MiB
  unsigned long dma_end, dma32_end;
  if (k.mem.bytes > (4ull << 30)) {
    dma_end = 16 * mib;
    dma32_end = (4ull << 30) >> PAGE_SHIFT_;
  } else {
    // Boundaries on 64-page (256 KiB) multiples: mem=4M gives DMA 256K, DMA32 to 2M.
    dma_end = std::min(16 * mib, (nr / 16) & ~63ul);
    dma32_end = (nr / 2) & ~63ul;
  }
  unsigned long movable_pages = (k.params.movablecore >> PAGE_SHIFT_);
  movable_pages = (movable_pages + pageblock_nr_pages - 1) & ~(pageblock_nr_pages - 1);
  unsigned long movable_start = nr - std::min(movable_pages, nr - dma32_end);
  if (movable_pages == 0) movable_start = nr;

  const unsigned long starts[MAX_NR_ZONES] = {0, dma_end, dma32_end, movable_start};
  const unsigned long ends[MAX_NR_ZONES] = {dma_end, dma32_end, movable_start, nr};
  for (int i = 0; i < MAX_NR_ZONES; i++) {
    zone& z = k.zones[i];
    z.idx = static_cast<zone_type>(i);
    z.name = zone_names[i];
    z.zone_start_pfn = starts[i];
    z.spanned_pages = ends[i] > starts[i] ? ends[i] - starts[i] : 0;
    z.present_pages = z.spanned_pages;
    // pfn 0 is reserved (the kernel keeps the first page of RAM), so DMA manages one page less.
    z.managed_pages = z.present_pages - (i == ZONE_DMA && z.present_pages ? 1 : 0);
  }
}

} // namespace kmm
