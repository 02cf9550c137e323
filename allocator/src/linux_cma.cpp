// <kmm/dma.h> CMA wrappers: find the current machine and call cma.cpp.
#include <stdexcept>

#include "cma.h"
#include "kernel.h"
#include "kmm/linux.h"

using kmm::Kernel;

static Kernel& K() {
  Kernel* k = Kernel::current;
  if (!k)
    throw std::logic_error("kmm: no current machine on this thread (create a kmm::MachineScope "
                           "or kmm::CpuScope first)");
  return *k;
}

struct cma* dev_get_cma_area(struct device* dev) {
  (void)dev; // one global area: dma_contiguous_default_area
  Kernel& k = K();
  return k.cma ? k.cma->default_area : nullptr;
}

struct page* cma_alloc(struct cma* cma, unsigned long count, unsigned int align, bool no_warn) {
  return kmm::cma_alloc(K(), cma, count, align, no_warn);
}

bool cma_release(struct cma* cma, const struct page* pages, unsigned long count) {
  return kmm::cma_release(K(), cma, pages, count);
}

unsigned long cma_get_size(const struct cma* cma) { return cma ? cma->count << PAGE_SHIFT : 0; }
