// Coherent DMA buffers (kernel/dma/direct.c, kernel/dma/contiguous.c) and the <kmm/dma.h>
// wrappers for CMA.
//
// dma_alloc_coherent(): with no IOMMU the bus address is the physical address, so a buffer must
// lie below the device's coherent mask. As dma_direct_alloc does: try the CMA area first when
// the caller may sleep (and, for the global area, the buffer is bigger than a page), aligned to
// min(get_order(size), CONFIG_CMA_ALIGNMENT = 8); otherwise allocate pages from the zone the mask
// needs (a 24-bit mask: GFP_DMA, 32-bit: GFP_DMA32), retrying one zone lower if a page lands
// above the mask. The buffer is zeroed.
#include <cstring>
#include <stdexcept>

#include "bug.h"
#include "cma.h"
#include "kernel.h"
#include "kmm/device.h"
#include "kmm/linux.h"
#include "page_alloc.h"

using kmm::Kernel;

namespace {

constexpr unsigned CONFIG_CMA_ALIGNMENT = 8;
constexpr unsigned zone_dma_bits = 24;

Kernel& K() {
  Kernel* k = Kernel::current;
  if (!k)
    throw std::logic_error("kmm: no current machine on this thread (create a kmm::MachineScope "
                           "or kmm::CpuScope first)");
  return *k;
}

bool dma_coherent_ok(const struct device* dev, uint64_t phys, size_t size) {
  return phys + size - 1 <= dev->coherent_dma_mask;
}

} // namespace

void* dma_alloc_coherent(struct device* dev, size_t size, dma_addr_t* dma_handle, gfp_t gfp) {
  Kernel& k = K();
  if (!dev || !dma_handle) {
    kmm::report_warn(k, "kernel/dma/mapping.c", "dma_alloc_attrs",
                     "dma_alloc_coherent() without a device or handle");
    return nullptr;
  }
  // dma_alloc_attrs(): WARN_ON_ONCE(flag & __GFP_COMP) and NULL (since 6.2: a DMA buffer is never
  // turned back into pages, so a compound page makes no sense).
  if (gfp & __GFP_COMP) {
    if (kmm::warn_once(k, kmm::WarnOnce::DmaAllocComp))
      kmm::report_warn(k, "kernel/dma/mapping.c", "dma_alloc_attrs",
                       "WARN_ON_ONCE(flag & __GFP_COMP)");
    return nullptr;
  }
  // Then it strips the zone flags: the mask decides the zone.
  gfp &= ~(__GFP_DMA | __GFP_DMA32 | __GFP_HIGHMEM);
  // dma_direct_alloc() page-aligns the size - 0 for 0, and for a size within a page of SIZE_MAX -
  // and asks the page allocator for get_order() of that: the kernel's get_order(0) of a run-time
  // size is order 52, so both fail with __alloc_pages' order warning.
  const size_t aligned = (size + PAGE_SIZE - 1) & PAGE_MASK;
  const unsigned long count = aligned >> PAGE_SHIFT;
  const unsigned order = aligned ? kmm::get_order(aligned) : 64 - PAGE_SHIFT;
  struct page* page = nullptr;
  bool from_cma = false;

  struct cma* area = k.cma ? k.cma->default_area : nullptr;
  if (area && kmm::gfpflags_allow_blocking(gfp) && aligned > PAGE_SIZE) {
    unsigned align = std::min(order, CONFIG_CMA_ALIGNMENT);
    page = kmm::cma_alloc(k, area, count, align, gfp & __GFP_NOWARN);
    if (page && !dma_coherent_ok(dev, page_to_phys(page), aligned)) {
      kmm::cma_release(k, area, page, count);
      page = nullptr;
    }
    from_cma = page != nullptr;
  }
  if (!page) {
    gfp_t zone = 0;
    if (dev->coherent_dma_mask <= DMA_BIT_MASK(zone_dma_bits)) zone = __GFP_DMA;
    else if (dev->coherent_dma_mask <= DMA_BIT_MASK(32)) zone = __GFP_DMA32;
    for (;;) {
      page = kmm::__alloc_pages(k, gfp | zone, order, kmm::PageOwner::Dma);
      if (!page || dma_coherent_ok(dev, page_to_phys(page), aligned)) break;
      kmm::__free_pages(k, page, order);
      page = nullptr;
      if (dev->coherent_dma_mask < DMA_BIT_MASK(64) && !(zone & (__GFP_DMA32 | __GFP_DMA)))
        zone = __GFP_DMA32;
      else if (!(zone & __GFP_DMA)) zone = __GFP_DMA;
      else break;
    }
  }
  if (!page) return nullptr;
  if (from_cma)
    for (unsigned long i = 0; i < count; i++) (page + i)->owner = kmm::PageOwner::Dma;
  void* cpu = k.mem.page_address(page);
  std::memset(cpu, 0, aligned);
  *dma_handle = page_to_phys(page);
  return cpu;
}

void dma_free_coherent(struct device* dev, size_t size, void* cpu_addr, dma_addr_t dma_handle) {
  Kernel& k = K();
  if (!cpu_addr) return;
  if (!k.mem.is_direct(cpu_addr) || k.mem.virt_to_phys(cpu_addr) != dma_handle) {
    kmm::report_warn(k, "kernel/dma/direct.c", "dma_direct_free",
                     "dma_free_coherent() of an address and handle that do not match");
    return;
  }
  const unsigned long count = ((size + PAGE_SIZE - 1) & PAGE_MASK) >> PAGE_SHIFT;
  struct page* page = k.mem.virt_to_page(cpu_addr);
  struct cma* area = k.cma ? k.cma->default_area : nullptr;
  unsigned long pfn = k.mem.page_to_pfn(page);
  if (area && pfn >= area->base_pfn && pfn < area->base_pfn + area->count &&
      page->owner == kmm::PageOwner::Dma && page->private_ == 0) {
    // The buffer's pages go back to CMA's owner only when the count lies inside the area; one
    // running past it is cma_release's VM_BUG_ON, which refuses (and the walk would leave the
    // memmap). A wrong size must not relabel pages that are not DMA buffers (free, a task's).
    if (count <= area->base_pfn + area->count - pfn)
      for (unsigned long i = 0; i < count; i++)
        if ((page + i)->owner == kmm::PageOwner::Dma) (page + i)->owner = kmm::PageOwner::Cma;
    kmm::cma_release(k, area, page, count);
    return;
  }
  kmm::__free_pages(k, page, kmm::get_order(size));
}

int dma_set_mask_and_coherent(struct device* dev, uint64_t mask) {
  // Every mask of 24 bits or more can be satisfied: ZONE_DMA lies below 16 MiB.
  if (mask < DMA_BIT_MASK(24)) return -5; // -EIO, as dma_supported() failing
  dev->dma_mask = mask;
  dev->coherent_dma_mask = mask;
  return 0;
}
