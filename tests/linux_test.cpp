// Tests for allocator/src/linux.cpp: the <kmm/linux.h> wrappers. Address conversions refuse
// what a kernel would BUG on (NULL plus a WARN), the context helpers track atomic context per
// CPU, and a spinlock is a real lock that host threads acting as CPUs contend on.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "kernel.h"
#include "kmm/validate.h"
#include "page_test_util.h"

using kmm::Machine;

TEST(Linux, ConversionsRefuseForeignAddresses) {
  auto m = Machine::boot("mem=16M");
  kmm::MachineScope scope(*m);
  int local = 0;
  EXPECT_EQ(virt_to_page(&local), nullptr);
  EXPECT_EQ(virt_to_phys(&local), 0u);
  EXPECT_EQ(pfn_to_page(4096), nullptr); // one past the last pfn
  EXPECT_EQ(phys_to_virt(16ull << 20), nullptr);
  ASSERT_EQ(m->reports().size(), 4u);
  EXPECT_EQ(m->reports()[0].title, "WARNING: CPU: 0 PID: 1 at arch/x86/mm/physaddr.c virt_to_page");
  EXPECT_EQ(m->reports()[1].title, "WARNING: CPU: 0 PID: 1 at arch/x86/mm/physaddr.c virt_to_phys");
  EXPECT_EQ(m->reports()[2].title,
            "WARNING: CPU: 0 PID: 1 at include/asm-generic/memory_model.h pfn_to_page");
  EXPECT_NE(m->reports()[2].text.find("pfn 0x1000 is not valid\n"), std::string::npos);
  EXPECT_EQ(m->reports()[3].title,
            "WARNING: CPU: 0 PID: 1 at arch/x86/include/asm/io.h phys_to_virt");
  // Not a struct page: a pointer into the middle of one, or a host object.
  struct page* p = alloc_pages(GFP_KERNEL, 0);
  auto* bogus = reinterpret_cast<struct page*>(reinterpret_cast<char*>(p) + 4);
  EXPECT_EQ(page_address(bogus), nullptr);
  __free_pages(bogus, 0);
  EXPECT_EQ(page_count(reinterpret_cast<struct page*>(&local)), 0);
  ASSERT_EQ(m->reports().size(), 7u);
  EXPECT_EQ(m->reports()[4].title, "WARNING: CPU: 0 PID: 1 at include/linux/mm.h page_address");
  EXPECT_EQ(m->reports()[5].title, "WARNING: CPU: 0 PID: 1 at include/linux/mm.h __free_pages");
  __free_pages(nullptr, 0); // NULL is ignored
  EXPECT_EQ(m->reports().size(), 7u);
  __free_pages(p, 0);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Linux, FreePagesRefusesUnalignedAndForeignAddresses) {
  auto m = Machine::boot("mem=16M");
  kmm::MachineScope scope(*m);
  unsigned long a = __get_free_page(GFP_KERNEL);
  free_pages(a + 8, 0);
  int local;
  free_pages(reinterpret_cast<unsigned long>(&local), 0);
  ASSERT_EQ(m->reports().size(), 2u);
  EXPECT_EQ(m->reports()[0].title, "WARNING: CPU: 0 PID: 1 at mm/page_alloc.c free_pages");
  EXPECT_EQ(m->reports()[1].title, "WARNING: CPU: 0 PID: 1 at arch/x86/mm/physaddr.c free_pages");
  free_pages(a, 0);
  EXPECT_EQ(m->reports().size(), 2u);
}

// __get_free_pages() cannot return highmem, so it masks __GFP_HIGHMEM off without a word, as the
// kernel has since 4.16 (before, a VM_BUG_ON); kmm warned.
TEST(Linux, GetFreePagesMasksHighmemSilently) {
  auto m = Machine::boot("mem=16M");
  kmm::MachineScope scope(*m);
  unsigned long a = __get_free_pages(GFP_HIGHUSER, 1);
  ASSERT_NE(a, 0u);
  unsigned long z = get_zeroed_page(GFP_HIGHUSER_MOVABLE);
  ASSERT_NE(z, 0u);
  EXPECT_EQ(reinterpret_cast<const char*>(z)[PAGE_SIZE - 1], 0);
  EXPECT_TRUE(m->reports().empty());
  free_pages(a, 1);
  free_page(z);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Linux, ContextTracking) {
  auto m = Machine::boot("mem=16M nr_cpus=2");
  kmm::MachineScope scope(*m);
  EXPECT_FALSE(in_atomic());
  EXPECT_FALSE(irqs_disabled());
  EXPECT_FALSE(in_interrupt());
  spinlock_t a, b;
  spin_lock_init(&a);
  spin_lock_init(&b);
  unsigned long flags = 0;
  spin_lock_irqsave(&a, flags);
  EXPECT_EQ(flags, 0u);
  EXPECT_TRUE(in_atomic());
  EXPECT_TRUE(irqs_disabled());
  unsigned long inner = 0;
  spin_lock_irqsave(&b, inner); // nested: irqs were already off
  EXPECT_EQ(inner, 1u);
  spin_unlock_irqrestore(&b, inner);
  EXPECT_TRUE(irqs_disabled());
  spin_unlock_irqrestore(&a, flags);
  EXPECT_FALSE(irqs_disabled());
  EXPECT_FALSE(in_atomic());
  preempt_disable();
  EXPECT_TRUE(in_atomic());
  might_sleep();
  preempt_enable();
  might_sleep(); // fine now
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title,
            "BUG: sleeping function called from invalid context at kernel/sched/core.c");
  static bool seen_irq;
  kmm_run_in_irq([](void*) { seen_irq = in_interrupt() && in_atomic() && irqs_disabled(); },
                 nullptr);
  EXPECT_TRUE(seen_irq);
  EXPECT_FALSE(in_interrupt());
  // Context is per CPU: CPU 1 is not atomic while CPU 0 holds a lock.
  spin_lock(&a);
  {
    kmm::CpuScope cpu1(*m, 1);
    EXPECT_FALSE(in_atomic());
    EXPECT_EQ(smp_processor_id(), 1);
  }
  EXPECT_TRUE(in_atomic());
  spin_unlock(&a);
  spin_unlock(&a); // already unlocked
  ASSERT_EQ(m->reports().size(), 2u);
  EXPECT_EQ(m->reports()[1].title,
            "WARNING: CPU: 0 PID: 1 at kernel/locking/spinlock_debug.c spin_unlock");
}

TEST(Linux, SpinlockExcludesThreadsActingAsCpus) {
  auto m = Machine::boot("mem=16M nr_cpus=4");
  spinlock_t lock;
  spin_lock_init(&lock);
  long counter = 0; // protected by lock only
  std::vector<std::thread> threads;
  for (unsigned cpu = 0; cpu < 4; cpu++)
    threads.emplace_back([&, cpu] {
      kmm::CpuScope scope(*m, cpu);
      for (int i = 0; i < 2000; i++) {
        spin_lock(&lock);
        counter++;
        // A GFP_ATOMIC allocation under the lock is legal and reports nothing.
        if (i % 100 == 0) __free_pages(alloc_pages(GFP_ATOMIC, 0), 0);
        spin_unlock(&lock);
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter, 8000);
  EXPECT_TRUE(m->reports().empty());
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Linux, EveryApiFileNeedsACurrentMachine) {
  // Each wrapper file of <kmm/linux.h> finds its machine the same way: none on this thread is a
  // programming error of the caller, thrown, never a crash.
  ASSERT_EQ(kmm::current_machine(), nullptr);
  dma_addr_t h = 0;
  EXPECT_THROW(kmalloc(8, GFP_KERNEL), std::logic_error);          // linux_slab.cpp
  EXPECT_THROW(vmalloc(PAGE_SIZE), std::logic_error);              // linux_vmalloc.cpp
  EXPECT_THROW(kvmalloc(PAGE_SIZE, GFP_KERNEL), std::logic_error); // util.cpp
  EXPECT_THROW(dev_get_cma_area(nullptr), std::logic_error);       // linux_cma.cpp
  EXPECT_THROW(dma_alloc_coherent(nullptr, 8, &h, GFP_KERNEL), std::logic_error); // dma.cpp
  EXPECT_THROW(devm_kmalloc(nullptr, 8, GFP_KERNEL), std::logic_error);           // devres.cpp
  EXPECT_THROW(rcu_barrier(), std::logic_error);                                  // rcu.cpp
  char c = 0;
  EXPECT_THROW(kasan_check_read(&c, 1), std::logic_error); // linux_kasan.cpp
  try {
    kmalloc(8, GFP_KERNEL);
  } catch (const std::logic_error& e) {
    EXPECT_STREQ(e.what(), "kmm: no current machine on this thread (create a kmm::MachineScope "
                           "or kmm::CpuScope first)");
  }
}

TEST(Linux, SpinLockIrqDisablesInterruptsWhileHeld) {
  auto m = Machine::boot("mem=16M");
  kmm::MachineScope scope(*m);
  spinlock_t lock;
  spin_lock_init(&lock);
  spin_lock_irq(&lock);
  EXPECT_TRUE(irqs_disabled());
  EXPECT_TRUE(in_atomic());
  spin_unlock_irq(&lock);
  EXPECT_FALSE(irqs_disabled());
  EXPECT_FALSE(in_atomic());
  EXPECT_TRUE(m->reports().empty());
}

TEST(Linux, SpinLockWaitsForTheHolder) {
  auto m = Machine::boot("mem=16M nr_cpus=2");
  kmm::MachineScope scope(*m);
  spinlock_t lock;
  spin_lock_init(&lock);
  std::atomic<bool> waiting{false};
  int value = 0; // written under the lock
  int seen = -1;
  spin_lock(&lock);
  std::thread cpu1([&] {
    kmm::CpuScope c(*m, 1);
    waiting = true;
    spin_lock(&lock); // spins until CPU 0 lets go
    seen = value;
    spin_unlock(&lock);
  });
  while (!waiting) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(20)); // let CPU 1 reach the spin
  value = 42;
  spin_unlock(&lock);
  cpu1.join();
  EXPECT_EQ(seen, 42);
  EXPECT_TRUE(m->reports().empty());
}
