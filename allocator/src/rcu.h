// Simulated RCU (kernel/rcu): call_rcu queues, grace periods and callback invocation.
//
// Deterministic: a grace period ends only at synchronize_rcu(), rcu_barrier() (and kfree_rcu /
// kmem_cache_destroy, which call it), or when RCU_QHIMARK callbacks are pending, as the
// kernel forces quiescent states past qhimark. Callbacks then run in queue order on the calling
// thread. A grace period waits for rcu_read_lock() sections on the other CPUs to end.
#pragma once

#include <atomic>
#include <mutex>
#include <vector>

#include "kmm/slab.h"
#include "mmzone.h"

namespace kmm {

struct Kernel;

inline constexpr size_t RCU_QHIMARK = 10000;

// Invariant: every queued callback runs exactly once, after the grace period that follows its
// call_rcu(); `readers[cpu]` is that CPU's rcu_read_lock() nesting depth.
struct RcuState {
  struct Callback {
    rcu_head* head;                   // call_rcu: head->func(head)
    void* kfree_ptr;                  // kvfree_call_rcu: kfree(kfree_ptr)
    void (*internal)(Kernel&, void*); // kmm-internal deferral (slab pages of RCU caches)
    void* arg;
  };
  std::mutex lock;
  std::vector<Callback> queue; // under lock
  unsigned long gp_seq = 0;    // completed grace periods, under lock
  std::atomic<int> readers[MAX_CPUS] = {};
};

void rcu_init(Kernel& k);
void rcu_free_state(RcuState* r);
void rcu_call(Kernel& k, rcu_head* head, rcu_callback_t func);
void rcu_kvfree(Kernel& k, rcu_head* head, void* ptr);
// Runs fn(k, arg) after a grace period (used for the slabs of SLAB_TYPESAFE_BY_RCU caches).
void rcu_defer(Kernel& k, void (*fn)(Kernel&, void*), void* arg);
// Ends a grace period and runs the callbacks queued before it.
void rcu_synchronize(Kernel& k);
// Runs every pending callback, including ones queued by callbacks.
void rcu_barrier_all(Kernel& k);
size_t rcu_pending(Kernel& k);

} // namespace kmm
