// <kmm/linux.h>, page-level part and context helpers: thin wrappers that find the current
// machine and call the subsystem, plus the address-conversion checks a kernel would BUG on.
#include "kmm/linux.h"

#include <stdexcept>

#include "bug.h"
#include "kernel.h"
#include "page_alloc.h"

using kmm::Kernel;

static Kernel& K() {
  Kernel* k = Kernel::current;
  if (!k)
    throw std::logic_error("kmm: no current machine on this thread (create a kmm::MachineScope "
                           "or kmm::CpuScope first)");
  return *k;
}

// A pointer a kernel function expects to be in the direct map; NULL with a WARN otherwise.
static bool check_direct(Kernel& k, const void* addr, const char* fn) {
  if (k.mem.is_direct(addr)) return true;
  kmm::report_warn(k, "arch/x86/mm/physaddr.c", fn,
                   kmm::strprintf("%s() of an address outside the direct map", fn));
  return false;
}

static bool check_page(Kernel& k, const struct page* p, const char* fn) {
  if (k.mem.is_page(p)) return true;
  kmm::report_warn(k, "include/linux/mm.h", fn,
                   kmm::strprintf("%s() of a pointer that is not a struct page", fn));
  return false;
}

struct page* alloc_pages(gfp_t gfp, unsigned int order) {
  return kmm::__alloc_pages(K(), gfp, order);
}

void __free_pages(struct page* page, unsigned int order) {
  Kernel& k = K();
  if (!page) return;
  if (!check_page(k, page, "__free_pages")) return;
  kmm::__free_pages(k, page, order);
}

unsigned long __get_free_pages(gfp_t gfp, unsigned int order) {
  Kernel& k = K();
  // A highmem page has no address: the kernel masks __GFP_HIGHMEM off, silently (its VM_BUG_ON
  // went in 4.16).
  struct page* p = kmm::__alloc_pages(k, gfp & ~__GFP_HIGHMEM, order);
  return p ? reinterpret_cast<unsigned long>(k.mem.page_address(p)) : 0;
}

unsigned long get_zeroed_page(gfp_t gfp) { return __get_free_pages(gfp | __GFP_ZERO, 0); }

void free_pages(unsigned long addr, unsigned int order) {
  if (!addr) return;
  Kernel& k = K();
  void* v = reinterpret_cast<void*>(addr);
  if (!check_direct(k, v, "free_pages")) return;
  if (addr & (PAGE_SIZE - 1)) {
    kmm::report_warn(k, "mm/page_alloc.c", "free_pages", "VM_BUG_ON(!virt_addr_valid(addr))");
    return;
  }
  kmm::__free_pages(k, k.mem.virt_to_page(v), order);
}

void* alloc_pages_exact(size_t size, gfp_t gfp) { return kmm::alloc_pages_exact(K(), size, gfp); }
void free_pages_exact(void* virt, size_t size) { kmm::free_pages_exact(K(), virt, size); }

void split_page(struct page* page, unsigned int order) {
  Kernel& k = K();
  if (check_page(k, page, "split_page")) kmm::split_page(k, page, order);
}

void* page_address(const struct page* page) {
  Kernel& k = K();
  if (!check_page(k, page, "page_address")) return nullptr;
  return k.mem.page_address(page);
}

struct page* virt_to_page(const void* addr) {
  Kernel& k = K();
  if (!check_direct(k, addr, "virt_to_page")) return nullptr;
  return k.mem.virt_to_page(addr);
}

unsigned long page_to_pfn(const struct page* page) {
  Kernel& k = K();
  if (!check_page(k, page, "page_to_pfn")) return 0;
  return k.mem.page_to_pfn(page);
}

struct page* pfn_to_page(unsigned long pfn) {
  Kernel& k = K();
  if (!k.mem.pfn_valid(pfn)) {
    kmm::report_warn(k, "include/asm-generic/memory_model.h", "pfn_to_page",
                     kmm::strprintf("pfn 0x%lx is not valid", pfn));
    return nullptr;
  }
  return k.mem.pfn_to_page(pfn);
}

phys_addr_t virt_to_phys(const void* addr) {
  Kernel& k = K();
  if (!check_direct(k, addr, "virt_to_phys")) return 0;
  return k.mem.virt_to_phys(addr);
}

void* phys_to_virt(phys_addr_t phys) {
  Kernel& k = K();
  if (phys >= k.mem.bytes) {
    kmm::report_warn(k, "arch/x86/include/asm/io.h", "phys_to_virt",
                     kmm::strprintf("physical address %#llx beyond RAM", (unsigned long long)phys));
    return nullptr;
  }
  return k.mem.phys_to_virt(phys);
}

phys_addr_t page_to_phys(const struct page* page) {
  return static_cast<phys_addr_t>(page_to_pfn(page)) << PAGE_SHIFT;
}

void get_page(struct page* page) {
  Kernel& k = K();
  if (check_page(k, page, "get_page")) kmm::get_page(k, page);
}

void put_page(struct page* page) {
  Kernel& k = K();
  if (check_page(k, page, "put_page")) kmm::put_page(k, page);
}

int page_count(const struct page* page) {
  Kernel& k = K();
  if (!check_page(k, page, "page_count")) return 0;
  return kmm::compound_head(k, const_cast<struct page*>(page))->_refcount;
}

struct page* compound_head(struct page* page) {
  Kernel& k = K();
  if (!check_page(k, page, "compound_head")) return nullptr;
  return kmm::compound_head(k, page);
}

unsigned int compound_order(const struct page* page) {
  return (page->flags & kmm::PG_head) ? page->compound_order : 0;
}

// ---- context ---------------------------------------------------------------------------------

void spin_lock_init(spinlock_t* lock) { lock->locked.store(false, std::memory_order_relaxed); }

void spin_lock(spinlock_t* lock) {
  K().cpu().preempt_count_add(1);
  while (lock->locked.exchange(true, std::memory_order_acquire))
    while (lock->locked.load(std::memory_order_relaxed)) {}
}

void spin_unlock(spinlock_t* lock) {
  Kernel& k = K();
  if (!lock->locked.load(std::memory_order_relaxed)) {
    kmm::report_warn(k, "kernel/locking/spinlock_debug.c", "spin_unlock",
                     "BUG: spinlock already unlocked");
    return;
  }
  lock->locked.store(false, std::memory_order_release);
  if (k.cpu().preempt_count > 0) k.cpu().preempt_count_add(-1);
}

void local_irq_disable(void) { K().cpu().irq_disable_add(1); }
void local_irq_enable(void) {
  Kernel& k = K();
  if (k.cpu().irq_disable_depth > 0) k.cpu().irq_disable_add(-1);
}

void spin_lock_irq(spinlock_t* lock) {
  local_irq_disable();
  spin_lock(lock);
}
void spin_unlock_irq(spinlock_t* lock) {
  spin_unlock(lock);
  local_irq_enable();
}
unsigned long kmm_spin_lock_irqsave(spinlock_t* lock) {
  unsigned long flags = K().cpu().irq_disable_depth > 0;
  spin_lock_irq(lock);
  return flags;
}
// spin_lock_irqsave() always deepens the irq-disable count by one, so restoring is always one
// step back: to "disabled" when `flags` says irqs were already off (depth stays > 0), to
// "enabled" otherwise. Worked example: irqsave(a) -> depth 1, flags 0; irqsave(b) -> depth 2,
// flags 1; irqrestore(b) -> depth 1 (still off); irqrestore(a) -> depth 0.
void spin_unlock_irqrestore(spinlock_t* lock, unsigned long flags) {
  spin_unlock(lock);
  Kernel& k = K();
  (void)flags;
  if (k.cpu().irq_disable_depth > 0) k.cpu().irq_disable_add(-1);
}

void preempt_disable(void) { K().cpu().preempt_count_add(1); }
void preempt_enable(void) {
  Kernel& k = K();
  if (k.cpu().preempt_count > 0) k.cpu().preempt_count_add(-1);
}

bool in_interrupt(void) { return K().cpu().in_irq > 0; }
bool in_atomic(void) {
  const kmm::CpuState& c = K().cpu();
  return c.preempt_count > 0 || c.in_irq > 0;
}
bool irqs_disabled(void) { return K().cpu().irq_disable_depth > 0; }

void kmm_run_in_irq(void (*fn)(void*), void* arg) {
  Kernel& k = K();
  k.cpu().in_irq_add(1);
  k.cpu().irq_disable_add(1);
  fn(arg);
  k.cpu().irq_disable_add(-1);
  k.cpu().in_irq_add(-1);
}

void might_sleep(void) {
  Kernel& k = K();
  const kmm::CpuState& c = k.cpu();
  if (c.preempt_count > 0 || c.irq_disable_depth > 0 || c.in_irq > 0)
    kmm::report_sleep_in_atomic(k, "kernel/sched/core.c");
}

int smp_processor_id(void) { return static_cast<int>(K().cpu_id()); }
