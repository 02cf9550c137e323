// KFENCE (mm/kfence/): a sampling detector for builds without ASan. Every Nth eligible slab
// allocation (kfence.sample_interval=N; the kernel counts milliseconds, kmm counts allocations so
// runs stay deterministic) is placed alone on a page of the KFENCE pool, between PROT_NONE guard
// pages, with canary bytes around it. A touch of a guard page or of a freed object faults and is
// reported ("BUG: KFENCE: out-of-bounds write", "use-after-free read"); canaries are checked at
// free ("memory corruption"); a bad free is an "invalid free".
//
// Pool layout (kfence_init_pool): pages 0 and 1 are guards, then object i lives on page 2 + 2i
// with its guard page after it. The pool is carved from the machine's RAM at boot (a compound
// block owned by KFENCE) and its guard pages are PROT_NONE in the direct map itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "kmm/gfp.h"

namespace kmm {

struct Kernel;

enum class KfenceState : uint8_t { Unused, Allocated, Freed };

// One object slot. Invariant: when Allocated, [addr, addr + size) lies inside its page and every
// other byte of the page holds the canary pattern 0xaa ^ (address & 7); when Freed, the page is
// PROT_NONE.
struct kfence_metadata {
  uintptr_t page = 0; // host address of the object's page
  uintptr_t addr = 0; // the object handed out
  size_t size = 0;
  std::string cache; // the kmem_cache it stands in for
  KfenceState state = KfenceState::Unused;
  int alloc_pid = 0, free_pid = 0;
  unsigned alloc_cpu = 0, free_cpu = 0;
  uint64_t alloc_time = 0, free_time = 0; // allocation count, as a deterministic clock
};

struct KfencePool {
  std::mutex lock;
  uintptr_t pool = 0; // host address of page 0
  size_t pool_pages = 0;
  unsigned long pool_pfn = 0;
  unsigned sample_interval = 0;
  uint64_t counter = 0; // eligible allocations seen
  std::vector<kfence_metadata> objects;
  std::vector<size_t> freelist; // object indices, oldest freed first
};

void kfence_init(Kernel& k);
bool is_kfence_address(const Kernel& k, const void* p);
// A sampled allocation, or nullptr when this one is not sampled (or the pool is full).
void* kfence_alloc(Kernel& k, const char* cache, size_t size, size_t align, gfp_t gfp);
// Frees a KFENCE object (after checking it); the caller has established is_kfence_address.
void kfence_free(Kernel& k, const void* p, const char* fn);
size_t kfence_ksize(Kernel& k, const void* p);
void kfence_validate(Kernel& k, std::vector<std::string>& errors);

} // namespace kmm
