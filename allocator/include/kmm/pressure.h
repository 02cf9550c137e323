// Memory pressure on a simulated machine: tasks with anonymous memory, a page cache of clean and
// dirty file pages, shrinkers, kswapd and direct reclaim, drop_caches, overcommit and the OOM
// killer (DESIGN.md section 3, "Reclaim and OOM").
//
//   auto m = kmm::Machine::boot("mem=64M");
//   int pid = kmm::task_spawn(*m, "stress", 0);
//   kmm::task_touch(*m, pid, 4096);        // 16 MiB of anonymous memory, page by page
//   int ino = kmm::file_create(*m, "log");
//   kmm::file_write(*m, ino, 0, 256);      // 256 dirty page-cache pages
//
// Every function takes the Machine and runs on the calling thread's CPU when it holds a scope on
// that machine (kmm::MachineScope / kmm::CpuScope), else as CPU 0. Errors are the kernel's
// negative errnos (-ESRCH: no such task, -ENOMEM: reservation refused, -ENOENT: no such file).
#pragma once

#include <string>
#include <vector>

#include "kmm/gfp.h"
#include "kmm/machine.h"

namespace kmm {

// ---- tasks ---------------------------------------------------------------------------------
// A new task with an empty address space (one pgd page). Returns its pid (from 100 up), or
// -EINVAL for an oom_score_adj outside -1000..1000.
int task_spawn(Machine& m, const std::string& comm, int oom_score_adj = 0);
// Reserves `pages` more of private writable memory (mmap): accounted in Committed_AS and refused
// with -ENOMEM as __vm_enough_memory() would under vm.overcommit_memory. 0 on success.
long task_mmap(Machine& m, int pid, unsigned long pages);
// Faults in `pages` more anonymous pages (GFP_HIGHUSER_MOVABLE, zeroed, page tables as needed),
// reserving first what is not reserved yet. Returns the pages touched: fewer than asked if the
// task was OOM-killed meanwhile (or an allocation failed); -ENOMEM if the reservation is refused.
long task_touch(Machine& m, int pid, unsigned long pages);
// The task exits: all its pages and page tables are freed, its reservation released.
int task_exit(Machine& m, int pid);
bool task_alive(Machine& m, int pid);

struct TaskInfo {
  int pid;
  std::string comm;
  int oom_score_adj;
  unsigned long total_vm;       // pages reserved
  unsigned long rss_anon;       // anonymous pages touched
  unsigned long pgtables_bytes; // PTE/PMD/PUD pages, as mm_pgtables_bytes()
};
// Live tasks in pid order.
std::vector<TaskInfo> task_list(Machine& m);

// ---- page cache ----------------------------------------------------------------------------
// A new empty file. Returns its inode number (from 1 up).
int file_create(Machine& m, const std::string& name);
// Reads pages [index, index + pages): missing pages are allocated clean; cached pages are marked
// accessed (a second access activates them). Returns the pages now cached in the range, or
// -ENOENT.
long file_read(Machine& m, int ino, unsigned long index, unsigned long pages);
// As file_read, and the pages become dirty.
long file_write(Machine& m, int ino, unsigned long index, unsigned long pages);
// Writes back the dirty pages of file `ino` (every file when ino == 0). Returns pages written.
long writeback(Machine& m, int ino = 0);
// Drops the file and its page cache (truncate + unlink). Pinned pages are released to the pinner.
int file_delete(Machine& m, int ino);
// Pages cached for the file (-ENOENT for no such file).
long file_cached_pages(Machine& m, int ino);

// ---- reclaim -------------------------------------------------------------------------------
// The explicit kswapd step: runs balance_pgdat() if kswapd was woken and is still needed (in
// kmm.kswapd=thread mode, waits until the thread is idle instead). Returns pages reclaimed.
unsigned long kswapd_run(Machine& m);
// Waits until the kswapd thread has nothing left to do (no-op in sync mode).
void kswapd_wait_idle(Machine& m);
// Direct reclaim as an allocation under pressure would run it: at least `nr_pages` (page cache,
// then shrinkers), with pgscan_direct/pgsteal_direct counted. Returns pages reclaimed.
unsigned long reclaim(Machine& m, unsigned long nr_pages);

} // namespace kmm

// ---- shrinkers (include/linux/shrinker.h) --------------------------------------------------
// Kernel-style API in the global namespace, acting on the current machine:
//   struct shrinker* s = shrinker_alloc(0, "my-cache");
//   s->count_objects = my_count; s->scan_objects = my_scan; s->private_data = cache;
//   shrinker_register(s);  ...  shrinker_free(s);
struct shrink_control {
  gfp_t gfp_mask;           // the allocation that caused the reclaim
  int nid;                  // node being reclaimed (always 0)
  unsigned long nr_to_scan; // objects to scan in this call (at most the shrinker's batch)
  unsigned long nr_scanned; // the callback may lower it if it scanned fewer
};

inline constexpr unsigned long SHRINK_STOP = ~0ul;      // scan_objects: cannot make progress
inline constexpr unsigned long SHRINK_EMPTY = ~0ul - 1; // count_objects: nothing at all
inline constexpr int DEFAULT_SEEKS = 2;                 // cost to recreate an object
inline constexpr long SHRINK_BATCH = 128;               // batch when shrinker->batch == 0

struct shrinker {
  unsigned long (*count_objects)(struct shrinker*, struct shrink_control*); // freeable objects
  unsigned long (*scan_objects)(struct shrinker*, struct shrink_control*);  // objects freed
  long batch;         // objects per scan_objects call; 0 = SHRINK_BATCH
  int seeks;          // DEFAULT_SEEKS; 0 = the objects are cheap: scan half of them
  unsigned flags;     // SHRINKER_* (accepted, unused)
  void* private_data; // the owner's
  // Internal: the work carried over to the next call (nr_deferred) and the registration.
  long nr_deferred;
  char name[48];
  bool registered;
  void* owner_; // the machine it is registered on
};

// shrinker_alloc(): a zeroed shrinker with seeks = DEFAULT_SEEKS, named for /sys/kernel/debug.
struct shrinker* shrinker_alloc(unsigned int flags, const char* name);
void shrinker_register(struct shrinker* shrinker);
// Unregisters (waiting for a running shrink to finish) and frees it.
void shrinker_free(struct shrinker* shrinker);
// The older API: register/unregister a caller-owned struct shrinker. 0 on success.
int register_shrinker(struct shrinker* shrinker, const char* name);
void unregister_shrinker(struct shrinker* shrinker);
