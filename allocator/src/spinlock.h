// A test-and-test-and-set spin lock for short, mostly uncontended critical sections (the pcp
// lists, per-node slab lists). std::mutex is used where sections may be long (zone->lock).
#pragma once

#include <atomic>

namespace kmm {

class SpinLock {
public:
  void lock() {
    for (;;) {
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      while (locked_.load(std::memory_order_relaxed)) {
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
      }
    }
  }
  bool try_lock() { return !locked_.exchange(true, std::memory_order_acquire); }
  void unlock() { locked_.store(false, std::memory_order_release); }
  bool is_locked() const { return locked_.load(std::memory_order_relaxed); }

private:
  std::atomic<bool> locked_{false};
};

} // namespace kmm
