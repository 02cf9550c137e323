// The page-fault handler (see fault.h). The range table is a fixed array of atomics so the
// signal handler reads it without locks; registration takes a mutex.
#include "fault.h"

#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <atomic>
#include <cstring>
#include <mutex>

namespace kmm {

namespace {

struct Range {
  std::atomic<uintptr_t> start{0};
  std::atomic<uintptr_t> end{0};
  std::atomic<Kernel*> k{nullptr};
  std::atomic<FaultCallback> cb{nullptr};
};

constexpr int kMaxRanges = 16;
Range ranges[kMaxRanges];
std::mutex table_lock;
struct sigaction previous;
bool installed = false;

void chain(int sig, siginfo_t* info, void* uctx) {
  if (previous.sa_flags & SA_SIGINFO) {
    if (previous.sa_sigaction) previous.sa_sigaction(sig, info, uctx);
    return;
  }
  if (previous.sa_handler == SIG_IGN) return;
  if (previous.sa_handler == SIG_DFL || previous.sa_handler == nullptr) {
    // Restore the default action and return: the access faults again and the process dies
    // with SIGSEGV as it would have without kmm.
    signal(sig, SIG_DFL);
    return;
  }
  previous.sa_handler(sig);
}

void on_segv(int sig, siginfo_t* info, void* uctx) {
  uintptr_t addr = reinterpret_cast<uintptr_t>(info->si_addr);
  for (auto& r : ranges) {
    Kernel* k = r.k.load(std::memory_order_acquire);
    if (!k || addr < r.start.load() || addr >= r.end.load()) continue;
    bool write = false;
#if defined(__x86_64__)
    auto* uc = static_cast<ucontext_t*>(uctx);
    write = uc->uc_mcontext.gregs[REG_ERR] & 2; // #PF error code bit 1: write access
#endif
    FaultCallback cb = r.cb.load();
    if (cb && cb(*k, addr, write)) return; // the callback made the access possible
  }
  chain(sig, info, uctx);
}

void install_locked() {
  if (installed) return;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &previous);
  installed = true;
}

} // namespace

void map_scratch_page(uintptr_t addr) {
  void* page = reinterpret_cast<void*>(addr & ~uintptr_t(4095));
  // MAP_FIXED over our own reservation cannot fail short of address-space exhaustion; if it
  // does, the access faults again and the default action ends the process, as without kmm.
  if (mmap(page, 4096, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) ==
      MAP_FAILED)
    signal(SIGSEGV, SIG_DFL);
}

bool register_fault_range(Kernel& k, uintptr_t start, uintptr_t end, FaultCallback cb) {
  std::lock_guard<std::mutex> guard(table_lock);
  install_locked();
  for (auto& r : ranges) {
    if (r.k.load()) continue;
    r.start.store(start);
    r.end.store(end);
    r.cb.store(cb);
    r.k.store(&k, std::memory_order_release);
    return true;
  }
  return false;
}

void unregister_fault_ranges(Kernel& k) {
  std::lock_guard<std::mutex> guard(table_lock);
  for (auto& r : ranges)
    if (r.k.load() == &k) {
      r.k.store(nullptr, std::memory_order_release);
      r.start.store(0);
      r.end.store(0);
    }
}

} // namespace kmm
