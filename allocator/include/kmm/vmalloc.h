// vmalloc and friends (include/linux/vmalloc.h): virtually contiguous, physically scattered
// allocations on real host mappings of the machine's RAM. Included by <kmm/linux.h>. [contract]
#pragma once

#include <cstddef>

#include "kmm/gfp.h"

struct page;

typedef struct {
  unsigned long pgprot;
} pgprot_t;
inline constexpr pgprot_t PAGE_KERNEL = {0x63}; // present|rw|accessed|dirty, as x86 prints it

// vm_struct flags (include/linux/vmalloc.h)
inline constexpr unsigned long VM_IOREMAP = 0x00000001;
inline constexpr unsigned long VM_ALLOC = 0x00000002;
inline constexpr unsigned long VM_MAP = 0x00000004;
inline constexpr unsigned long VM_USERMAP = 0x00000008;
inline constexpr unsigned long VM_DMA_COHERENT = 0x00000010;
inline constexpr unsigned long VM_UNINITIALIZED = 0x00000020;
inline constexpr unsigned long VM_NO_GUARD = 0x00000040;

void* vmalloc(unsigned long size);
void* vzalloc(unsigned long size);
void* __vmalloc(unsigned long size, gfp_t gfp);
void vfree(const void* addr);
void* vmap(struct page** pages, unsigned int count, unsigned long flags, pgprot_t prot);
void vunmap(const void* addr);
struct page* vmalloc_to_page(const void* addr);
unsigned long vmalloc_to_pfn(const void* addr);
bool is_vmalloc_addr(const void* addr);

// kvmalloc and friends (mm/util.c): kmalloc first; above a page, quietly and without retrying
// (__GFP_NOWARN|__GFP_NORETRY, no __GFP_NOFAIL), then vmalloc with the caller's flags if they
// allow sleeping. Non-blocking requests (GFP_ATOMIC, GFP_NOWAIT) never fall back.
void* kvmalloc_node(size_t size, gfp_t flags, int node);
inline void* kvmalloc(size_t size, gfp_t flags) { return kvmalloc_node(size, flags, -1); }
inline void* kvzalloc(size_t size, gfp_t flags) {
  return kvmalloc_node(size, flags | __GFP_ZERO, -1);
}
inline void* kvzalloc_node(size_t size, gfp_t flags, int node) {
  return kvmalloc_node(size, flags | __GFP_ZERO, node);
}
void* kvmalloc_array(size_t n, size_t size, gfp_t flags); // NULL if n * size overflows
inline void* kvcalloc(size_t n, size_t size, gfp_t flags) {
  return kvmalloc_array(n, size, flags | __GFP_ZERO);
}
void kvfree(const void* addr);
void kvfree_sensitive(const void* addr, size_t len);
