// <kmm/linux.h>: the Linux kernel's memory API, with the kernel's names and signatures, acting on
// the machine current on this thread (kmm::MachineScope / kmm::CpuScope). [contract]
//
// Misuse behaves as in the kernel: an impossible request returns NULL with a WARN; a bug (double
// free, bad page) is reported on the machine; the host process never crashes uncontrolled.
// Calling any of these without a current machine throws std::logic_error.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "kmm/dma.h"
#include "kmm/gfp.h"
#include "kmm/kasan.h"
#include "kmm/machine.h"
#include "kmm/page.h"
#include "kmm/slab.h"
#include "kmm/vmalloc.h"

typedef uint64_t phys_addr_t;

// clang-format off
inline constexpr unsigned int  PAGE_SHIFT     = 12;
inline constexpr unsigned long PAGE_SIZE      = 1ul << PAGE_SHIFT;
inline constexpr unsigned long PAGE_MASK      = ~(PAGE_SIZE - 1);
inline constexpr unsigned int  MAX_PAGE_ORDER = 10;
inline constexpr unsigned int  NR_PAGE_ORDERS = MAX_PAGE_ORDER + 1;
// clang-format on

// ---- page allocator -------------------------------------------------------------------------
struct page* alloc_pages(gfp_t gfp, unsigned int order);
inline struct page* alloc_page(gfp_t gfp) { return alloc_pages(gfp, 0); }
void __free_pages(struct page* page, unsigned int order);
inline void __free_page(struct page* page) { __free_pages(page, 0); }
unsigned long __get_free_pages(gfp_t gfp, unsigned int order);
inline unsigned long __get_free_page(gfp_t gfp) { return __get_free_pages(gfp, 0); }
unsigned long get_zeroed_page(gfp_t gfp);
void free_pages(unsigned long addr, unsigned int order);
inline void free_page(unsigned long addr) { free_pages(addr, 0); }
void* alloc_pages_exact(size_t size, gfp_t gfp);
void free_pages_exact(void* virt, size_t size);
void split_page(struct page* page, unsigned int order);

void* page_address(const struct page* page);
struct page* virt_to_page(const void* addr);
unsigned long page_to_pfn(const struct page* page);
struct page* pfn_to_page(unsigned long pfn);
phys_addr_t virt_to_phys(const void* addr);
void* phys_to_virt(phys_addr_t phys);
phys_addr_t page_to_phys(const struct page* page);

void get_page(struct page* page);
void put_page(struct page* page);
int page_count(const struct page* page);
struct page* compound_head(struct page* page);
unsigned int compound_order(const struct page* page);

// ---- context: locks, interrupts, sleeping ----------------------------------------------------
// A spinlock is a real lock (threads acting as CPUs contend on it) and puts its CPU in atomic
// context, so a sleeping allocation under it is reported.
typedef struct spinlock {
  std::atomic<bool> locked{false};
} spinlock_t;

void spin_lock_init(spinlock_t* lock);
void spin_lock(spinlock_t* lock);
void spin_unlock(spinlock_t* lock);
void spin_lock_irq(spinlock_t* lock);
void spin_unlock_irq(spinlock_t* lock);
unsigned long kmm_spin_lock_irqsave(spinlock_t* lock);
void spin_unlock_irqrestore(spinlock_t* lock, unsigned long flags);
#define spin_lock_irqsave(lock, flags)                                                             \
  do {                                                                                             \
    (flags) = kmm_spin_lock_irqsave(lock);                                                         \
  } while (0)

void local_irq_disable(void);
void local_irq_enable(void);
void preempt_disable(void);
void preempt_enable(void);
bool in_interrupt(void);
bool in_atomic(void);
bool irqs_disabled(void);
// Runs `fn(arg)` as a hardirq handler on the current CPU (in_interrupt() is true inside).
void kmm_run_in_irq(void (*fn)(void*), void* arg);
// Reports "BUG: sleeping function called from invalid context" if the CPU is atomic (once per
// atomic section: kmm's form of the kernel's once-a-second ratelimit).
void might_sleep(void);
int smp_processor_id(void);
