// The memory-pressure layer's boot, /proc files, validation and the reclaim part of the public
// API (kmm/pressure.h). Tasks, page cache, reclaim, shrinkers, OOM and overcommit each live in
// their own file; this one wires them into the machine.
//
// Files: /proc/<pid>/oom_score, /proc/<pid>/oom_score_adj (-1000..1000), /proc/sysrq-trigger
// ('f': the OOM killer, 'm': show_mem), /proc/sys/vm/{drop_caches, overcommit_memory,
// overcommit_ratio, swappiness, user_reserve_kbytes, admin_reserve_kbytes}.
#include "pressure_init.h"

#include <cerrno>
#include <climits>

#include "buddy.h"
#include "bug.h"
#include "kernel.h"
#include "kmm/pressure.h"
#include "migrate.h"
#include "oom_kill.h"
#include "overcommit.h"
#include "page_census.h"
#include "pagecache.h"
#include "pressure_call.h"
#include "shrinker.h"
#include "task.h"
#include "vmscan.h"

namespace kmm {

// --- /proc -----------------------------------------------------------------------------------

// "/proc/123/oom_score" -> pid 123, file "oom_score".
static bool parse_pid_path(const std::string& path, int* pid, std::string* file) {
  const std::string prefix = "/proc/";
  if (path.compare(0, prefix.size(), prefix) != 0) return false;
  size_t i = prefix.size(), start = i;
  while (i < path.size() && path[i] >= '0' && path[i] <= '9') i++;
  if (i == start || i - start > 9 || i >= path.size() || path[i] != '/') return false;
  *pid = std::stoi(path.substr(start, i - start));
  *file = path.substr(i + 1);
  return true;
}

static bool pid_resolver(Kernel& k, const std::string& path, ProcFile* out) {
  int pid;
  std::string file;
  if (!parse_pid_path(path, &pid, &file)) return false;
  if (file != "oom_score" && file != "oom_score_adj") return false;
  {
    std::lock_guard<std::mutex> guard(k.reclaim->lru_lock);
    if (!find_task_Locked(k, pid)) return false;
  }
  if (file == "oom_score") {
    out->read = [pid](Kernel& k) {
      std::lock_guard<std::mutex> guard(k.reclaim->lru_lock);
      Task* t = find_task_Locked(k, pid);
      return std::to_string(t ? oom_score(*t, oom_totalpages(k)) : 0) + "\n";
    };
    out->write = nullptr;
    return true;
  }
  out->read = [pid](Kernel& k) {
    std::lock_guard<std::mutex> guard(k.reclaim->lru_lock);
    Task* t = find_task_Locked(k, pid);
    return std::to_string(t ? t->oom_score_adj : 0) + "\n";
  };
  out->write = [pid](Kernel& k, const std::string& text) {
    long v;
    if (!parse_sysctl_int(text, &v) || v < OOM_SCORE_ADJ_MIN || v > OOM_SCORE_ADJ_MAX)
      return -EINVAL;
    std::lock_guard<std::mutex> guard(k.reclaim->lru_lock);
    Task* t = find_task_Locked(k, pid);
    if (!t) return -ESRCH;
    t->oom_score_adj = static_cast<int>(v);
    return 0;
  };
  return true;
}

static ProcFile int_file(long (*get)(Kernel&), void (*set)(Kernel&, long), long lo, long hi) {
  ProcFile f;
  f.read = [get](Kernel& k) { return std::to_string(get(k)) + "\n"; };
  f.write = [set, lo, hi](Kernel& k, const std::string& text) {
    long v;
    if (!parse_sysctl_int(text, &v) || v < lo || v > hi) return -EINVAL;
    set(k, v);
    return 0;
  };
  return f;
}

// drop_caches_sysctl_handler(): 1 page cache, 2 slab, 3 both; 4 silences the log line.
static int drop_caches_write(Kernel& k, const std::string& text) {
  long v;
  if (!parse_sysctl_int(text, &v) || v < 1 || v > 4) return -EINVAL;
  if (v & 1) {
    drop_pagecache(k);
    k.count_event(DROP_PAGECACHE);
  }
  if (v & 2) {
    drop_slab(k);
    k.count_event(DROP_SLAB);
  }
  if (!k.reclaim->drop_caches_stfu) {
    const TaskRef& cur = k.cpu().current;
    k.log.printk(strprintf("%s (%d): drop_caches: %ld", cur.comm.c_str(), cur.pid, v));
  }
  if (v & 4) k.reclaim->drop_caches_stfu = true;
  return 0;
}

static int sysrq_write(Kernel& k, const std::string& text) {
  if (text.empty()) return 0;
  switch (text[0]) {
  case 'f': moom(k); break;
  case 'm':
    k.log.printk("sysrq: Show Memory");
    k.log.printk(show_mem(k));
    break;
  default: k.log.printk("sysrq: HELP : show-memory-usage(m) manual-oom-kill(f)"); break;
  }
  return 0;
}

static void register_pressure_procfs(Kernel& k) {
  ProcFs& fs = k.procfs;
  fs.add_resolver(pid_resolver);
  fs.add("/proc/sysrq-trigger", {nullptr, sysrq_write});
  fs.add("/proc/sys/vm/drop_caches", {nullptr, drop_caches_write});
  fs.add("/proc/sys/vm/overcommit_memory",
         int_file([](Kernel& k) { return static_cast<long>(k.overcommit_memory); },
                  [](Kernel& k, long v) { k.overcommit_memory = static_cast<int>(v); }, 0, 2));
  fs.add("/proc/sys/vm/overcommit_ratio",
         int_file([](Kernel& k) { return k.overcommit_ratio; },
                  [](Kernel& k, long v) { k.overcommit_ratio = v; }, 0, INT_MAX));
  fs.add("/proc/sys/vm/swappiness",
         int_file([](Kernel& k) { return static_cast<long>(k.swappiness); },
                  [](Kernel& k, long v) { k.swappiness = static_cast<int>(v); }, 0, 200));
  fs.add("/proc/sys/vm/user_reserve_kbytes",
         int_file([](Kernel& k) { return k.user_reserve_kbytes; },
                  [](Kernel& k, long v) { k.user_reserve_kbytes = v; }, 0, LONG_MAX));
  fs.add("/proc/sys/vm/admin_reserve_kbytes",
         int_file([](Kernel& k) { return k.admin_reserve_kbytes; },
                  [](Kernel& k, long v) { k.admin_reserve_kbytes = v; }, 0, LONG_MAX));
}

// --- boot and teardown -----------------------------------------------------------------------

void pressure_init(Kernel& k) {
  const BootParams& p = k.params;
  if (p.kswapd != "sync" && p.kswapd != "thread")
    throw BootError("boot parameter 'kmm.kswapd=" + p.kswapd + "': expected sync or thread");
  if (p.kswapd == "thread" && k.nr_cpus >= MAX_CPUS)
    throw BootError("boot parameter 'kmm.kswapd=thread': kswapd needs a CPU slot; use nr_cpus "
                    "below " +
                    std::to_string(MAX_CPUS));
  if (p.overcommit_memory > 2)
    throw BootError("boot parameter 'vm.overcommit_memory=" + std::to_string(p.overcommit_memory) +
                    "': out of range (0 .. 2)");
  if (p.swappiness > 200)
    throw BootError("boot parameter 'vm.swappiness=" + std::to_string(p.swappiness) +
                    "': out of range (0 .. 200)");
  k.overcommit_memory = static_cast<int>(p.overcommit_memory);
  k.overcommit_ratio = static_cast<long>(p.overcommit_ratio);
  k.swappiness = static_cast<int>(p.swappiness);
  task_init(k);
  pagecache_init(k);
  shrinker_init(k);
  reclaim_init(k);
  oom_init(k);
  k.hooks.migrate_page = migrate_page_owner; // CMA moves Anon/PageCache pages (cma.cpp)
  overcommit_init(k);
  register_pressure_procfs(k);
  if (p.kswapd == "thread") kswapd_start(k);
}

void pressure_exit(Kernel& k) { kswapd_stop(k); }

// --- validate --------------------------------------------------------------------------------

void pressure_validate(Kernel& k, std::vector<std::string>& errors, const PageCensus& census) {
  if (!k.reclaim) return;
  std::lock_guard<std::mutex> guard(k.reclaim->lru_lock);
  lru_validate(k, errors);
  task_validate(k, errors);
  pagecache_validate(k, errors);
  // Every Anon/PageCache/PageTable page in mem_map is one of the pages counted above.
  const long owned[3] = {census.anon, census.pagecache, census.pagetable};
  const node_stat_item items[3] = {NR_ANON_MAPPED, NR_FILE_PAGES, NR_PAGETABLE};
  const PageOwner owners[3] = {PageOwner::Anon, PageOwner::PageCache, PageOwner::PageTable};
  for (int i = 0; i < 3; i++)
    if (owned[i] != k.node_page_state(items[i]))
      errors.push_back(strprintf("pressure: %ld %s pages in mem_map, owners account for %ld",
                                 owned[i], page_owner_name(owners[i]),
                                 k.node_page_state(items[i])));
  // meminfo arithmetic: Cached is the file LRU, AnonPages the anon LRU, Committed_AS the tasks'
  // reservations.
  long file_lru = k.node_page_state(NR_ACTIVE_FILE) + k.node_page_state(NR_INACTIVE_FILE);
  long anon_lru = k.node_page_state(NR_ACTIVE_ANON) + k.node_page_state(NR_INACTIVE_ANON);
  if (file_lru != k.node_page_state(NR_FILE_PAGES))
    errors.push_back(
        strprintf("meminfo: Active(file) + Inactive(file) = %ld pages but Cached = %ld", file_lru,
                  k.node_page_state(NR_FILE_PAGES)));
  if (anon_lru != k.node_page_state(NR_ANON_MAPPED))
    errors.push_back(strprintf("meminfo: Active(anon) + Inactive(anon) = %ld pages but AnonPages = "
                               "%ld",
                               anon_lru, k.node_page_state(NR_ANON_MAPPED)));
  long committed = 0;
  for (auto& [pid, t] : k.tasks->tasks) committed += static_cast<long>(t->total_vm);
  if (committed != k.vm_committed_as.load())
    errors.push_back(strprintf("meminfo: tasks reserve %ld pages but Committed_AS = %ld", committed,
                               k.vm_committed_as.load()));
}

// --- public API: reclaim -------------------------------------------------------------------

unsigned long kswapd_run(Machine& m) {
  PressureCall call(m);
  return kswapd_step(m.kernel());
}

void kswapd_wait_idle(Machine& m) { kswapd_wait_idle_k(m.kernel()); }

unsigned long reclaim(Machine& m, unsigned long nr_pages) {
  PressureCall call(m);
  return reclaim_pages(m.kernel(), GFP_KERNEL, nr_pages);
}

} // namespace kmm
