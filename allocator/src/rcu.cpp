// Simulated RCU (see rcu.h): the callback queue, grace periods and read-side sections.
#include "rcu.h"

#include <thread>

#include "bug.h"
#include "kernel.h"
#include "kmalloc.h"
#include "kmm/linux.h"
#include "slub.h"

namespace kmm {

void rcu_init(Kernel& k) { k.slab->rcu = new RcuState(); }
void rcu_free_state(RcuState* r) { delete r; }

static void enqueue(Kernel& k, RcuState::Callback cb) {
  RcuState& r = *k.slab->rcu;
  size_t pending;
  {
    std::lock_guard<std::mutex> guard(r.lock);
    r.queue.push_back(cb);
    pending = r.queue.size();
  }
  if (pending >= RCU_QHIMARK) rcu_synchronize(k);
}

void rcu_call(Kernel& k, rcu_head* head, rcu_callback_t func) {
  head->func = func;
  head->next = nullptr;
  enqueue(k, {head, nullptr, nullptr, nullptr});
}

void rcu_kvfree(Kernel& k, rcu_head* head, void* ptr) {
  if (head) {
    head->func = nullptr;
    head->next = nullptr;
  }
  enqueue(k, {head, ptr, nullptr, nullptr});
}

void rcu_defer(Kernel& k, void (*fn)(Kernel&, void*), void* arg) {
  enqueue(k, {nullptr, nullptr, fn, arg});
}

// Waits until no other CPU is inside rcu_read_lock(): the end of a grace period.
static void wait_for_readers(Kernel& k) {
  RcuState& r = *k.slab->rcu;
  unsigned self = k.cpu_id();
  if (r.readers[self].load(std::memory_order_acquire) > 0)
    report_warn(k, "kernel/rcu/tree.c", "synchronize_rcu",
                "Illegal synchronize_rcu() in RCU read-side critical section");
  for (unsigned c = 0; c < k.nr_cpu_slots(); c++)
    while (c != self && r.readers[c].load(std::memory_order_acquire) > 0) std::this_thread::yield();
}

static void invoke(Kernel& k, const RcuState::Callback& cb) {
  if (cb.internal) cb.internal(k, cb.arg);
  else if (cb.kfree_ptr) kfree_internal(k, cb.kfree_ptr, 0);
  else if (cb.head && cb.head->func) cb.head->func(cb.head);
}

void rcu_synchronize(Kernel& k) {
  RcuState& r = *k.slab->rcu;
  wait_for_readers(k);
  std::vector<RcuState::Callback> batch;
  {
    std::lock_guard<std::mutex> guard(r.lock);
    batch.swap(r.queue);
    r.gp_seq++;
  }
  for (auto& cb : batch) invoke(k, cb);
}

void rcu_barrier_all(Kernel& k) {
  for (int rounds = 0; rounds < 1000 && rcu_pending(k); rounds++) rcu_synchronize(k);
}

size_t rcu_pending(Kernel& k) {
  RcuState& r = *k.slab->rcu;
  std::lock_guard<std::mutex> guard(r.lock);
  return r.queue.size();
}

} // namespace kmm

// ---- <kmm/slab.h> wrappers ----------------------------------------------------------------------

static kmm::Kernel& K() {
  kmm::Kernel* k = kmm::Kernel::current;
  if (!k)
    throw std::logic_error("kmm: no current machine on this thread (create a kmm::MachineScope "
                           "or kmm::CpuScope first)");
  return *k;
}

void call_rcu(struct rcu_head* head, rcu_callback_t func) { kmm::rcu_call(K(), head, func); }
void synchronize_rcu(void) {
  kmm::Kernel& k = K();
  might_sleep();
  kmm::rcu_synchronize(k);
}
void rcu_barrier(void) { kmm::rcu_barrier_all(K()); }
void kvfree_call_rcu(struct rcu_head* head, void* ptr) { kmm::rcu_kvfree(K(), head, ptr); }
void kvfree_rcu_barrier(void) { kmm::rcu_barrier_all(K()); }
void rcu_read_lock(void) {
  kmm::Kernel& k = K();
  k.slab->rcu->readers[k.cpu_id()].fetch_add(1, std::memory_order_acq_rel);
}
void rcu_read_unlock(void) {
  kmm::Kernel& k = K();
  k.slab->rcu->readers[k.cpu_id()].fetch_sub(1, std::memory_order_acq_rel);
}
