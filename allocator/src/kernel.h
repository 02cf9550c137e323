// struct Kernel: the whole state of one simulated machine, and the "current" machine and CPU of
// each host thread. Every subsystem's functions take a Kernel& (the kernel's global state made
// explicit), so several machines can live in one process.
//
// Layer order (allocator/README.md): physmem -> buddy/pcp/watermark/page_alloc -> slub/kmalloc
// -> vmalloc -> cma/dma -> reclaim/oom -> procfs and linux.h on top. A lower layer never
// includes a higher one's header.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bootparams.h"
#include "dmesg.h"
#include "kmm/gfp.h"
#include "kmm/report.h"
#include "mmzone.h"
#include "physmem.h"
#include "procfs.h"
#include "vmstat.h"

// The kernel's own per-CPU accesses are one instruction; a static TLS slot is the closest a
// library linked into executables gets.
#define KMM_TLS_INITIAL_EXEC __attribute__((tls_model("initial-exec")))

struct kmem_cache; // slub.h

namespace kmm {

// The task a CPU runs on behalf of (comm/pid in reports). Tasks with memory come with reclaim/OOM.
struct TaskRef {
  int pid = 1;
  std::string comm = "kmm";
};

// Per-CPU state. Touched only by the thread holding the CPU's scope.
// Always: atomic_depth == preempt_count + irq_disable_depth + in_irq, each of them >= 0. The
// three change only through the *_add() functions below, which keep the sum; the slab fast path
// tells "any nesting at all" with one load of atomic_depth (validate() checks the sum).
struct alignas(64) CpuState {
  int preempt_count = 0;                        // spin_lock()/preempt_disable() depth
  int irq_disable_depth = 0;                    // local_irq_disable() depth
  int in_irq = 0;                               // simulated hardirq nesting
  int atomic_depth = 0;                         // the sum of the three above
  bool sleep_reported = false;                  // report_sleep_in_atomic's ratelimit (bug.h)
  TaskRef current;                              // the running task
  unsigned long events[NR_VM_EVENT_ITEMS] = {}; // vm_event_states, summed by /proc/vmstat

  void preempt_count_add(int d) {
    preempt_count += d;
    depth_add(d);
  }
  void irq_disable_add(int d) {
    irq_disable_depth += d;
    depth_add(d);
  }
  void in_irq_add(int d) {
    in_irq += d;
    depth_add(d);
  }

private:
  void depth_add(int d) {
    atomic_depth += d;
    if (atomic_depth == 0) sleep_reported = false; // the atomic section is over
  }
};

// What the allocator may ask of the layers above it. Set by those layers at boot; the defaults
// do nothing (no reclaimable memory, no OOM victim).
struct PressureHooks {
  // Wake kswapd for `zone` (it reclaims later or on its own thread). Counts wake-ups.
  void (*wakeup_kswapd)(struct Kernel&, zone& z, gfp_t gfp, unsigned order) = nullptr;
  // Direct reclaim; returns pages reclaimed.
  unsigned long (*try_to_free_pages)(struct Kernel&, gfp_t gfp, unsigned order) = nullptr;
  // The OOM killer; returns true if it freed memory (or it is worth retrying).
  bool (*out_of_memory)(struct Kernel&, gfp_t gfp, unsigned order) = nullptr;
  // Page migration for CMA: move an order-0 movable page's contents and owner links to
  // new_page; false if it cannot move now (pinned, not movable).
  bool (*migrate_page)(struct Kernel&, struct page* old_page, struct page* new_page) = nullptr;
};

class Machine;
struct VmallocState;
struct TaskTable;    // task.h
struct PageCache;    // pagecache.h
struct Reclaim;      // vmscan.h
struct ShrinkerList; // shrinker.h
struct CmaState;
struct KasanState;
struct KasanQuarantine;
struct KfencePool;
struct SlabState; // slub.h
struct SlabStateDeleter {
  void operator()(SlabState* s) const;
}; // slab_common.cpp

struct Kernel {
  Kernel() = default;
  ~Kernel(); // machine.cpp: tears the layers down in reverse boot order
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  BootParams params;
  unsigned nr_cpus = 1;
  PhysMem mem;
  zone zones[MAX_NR_ZONES];
  CpuState cpus[MAX_CPUS];
  Dmesg log;
  PressureHooks hooks;

  // Watermark inputs and results (watermark.cpp).
  int min_free_kbytes = 0;
  int user_min_free_kbytes = -1; // set by a write to /proc/sys/vm/min_free_kbytes
  unsigned watermark_scale_factor = 10;
  unsigned long totalreserve_pages = 0;
  std::atomic<unsigned long> kswapd_wakeups{0}; // wakeup_kswapd() calls (the hook does the reclaim)

  std::atomic<long> node_stat[NR_VM_NODE_STAT_ITEMS] = {}; // mod_node_page_state()
  void mod_node_page_state(node_stat_item item, long delta) {
    node_stat[item].fetch_add(delta, std::memory_order_relaxed);
  }
  long node_page_state(node_stat_item item) const {
    return node_stat[item].load(std::memory_order_relaxed);
  }

  ProcFs procfs;
  std::unique_ptr<VmallocState> vmalloc; // vmalloc.cpp

  // Memory pressure (task.cpp, pagecache.cpp, vmscan.cpp, shrinker.cpp, oom_kill.cpp,
  // overcommit.cpp). Reclaim::lru_lock guards the LRU lists, every task's page list and every
  // file's page index.
  std::unique_ptr<TaskTable> tasks;
  std::unique_ptr<PageCache> pagecache;
  std::unique_ptr<Reclaim> reclaim;
  std::unique_ptr<ShrinkerList> shrinkers;
  std::atomic<long> vm_committed_as{0}; // pages reserved by tasks (Committed_AS)
  int overcommit_memory = 0;            // vm.overcommit_memory: 0 guess, 1 always, 2 never
  long overcommit_ratio = 50;           // vm.overcommit_ratio, percent of RAM for CommitLimit
  long user_reserve_kbytes = 0;         // vm.user_reserve_kbytes (init_user_reserve)
  long admin_reserve_kbytes = 0;        // vm.admin_reserve_kbytes (init_admin_reserve)
  int swappiness = 60;                  // vm.swappiness (accepted; no swap device)
  std::unique_ptr<CmaState> cma;        // cma.cpp
  std::unique_ptr<KasanState> kasan;    // kasan.cpp; null when kasan=off
  std::unique_ptr<KasanQuarantine> kasan_quarantine; // kasan_slab.cpp
  std::unique_ptr<KfencePool> kfence; // kfence.cpp; null unless kfence.sample_interval
  std::unique_ptr<SlabState, SlabStateDeleter> slab; // slab caches, kmalloc, RCU (slub.h)
  // kmalloc_caches[type][index] (mm/slab_common.c): type 0 normal, 1 reclaimable, 2 DMA; index
  // as kmalloc_info[] (kmalloc.cpp). Set once at boot. Here rather than in SlabState: the
  // kmalloc fast path reaches a cache with one load less.
  struct ::kmem_cache* kmalloc_caches[3][14] = {};

  std::mutex report_lock;
  std::vector<Report> reports;

  uint64_t rng_state = 0;               // splitmix64, seeded from kmm.seed
  Machine* machine = nullptr;           // the owner
  bool panicked = false;                // a panic was reported; allocation stops retrying
  std::atomic<uint32_t> warned_once{0}; // bit (1 << WarnOnce): that WARN_ON_ONCE fired (bug.h)
  // Whoever writes the bytes of a page handed out to kernel code (PageOwner::Kernel) marks them
  // written (physmem.h), so handing such a page out leaves it pristine. True while a scenario
  // runs (scenario_run.h): its executors are then the only code that writes those pages.
  std::atomic<bool> kernel_page_writes_marked{false};

  // Per-thread current machine and CPU. constinit and initial-exec: every slab fast path reads
  // them, and an extern thread_local that might need dynamic initialisation is reached through a
  // wrapper call (the slab_bench 64-byte pair went from ~9 to ~7 ns without it).
  static constinit thread_local Kernel* current KMM_TLS_INITIAL_EXEC;
  // Never negative: 0 on a thread that holds no CpuScope.
  static constinit thread_local int current_cpu KMM_TLS_INITIAL_EXEC;

  CpuState& cpu() { return cpus[current_cpu]; }
  unsigned cpu_id() const { return static_cast<unsigned>(current_cpu); }
  // CPU slots with per-CPU state: the nr_cpus CPUs plus, below MAX_CPUS, the hidden slot
  // nr_cpus that the kswapd thread runs as (vmscan.cpp). Drains and event sums cover them all.
  unsigned nr_cpu_slots() const { return nr_cpus < MAX_CPUS ? nr_cpus + 1 : nr_cpus; }
  void count_event(vm_event_item item, unsigned long delta = 1) { cpu().events[item] += delta; }
  uint64_t random();
};

// The current machine; reports a usage error (and returns nullptr) when there is none.
Kernel* current_kernel();

} // namespace kmm
