// The OOM killer (see oom_kill.h), after mm/oom_kill.c.
//
// out_of_memory() holds lru_lock from selection to the end of the reap, so the victim cannot
// gain or lose pages meanwhile. The kernel's oom_reaper runs later on its own thread; here the
// victim's anonymous memory is reaped at once and the task then exits (page tables freed,
// reservation released), so the allocation that invoked the killer can retry immediately.
#include "oom_kill.h"

#include <climits>

#include "bug.h"
#include "kernel.h"
#include "task.h"
#include "vmscan.h"

namespace kmm {

unsigned long oom_totalpages(Kernel& k) {
  unsigned long n = 0;
  for (auto& z : k.zones) n += z.managed_pages;
  return n; // + total_swap_pages: no swap device
}

long oom_badness(const Task& t, unsigned long totalpages) {
  if (t.oom_score_adj == OOM_SCORE_ADJ_MIN || t.oom_victim) return LONG_MIN;
  // get_mm_rss() + swap entries + page tables, in pages.
  long points = static_cast<long>(t.anon.size()) + static_cast<long>(t.pgtables_bytes() / 4096);
  long adj = static_cast<long>(t.oom_score_adj);
  adj *= static_cast<long>(totalpages / 1000); // integer division first, as the kernel does
  return points + adj;
}

long oom_score(const Task& t, unsigned long totalpages) {
  long badness = oom_badness(t, totalpages);
  if (badness == LONG_MIN) return 0;
  return (1000 + badness * 1000 / static_cast<long>(totalpages)) * 2 / 3;
}

// dump_header(): the invoking line, the CPU line, Mem-Info and the task table.
static std::string dump_header_Locked(Kernel& k, gfp_t gfp, int order) {
  std::string t = strprintf("%s invoked oom-killer: gfp_mask=%#x(%s), order=%d, oom_score_adj=%d\n",
                            k.cpu().current.comm.c_str(), gfp, gfp_names(gfp).c_str(), order,
                            current_oom_score_adj(k));
  t += cpu_line(k);
  t += show_mem(k);
  // dump_tasks()
  t += "Tasks state (memory values in pages):\n";
  t += "[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes "
       "swapents oom_score_adj name\n";
  for (auto& [pid, task] : k.tasks->tasks) {
    unsigned long rss = task->anon.size();
    t += strprintf("[%7d] %5d %5d %8lu %8lu %8lu %8lu %9lu %8ld %8lu         %5d %s\n", pid, 0, pid,
                   task->total_vm, rss, rss, 0ul, 0ul, static_cast<long>(task->pgtables_bytes()),
                   0ul, task->oom_score_adj, task->comm.c_str());
  }
  return t;
}

// The report of a kill: dump_header, dump_oom_victim and __oom_kill_process's line.
static void report_oom_kill_Locked(Kernel& k, std::string header, const Task& victim) {
  std::string t = std::move(header);
  t += strprintf("oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,"
                 "global_oom,task_memcg=/,task=%s,pid=%d,uid=0\n",
                 victim.comm.c_str(), victim.pid);
  std::string title =
      strprintf("Out of memory: Killed process %d (%s)", victim.pid, victim.comm.c_str());
  t += strprintf("%s total-vm:%lukB, anon-rss:%lukB, file-rss:%lukB, shmem-rss:%lukB, UID:%u "
                 "pgtables:%lukB oom_score_adj:%d\n",
                 title.c_str(), victim.total_vm << 2, victim.anon.size() << 2, 0ul, 0ul, 0u,
                 victim.pgtables_bytes() >> 10, victim.oom_score_adj);
  emit_report(k, Report{ReportKind::Oom, title, t});
}

// Nobody to kill: the kernel's message, then (except for sysrq) the panic.
static void report_oom_no_victim(Kernel& k, const std::string& header) {
  std::string title = "Out of memory and no killable processes...";
  emit_report(k, Report{ReportKind::Oom, title, header + title + "\n"});
}

// out_of_memory() with the sysrq distinction (order -1, no panic).
static bool oom_invoke(Kernel& k, gfp_t gfp, int order, bool sysrq) {
  Reclaim& r = *k.reclaim;
  bool no_victim;
  {
    std::lock_guard<std::mutex> guard(r.lru_lock);
    const unsigned long totalpages = oom_totalpages(k);
    // select_bad_process(): the highest badness; ties go to the later task.
    Task* chosen = nullptr;
    long chosen_points = LONG_MIN;
    for (auto& [pid, t] : k.tasks->tasks) {
      long points = oom_badness(*t, totalpages);
      if (points == LONG_MIN || points < chosen_points) continue;
      chosen = t.get();
      chosen_points = points;
    }
    std::string header = dump_header_Locked(k, gfp, order);
    no_victim = !chosen;
    if (chosen) {
      Task& victim = *chosen;
      report_oom_kill_Locked(k, std::move(header), victim);
      k.count_event(OOM_KILL);
      victim.oom_victim = true;
      // oom_reap_task_mm(), then the victim's exit.
      task_free_anon_Locked(k, victim);
      k.log.printk(strprintf("oom_reaper: reaped process %d (%s), now anon-rss:0kB, file-rss:0kB, "
                             "shmem-rss:0kB",
                             victim.pid, victim.comm.c_str()));
      task_release_Locked(k, victim);
      return true;
    }
    report_oom_no_victim(k, header);
  }
  if (no_victim && !sysrq) report_panic(k, "System is deadlocked on memory");
  return false;
}

bool out_of_memory(Kernel& k, gfp_t gfp, unsigned order) {
  return oom_invoke(k, gfp, static_cast<int>(order), false);
}

void moom(Kernel& k) {
  k.log.printk("sysrq: Manual OOM execution");
  if (!oom_invoke(k, GFP_KERNEL, -1, true)) k.log.printk("OOM request ignored. No task eligible");
}

void oom_init(Kernel& k) { k.hooks.out_of_memory = out_of_memory; }

} // namespace kmm
