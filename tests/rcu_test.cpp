// Tests for allocator/src/rcu.cpp: deterministic grace periods, call_rcu/kfree_rcu, rcu_barrier,
// SLAB_TYPESAFE_BY_RCU slabs, and slub_kunit's kfree_rcu cases (7 and 8).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "kernel.h"
#include "kmm/linux.h"
#include "kmm/validate.h"
#include "rcu.h"
#include "slub.h"
#include "test_util.h"

using kmm::Machine;

namespace {
int callbacks = 0;
void count_cb(rcu_head*) { callbacks++; }
struct Obj {
  int value;
  rcu_head rcu;
};
} // namespace

TEST(Rcu, CallbacksRunOnlyAfterAGracePeriodInOrder) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  callbacks = 0;
  rcu_head a, b;
  call_rcu(&a, count_cb);
  call_rcu(&b, count_cb);
  EXPECT_EQ(callbacks, 0);
  EXPECT_EQ(kmm::rcu_pending(m->kernel()), 2u);
  synchronize_rcu();
  EXPECT_EQ(callbacks, 2);
  EXPECT_EQ(kmm::rcu_pending(m->kernel()), 0u);
  rcu_barrier(); // nothing pending: a no-op
  EXPECT_EQ(callbacks, 2);
}

TEST(Rcu, KfreeRcuFreesAtTheBarrier) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  struct kmem_cache* s = kmem_cache_create("rcuobj", sizeof(Obj), 0, SLAB_NO_MERGE, nullptr);
  auto* o = static_cast<Obj*>(kmem_cache_alloc(s, GFP_KERNEL));
  o->value = 7;
  kfree_rcu(o, rcu);
  EXPECT_EQ(o->value, 7); // still there until the grace period ends
  auto info = [&] { return m->proc_read("/sys/kernel/slab/rcuobj/objects"); };
  kmem_cache_shrink(s);
  EXPECT_EQ(info(), "1\n");
  rcu_barrier();
  kmem_cache_shrink(s);
  EXPECT_EQ(info(), "0\n");
  kmem_cache_destroy(s);
  EXPECT_TRUE(m->reports().empty());
}

// slub_kunit 7: test_kfree_rcu — destroy right after kfree_rcu must wait for it: no errors.
TEST(Rcu, KunitKfreeRcuThenDestroy) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  struct kmem_cache* s = kmem_cache_create("TestSlub_kfree_rcu", sizeof(rcu_head), 0,
                                           SLAB_NO_MERGE | SLAB_NO_USER_FLAGS, nullptr);
  struct Holder {
    rcu_head rcu;
  };
  auto* p = static_cast<Holder*>(kmem_cache_alloc(s, GFP_KERNEL));
  kfree_rcu(p, rcu);
  kmem_cache_destroy(s);
  EXPECT_EQ(m->kernel().slab->slab_errors.load(), 0);
  EXPECT_TRUE(m->reports().empty());
}

// slub_kunit 8: test_kfree_rcu_wq_destroy — the destroy runs on another context (here another
// CPU's thread) after a delay; 10 rounds.
TEST(Rcu, KunitKfreeRcuDestroyFromAnotherCpu) {
  auto m = Machine::boot("nr_cpus=2");
  for (int round = 0; round < 10; round++) {
    struct kmem_cache* s;
    {
      kmm::CpuScope c0(*m, 0);
      s = kmem_cache_create("TestSlub_kfree_rcu_wq_destroy", 32, 0,
                            SLAB_NO_MERGE | SLAB_NO_USER_FLAGS, nullptr);
      struct Holder {
        rcu_head rcu;
        char pad[16];
      };
      auto* p = static_cast<Holder*>(kmem_cache_alloc(s, GFP_KERNEL));
      kfree_rcu(p, rcu);
    }
    std::thread t([&] {
      kmm::CpuScope c1(*m, 1);
      std::this_thread::sleep_for(std::chrono::microseconds(round * 50));
      kmem_cache_destroy(s);
    });
    t.join();
  }
  EXPECT_EQ(m->kernel().slab->slab_errors.load(), 0);
  EXPECT_TRUE(m->reports().empty());
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Rcu, TypesafeByRcuSlabsWaitForAGracePeriod) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  struct kmem_cache* s = kmem_cache_create("typesafe", 64, 0, SLAB_TYPESAFE_BY_RCU, nullptr);
  EXPECT_EQ(s->offset, 64u); // free pointer outside the object: readers may still look inside
  EXPECT_EQ(m->proc_read("/sys/kernel/slab/typesafe/destroy_by_rcu"), "1\n");
  long before = kmm::test::proc_value(*m, "/proc/meminfo", "SUnreclaim");
  auto* p = static_cast<int*>(kmem_cache_alloc(s, GFP_KERNEL));
  *p = 42;
  kmem_cache_free(s, p);
  kmem_cache_shrink(s); // the slab is discarded, but its page waits for the grace period
  EXPECT_EQ(kmm::test::proc_value(*m, "/proc/meminfo", "SUnreclaim") - before, 4);
  EXPECT_EQ(*p, 42); // type-safe memory: still the object's bytes, not reused as a page yet
  EXPECT_TRUE(kmm::validate(*m).empty());
  synchronize_rcu();
  EXPECT_EQ(kmm::test::proc_value(*m, "/proc/meminfo", "SUnreclaim"), before);
  kmem_cache_destroy(s);
  EXPECT_TRUE(m->reports().empty());
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Rcu, SynchronizeWaitsForReadersOnOtherCpus) {
  auto m = Machine::boot("nr_cpus=2");
  std::atomic<int> phase{0};
  std::atomic<bool> done{false};
  std::thread reader([&] {
    kmm::CpuScope c1(*m, 1);
    rcu_read_lock();
    phase = 1;
    while (phase.load() < 2) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_FALSE(done.load()); // the grace period cannot end inside our section
    rcu_read_unlock();
  });
  {
    kmm::CpuScope c0(*m, 0);
    while (phase.load() < 1) std::this_thread::yield();
    phase = 2;
    synchronize_rcu();
    done = true;
  }
  reader.join();
  EXPECT_TRUE(m->reports().empty());
}

TEST(Rcu, SynchronizeInsideAReadSectionIsReported) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  rcu_read_lock();
  synchronize_rcu();
  rcu_read_unlock();
  EXPECT_EQ(kmm::test::count_reports(*m, "WARNING"), 1u);
  EXPECT_NE(
      m->reports()[0].text.find("Illegal synchronize_rcu() in RCU read-side critical section"),
      std::string::npos);
}

TEST(Rcu, QhimarkForcesAGracePeriod) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  callbacks = 0;
  std::vector<rcu_head> heads(kmm::RCU_QHIMARK);
  for (auto& h : heads) call_rcu(&h, count_cb);
  EXPECT_EQ(callbacks, int(kmm::RCU_QHIMARK));
}
