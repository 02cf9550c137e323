// <kmm/vmalloc.h> wrappers: find the current machine and call vmalloc.cpp.
#include <stdexcept>

#include "kernel.h"
#include "kmm/linux.h"
#include "vmalloc.h"

using kmm::Kernel;

static Kernel& K() {
  Kernel* k = Kernel::current;
  if (!k)
    throw std::logic_error("kmm: no current machine on this thread (create a kmm::MachineScope "
                           "or kmm::CpuScope first)");
  return *k;
}

void* vmalloc(unsigned long size) { return kmm::__vmalloc_node(K(), size, GFP_KERNEL, "vmalloc"); }
void* vzalloc(unsigned long size) {
  return kmm::__vmalloc_node(K(), size, GFP_KERNEL | __GFP_ZERO, "vzalloc");
}
void* __vmalloc(unsigned long size, gfp_t gfp) {
  return kmm::__vmalloc_node(K(), size, gfp, "__vmalloc");
}
void vfree(const void* addr) { kmm::vfree(K(), addr); }
void* vmap(struct page** pages, unsigned int count, unsigned long flags, pgprot_t prot) {
  (void)prot;
  return kmm::vmap(K(), pages, count, flags);
}
void vunmap(const void* addr) { kmm::vunmap(K(), addr); }
struct page* vmalloc_to_page(const void* addr) {
  return kmm::vmalloc_to_page(K(), addr);
}
unsigned long vmalloc_to_pfn(const void* addr) {
  Kernel& k = K();
  struct page* p = kmm::vmalloc_to_page(k, addr);
  return p ? k.mem.page_to_pfn(p) : 0;
}
bool is_vmalloc_addr(const void* addr) { return kmm::is_vmalloc_addr(K(), addr); }
