// Simulated tasks (struct task_struct + its mm_struct, reduced to what memory pressure needs):
// pid, comm, oom_score_adj, a reserved size (total_vm, in Committed_AS), anonymous pages faulted
// in page by page, and the page tables that map them.
//
// Page tables, as on x86_64 with 4-level paging: the pgd page is allocated with the mm (counted
// in NR_PAGETABLE but not in mm_pgtables_bytes, as the kernel does); one PTE page per 512 pages,
// one PMD page per 512 PTE pages and one PUD page are allocated on the first fault needing them.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace kmm {

struct Kernel;

inline constexpr int OOM_SCORE_ADJ_MIN = -1000;
inline constexpr int OOM_SCORE_ADJ_MAX = 1000;
inline constexpr unsigned long PTRS_PER_TABLE = 512;

// Invariants (task_validate): every pfn in anon[] is an allocated Anon page whose
// mapped.mapping is this task and mapped.index its position; every pfn in pgtables[] is an
// allocated PageTable page with owner_data == pid; committed >= anon.size().
struct Task {
  int pid = 0;
  std::string comm;
  int oom_score_adj = 0;
  unsigned long total_vm = 0;     // pages reserved (task_mmap), charged to vm_committed_as
  std::vector<uint32_t> anon;     // anonymous pages by index (page i maps address i * 4K)
  std::vector<uint32_t> pgtables; // pgd first, then PUD/PMD/PTE pages in allocation order
  unsigned long nr_ptes = 0, nr_pmds = 0, nr_puds = 0;
  bool oom_victim = false; // chosen by the OOM killer (MMF_OOM_SKIP once reaped)

  unsigned long pgtables_bytes() const { return (nr_ptes + nr_pmds + nr_puds) * 4096; }
};

// The task list (tasks by pid). Under Reclaim::lru_lock.
struct TaskTable {
  std::map<int, std::unique_ptr<Task>> tasks;
  int next_pid = 100;
};

void task_init(Kernel& k);
// Under lru_lock.
Task* find_task_Locked(Kernel& k, int pid);
// Frees the task's anonymous pages (the OOM reaper's work); the caller holds lru_lock.
void task_free_anon_Locked(Kernel& k, Task& t);
// Frees everything and removes the task; the caller holds lru_lock. `t` is gone afterwards.
void task_release_Locked(Kernel& k, Task& t);
// The oom_score_adj of the task running on this CPU (0 for a kernel context).
int current_oom_score_adj(Kernel& k);

void task_validate(Kernel& k, std::vector<std::string>& errors);

} // namespace kmm
