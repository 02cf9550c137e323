// kvmalloc/kvfree (mm/util.c): the kmalloc-or-vmalloc helpers, with the kernel's fallback rule.
//
//   kvmalloc(2000, GFP_KERNEL)    -> kmalloc (a page or less never falls back)
//   kvmalloc(1 << 20, GFP_KERNEL) -> kmalloc tried with __GFP_NOWARN|__GFP_NORETRY, then vmalloc
//   kvmalloc(1 << 20, GFP_ATOMIC) -> kmalloc only: vmalloc may sleep
#include <cstring>
#include <limits>
#include <stdexcept>

#include "bug.h"
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

void* kvmalloc_node(size_t size, gfp_t flags, int node) {
  Kernel& k = K();
  gfp_t kmalloc_flags = flags;
  if (size > PAGE_SIZE) {
    kmalloc_flags |= __GFP_NOWARN;
    if (!(kmalloc_flags & __GFP_RETRY_MAYFAIL)) kmalloc_flags |= __GFP_NORETRY;
    kmalloc_flags &= ~__GFP_NOFAIL; // the vmalloc fallback provides NOFAIL
  }
  void* ret = kmalloc_node(size, kmalloc_flags, node);
  if (ret || size <= PAGE_SIZE) return ret;
  if (!kmm::gfpflags_allow_blocking(flags)) return nullptr; // vmalloc may sleep
  if (size > static_cast<size_t>(std::numeric_limits<int>::max())) {
    // WARN_ON_ONCE(!(flags & __GFP_NOWARN)): once per boot.
    if (kmm::warn_once_gfp(k, kmm::WarnOnce::KvmallocIntMax, flags))
      kmm::report_warn(k, "mm/util.c", "__kvmalloc_node", "kvmalloc size above INT_MAX");
    return nullptr;
  }
  return kmm::__vmalloc_node(k, size, flags, "kvmalloc_node");
}

void* kvmalloc_array(size_t n, size_t size, gfp_t flags) {
  size_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes)) return nullptr;
  return kvmalloc_node(bytes, flags, -1);
}

void kvfree(const void* addr) {
  Kernel& k = K();
  if (kmm::is_vmalloc_addr(k, addr)) kmm::vfree(k, addr);
  else kfree(addr);
}

void kvfree_sensitive(const void* addr, size_t len) {
  if (addr) std::memset(const_cast<void*>(addr), 0, len); // memzero_explicit
  kvfree(addr);
}
