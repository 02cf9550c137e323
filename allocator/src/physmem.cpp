// Physical memory and zone layout (see physmem.h).
#include "physmem.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "kernel.h"
#include "kmm/machine.h"

namespace kmm {

PhysMem::~PhysMem() {
  if (direct_map) munmap(direct_map, bytes);
  if (mem_map) munmap(mem_map, mem_map_bytes);
  if (memfd >= 0) close(memfd);
}

void PhysMem::init(uint64_t size) {
  bytes = size;
  nr_pages = static_cast<unsigned long>(size >> PAGE_SHIFT_);
  memfd = memfd_create("kmm-ram", MFD_CLOEXEC);
  if (memfd < 0) throw BootError(std::string("memfd_create failed: ") + std::strerror(errno));
  if (ftruncate(memfd, static_cast<off_t>(size)) != 0)
    throw BootError("cannot size simulated RAM to " + std::to_string(size) +
                    " bytes: " + std::strerror(errno));
  void* dm = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, memfd, 0);
  if (dm == MAP_FAILED)
    throw BootError(std::string("cannot map simulated RAM: ") + std::strerror(errno));
  direct_map = static_cast<uint8_t*>(dm);
  // Anonymous memory reads as zero and is backed only when touched: a zeroed struct page is a
  // valid "tail of a free block", so boot writes only the head of each free block.
  mem_map_bytes = nr_pages * sizeof(struct page);
  void* mm = mmap(nullptr, mem_map_bytes, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mm == MAP_FAILED)
    throw BootError(std::string("cannot map struct pages: ") + std::strerror(errno));
  mem_map = static_cast<struct page*>(mm);
  pageblock_mt.assign((nr_pages + pageblock_nr_pages - 1) / pageblock_nr_pages, MIGRATE_MOVABLE);
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
