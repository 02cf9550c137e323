// DMA and CMA (include/linux/dma-mapping.h, include/linux/cma.h): coherent buffers for a
// kmm::Device within its DMA mask, and the contiguous allocator. Included by <kmm/linux.h>.
// [contract]
#pragma once

#include <cstddef>
#include <cstdint>

#include "kmm/gfp.h"

struct page;
struct device;
struct cma;

typedef uint64_t dma_addr_t;

inline constexpr uint64_t DMA_BIT_MASK(unsigned n) { return n >= 64 ? ~0ull : (1ull << n) - 1; }
inline constexpr dma_addr_t DMA_MAPPING_ERROR = ~0ull;

// Physically contiguous, zeroed memory whose bus address (no IOMMU: the physical address) fits
// dev's coherent DMA mask; from the device's CMA area when one exists and the caller may sleep,
// otherwise from the page allocator in the zone the mask needs. NULL (with the kernel's warning)
// when impossible.
void* dma_alloc_coherent(struct device* dev, size_t size, dma_addr_t* dma_handle, gfp_t gfp);
void dma_free_coherent(struct device* dev, size_t size, void* cpu_addr, dma_addr_t dma_handle);
int dma_set_mask_and_coherent(struct device* dev, uint64_t mask);

// The CMA area a device allocates from (the default, global area), or NULL if cma= was not given.
struct cma* dev_get_cma_area(struct device* dev);
struct page* cma_alloc(struct cma* cma, unsigned long count, unsigned int align, bool no_warn);
bool cma_release(struct cma* cma, const struct page* pages, unsigned long count);
unsigned long cma_get_size(const struct cma* cma);
