// Simulated tasks (see task.h) and their part of the public API (kmm/pressure.h).
//
// A fault (task_touch) allocates what is missing outside lru_lock — page tables with
// GFP_PGTABLE_USER, the page with GFP_HIGHUSER_MOVABLE | __GFP_ZERO — as the task itself (comm
// and pid in reports), then links them under lru_lock. The allocation may OOM-kill the very task
// that faults: it then finds the task gone, frees what it allocated and stops.
#include "task.h"

#include <cerrno>
#include <cstring>

#include "bug.h"
#include "kernel.h"
#include "kmm/pressure.h"
#include "overcommit.h"
#include "page_alloc.h"
#include "pressure_call.h"
#include "vmscan.h"

namespace kmm {

// GFP_PGTABLE_USER: GFP_KERNEL | __GFP_ZERO | __GFP_ACCOUNT.
static constexpr gfp_t GFP_PGTABLE_USER = GFP_KERNEL | __GFP_ZERO | __GFP_ACCOUNT;

void task_init(Kernel& k) { k.tasks = std::make_unique<TaskTable>(); }

Task* find_task_Locked(Kernel& k, int pid) {
  auto it = k.tasks->tasks.find(pid);
  return it == k.tasks->tasks.end() ? nullptr : it->second.get();
}

int current_oom_score_adj(Kernel& k) {
  Task* t = find_task_Locked(k, k.cpu().current.pid);
  return t ? t->oom_score_adj : 0;
}

// Drops the reference the owner held; a page pinned by someone else (get_page) stays theirs.
static void release_page_Locked(Kernel& k, struct page* p) {
  p->mapped.mapping = nullptr;
  p->mapped.index = 0;
  p->owner_data = 0;
  p->flags &= ~PG_referenced;
  if (p->_refcount > 1) p->owner = PageOwner::Kernel;
  put_page(k, p);
}

void task_free_anon_Locked(Kernel& k, Task& t) {
  for (uint32_t pfn : t.anon) {
    struct page* p = k.mem.pfn_to_page(pfn);
    lru_del_Locked(k, p);
    k.mod_node_page_state(NR_ANON_MAPPED, -1);
    release_page_Locked(k, p);
  }
  t.anon.clear();
}

void task_release_Locked(Kernel& k, Task& t) {
  task_free_anon_Locked(k, t);
  for (uint32_t pfn : t.pgtables) {
    struct page* p = k.mem.pfn_to_page(pfn);
    k.mod_node_page_state(NR_PAGETABLE, -1);
    p->owner_data = 0;
    __free_pages(k, p, 0);
  }
  t.pgtables.clear();
  t.nr_ptes = t.nr_pmds = t.nr_puds = 0;
  vm_unacct_memory(k, static_cast<long>(t.total_vm));
  k.tasks->tasks.erase(t.pid);
}

// The page-table pages the fault at `index` needs first: a PUD at the very first fault, a PMD
// every 512 * 512 pages, a PTE page every 512 pages. Worked example: index 0 needs all three,
// index 512 one PTE page, index 262144 a PMD and a PTE page.
static int pgtables_needed(unsigned long index, bool out[3]) {
  out[0] = index == 0;                                     // PUD
  out[1] = index % (PTRS_PER_TABLE * PTRS_PER_TABLE) == 0; // PMD
  out[2] = index % PTRS_PER_TABLE == 0;                    // PTE
  return out[0] + out[1] + out[2];
}

static struct page* alloc_pgtable(Kernel& k, int pid) {
  struct page* p = __alloc_pages(k, GFP_PGTABLE_USER, 0, PageOwner::PageTable);
  if (p) p->owner_data = static_cast<uint32_t>(pid);
  return p;
}

// The bytes a task writes to its page: pid and index in each 512-byte block.
static void fill_anon_page(Kernel& k, struct page* p, int pid, uint64_t index) {
  uint64_t* words = static_cast<uint64_t*>(k.mem.page_address(p));
  for (size_t i = 0; i < PAGE_SIZE_ / sizeof(uint64_t); i += 64)
    words[i] = (uint64_t(pid) << 32) | index;
}

static long task_fault_pages(Kernel& k, int pid, unsigned long pages) {
  Reclaim& r = *k.reclaim;
  long touched = 0;
  for (unsigned long n = 0; n < pages; n++) {
    unsigned long index;
    {
      std::lock_guard<std::mutex> guard(r.lru_lock);
      Task* t = find_task_Locked(k, pid);
      if (!t) break;
      index = t->anon.size();
    }
    bool need[3];
    struct page* tables[3] = {};
    pgtables_needed(index, need);
    bool ok = true;
    for (int i = 0; i < 3 && ok; i++)
      if (need[i] && !(tables[i] = alloc_pgtable(k, pid))) ok = false;
    struct page* p =
        ok ? __alloc_pages(k, GFP_HIGHUSER_MOVABLE | __GFP_ZERO, 0, PageOwner::Anon) : nullptr;
    std::lock_guard<std::mutex> guard(r.lru_lock);
    Task* t = find_task_Locked(k, pid);
    if (!p || !t || t->anon.size() != index) { // failed, or killed while allocating
      for (struct page* pt : tables)
        if (pt) __free_pages(k, pt, 0);
      if (p) __free_pages(k, p, 0);
      break;
    }
    for (int i = 0; i < 3; i++) {
      if (!tables[i]) continue;
      t->pgtables.push_back(static_cast<uint32_t>(k.mem.page_to_pfn(tables[i])));
      k.mod_node_page_state(NR_PAGETABLE, 1);
      (i == 0 ? t->nr_puds : i == 1 ? t->nr_pmds : t->nr_ptes)++;
    }
    fill_anon_page(k, p, pid, index);
    p->mapped.mapping = t;
    p->mapped.index = index;
    p->owner_data = static_cast<uint32_t>(pid);
    t->anon.push_back(static_cast<uint32_t>(k.mem.page_to_pfn(p)));
    k.mod_node_page_state(NR_ANON_MAPPED, 1);
    // New anonymous pages start on the inactive list (lru_cache_add_inactive_or_unevictable).
    lru_add_Locked(k, p, LRU_INACTIVE_ANON);
    k.count_event(PGFAULT);
    touched++;
  }
  return touched;
}

void task_validate(Kernel& k, std::vector<std::string>& errors) {
  long anon = 0, tables = 0;
  for (auto& [pid, t] : k.tasks->tasks) {
    for (size_t i = 0; i < t->anon.size(); i++) {
      const struct page& p = k.mem.mem_map[t->anon[i]];
      if (!(p.flags & PG_alloc) || p.owner != PageOwner::Anon || p.mapped.mapping != t.get() ||
          p.mapped.index != i || !(p.flags & PG_lru))
        errors.push_back(strprintf("task: pid %d page %zu: pfn 0x%x is not its page (flags 0x%x "
                                   "owner %s)",
                                   pid, i, t->anon[i], p.flags, page_owner_name(p.owner)));
    }
    for (uint32_t pfn : t->pgtables) {
      const struct page& p = k.mem.mem_map[pfn];
      if (!(p.flags & PG_alloc) || p.owner != PageOwner::PageTable ||
          p.owner_data != static_cast<uint32_t>(pid))
        errors.push_back(
            strprintf("task: pid %d page table pfn 0x%x is not its page table", pid, pfn));
    }
    if (t->pgtables.size() != 1 + t->nr_ptes + t->nr_pmds + t->nr_puds)
      errors.push_back(strprintf("task: pid %d has %zu page-table pages, counts say %lu", pid,
                                 t->pgtables.size(), 1 + t->nr_ptes + t->nr_pmds + t->nr_puds));
    if (t->anon.size() > t->total_vm)
      errors.push_back(strprintf("task: pid %d has %zu pages but reserved only %lu", pid,
                                 t->anon.size(), t->total_vm));
    anon += static_cast<long>(t->anon.size());
    tables += static_cast<long>(t->pgtables.size());
  }
  if (anon != k.node_page_state(NR_ANON_MAPPED))
    errors.push_back(strprintf("task: tasks hold %ld anonymous pages, nr_anon_pages says %ld", anon,
                               k.node_page_state(NR_ANON_MAPPED)));
  if (tables != k.node_page_state(NR_PAGETABLE))
    errors.push_back(strprintf("task: tasks hold %ld page-table pages, nr_page_table_pages says "
                               "%ld",
                               tables, k.node_page_state(NR_PAGETABLE)));
}

// --- public API ----------------------------------------------------------------------------

int task_spawn(Machine& m, const std::string& comm, int oom_score_adj) {
  if (oom_score_adj < OOM_SCORE_ADJ_MIN || oom_score_adj > OOM_SCORE_ADJ_MAX) return -EINVAL;
  PressureCall call(m);
  Kernel& k = m.kernel();
  int pid;
  {
    std::lock_guard<std::mutex> guard(k.reclaim->lru_lock);
    pid = k.tasks->next_pid++;
  }
  struct page* pgd = alloc_pgtable(k, pid); // mm_alloc_pgd()
  if (!pgd) return -ENOMEM;
  std::lock_guard<std::mutex> guard(k.reclaim->lru_lock);
  auto t = std::make_unique<Task>();
  t->pid = pid;
  t->comm = comm.substr(0, 15); // TASK_COMM_LEN - 1
  t->oom_score_adj = oom_score_adj;
  t->pgtables.push_back(static_cast<uint32_t>(k.mem.page_to_pfn(pgd)));
  k.mod_node_page_state(NR_PAGETABLE, 1);
  k.tasks->tasks[pid] = std::move(t);
  return pid;
}

long task_mmap(Machine& m, int pid, unsigned long pages) {
  PressureCall call(m);
  Kernel& k = m.kernel();
  unsigned long total_vm;
  std::string comm;
  {
    std::lock_guard<std::mutex> guard(k.reclaim->lru_lock);
    Task* t = find_task_Locked(k, pid);
    if (!t) return -ESRCH;
    total_vm = t->total_vm;
    comm = t->comm;
  }
  TaskRef saved = k.cpu().current;
  k.cpu().current = TaskRef{pid, comm};
  int ret = vm_enough_memory(k, static_cast<long>(pages), total_vm);
  k.cpu().current = saved;
  if (ret) return ret;
  std::lock_guard<std::mutex> guard(k.reclaim->lru_lock);
  Task* t = find_task_Locked(k, pid);
  if (!t) {
    vm_unacct_memory(k, static_cast<long>(pages));
    return -ESRCH;
  }
  t->total_vm += pages;
  return 0;
}

long task_touch(Machine& m, int pid, unsigned long pages) {
  PressureCall call(m);
  Kernel& k = m.kernel();
  unsigned long missing;
  std::string comm;
  {
    std::lock_guard<std::mutex> guard(k.reclaim->lru_lock);
    Task* t = find_task_Locked(k, pid);
    if (!t) return -ESRCH;
    unsigned long want = t->anon.size() + pages;
    missing = want > t->total_vm ? want - t->total_vm : 0;
    comm = t->comm;
  }
  if (missing) {
    long ret = task_mmap(m, pid, missing);
    if (ret) return ret;
  }
  TaskRef saved = k.cpu().current;
  k.cpu().current = TaskRef{pid, comm};
  long touched = task_fault_pages(k, pid, pages);
  k.cpu().current = saved;
  return touched;
}

int task_exit(Machine& m, int pid) {
  PressureCall call(m);
  Kernel& k = m.kernel();
  std::lock_guard<std::mutex> guard(k.reclaim->lru_lock);
  Task* t = find_task_Locked(k, pid);
  if (!t) return -ESRCH;
  task_release_Locked(k, *t);
  return 0;
}

bool task_alive(Machine& m, int pid) {
  Kernel& k = m.kernel();
  std::lock_guard<std::mutex> guard(k.reclaim->lru_lock);
  return find_task_Locked(k, pid) != nullptr;
}

std::vector<TaskInfo> task_list(Machine& m) {
  Kernel& k = m.kernel();
  std::lock_guard<std::mutex> guard(k.reclaim->lru_lock);
  std::vector<TaskInfo> out;
  for (auto& [pid, t] : k.tasks->tasks)
    out.push_back(
        TaskInfo{pid, t->comm, t->oom_score_adj, t->total_vm, t->anon.size(), t->pgtables_bytes()});
  return out;
}

} // namespace kmm
