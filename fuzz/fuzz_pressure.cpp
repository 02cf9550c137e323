// Fuzz target: memory pressure. Tasks that fault in anonymous memory (with oom_score_adj from
// -1000 to 1000), page-cache files read and written, writeback, drop_caches and the other vm
// sysctls, kswapd and direct reclaim, the OOM killer (by sysrq and by allocations that find no
// memory), among page, kmalloc and vmalloc allocations, on an 8 MiB machine.
//
// Oracles, beyond the harness's (liveness, no overlap, content of allocations and of tasks'
// anonymous pages, new anonymous pages zeroed, the OOM killer never choosing an adj=-1000 task
// and its victim really gone, "no killable processes" only when none is killable, reports):
//   - validate() after every operation (reclaim and OOM change the whole machine at once);
//   - no report on a clean run other than allocation failures, WARNs for impossible requests
//     and the OOM killer's lines (and its panic when nobody can be killed: the run ends there);
//   - sysrq's OOM kill (out_of_memory) kills exactly one task when one is killable;
//   - a file never caches more pages than were read or written into it, and a deleted file
//     has none;
//   - kswapd balances to the high watermark: when a wake-up ran balance_pgdat (sync mode: at
//     once, on the waking CPU), then as it returns some zone it balanced (up to the wake-up's
//     highest_zoneidx) is above its high watermark plus lowmem_reserve, as pgdat_balanced()
//     asks - unless it ran out of priority. balance_pgdat stops unbalanced only when its
//     priority has fallen from DEF_PRIORITY (12) to 0, one step per pass at most, so after
//     fewer than 12 passes (shrink_node calls, counted by a shrinker that frees nothing) it
//     must have stopped balanced. Balanced at order N implies order 0 (free - (2^N - 1) above
//     the mark), so the order-0 check holds whatever order it was woken for.
#include <algorithm>
#include <map>

#include "harness.h"
#include "kernel.h"
#include "kmm/pressure.h"
#include "scenario_run.h"
#include "vmscan.h"
#include "vmstat.h"
#include "watermark.h"

namespace {

using namespace kmm;

// The kswapd check wraps the allocator's wakeup_kswapd hook: one machine at a time per process.
struct KswapdCheck {
  static inline fuzz::Ctx* ctx = nullptr;
  static inline void (*real)(Kernel&, zone&, gfp_t, unsigned) = nullptr;
  static inline unsigned long passes = 0; // shrink_node passes (shrink_slab calls)
  static inline struct shrinker* counter = nullptr;

  static unsigned long count_pass(struct shrinker*, struct shrink_control*) {
    passes++;
    return 0; // nothing to free: reclaim goes on as without it
  }

  static void wakeup(Kernel& k, zone& z, gfp_t gfp, unsigned order) {
    Reclaim& r = *k.reclaim;
    // The highest_zoneidx balance_pgdat takes if it runs now (wakeup_kswapd's max).
    int zi = std::max(r.kswapd_highest_zoneidx, static_cast<int>(z.idx));
    unsigned long runs = k.cpu().events[PAGEOUTRUN], passes_before = passes;
    real(k, z, gfp, order);
    if (r.threaded || k.cpu().events[PAGEOUTRUN] == runs) return; // kswapd did not run here
    unsigned long ran = passes - passes_before;
    if (ran >= static_cast<unsigned long>(DEF_PRIORITY)) return; // may have run out of priority
    std::string zones;
    for (int i = 0; i <= zi && i < MAX_NR_ZONES; i++) {
      const zone& zz = k.zones[i];
      if (!zz.managed_pages) continue;
      if (zone_watermark_ok(k, zz, 0, zz.wmark(WMARK_HIGH), zi, 0)) return;
      zones += std::string(" ") + zz.name + ": free " + std::to_string(zz.free_pages()) + " high " +
               std::to_string(zz.wmark(WMARK_HIGH)) + " reserve " +
               std::to_string(zz.lowmem_reserve[zi]) + ";";
    }
    fuzz::fail(*ctx, "kswapd stopped after " + std::to_string(ran) +
                         " pass(es), before priority ran out, with no zone up to " +
                         std::to_string(zi) + " above its high watermark:" + zones);
  }

  static void install(fuzz::Ctx& c) {
    Kernel& k = c.m->kernel();
    if (!k.reclaim || !k.hooks.wakeup_kswapd) return;
    ctx = &c;
    real = k.hooks.wakeup_kswapd;
    k.hooks.wakeup_kswapd = wakeup;
    counter = shrinker_alloc(0, "fuzz-kswapd-passes");
    counter->count_objects = count_pass;
    counter->scan_objects = [](struct shrinker*, struct shrink_control*) { return SHRINK_STOP; };
    shrinker_register(counter);
  }

  static void remove(fuzz::Ctx& c) {
    if (!counter) return;
    c.m->kernel().hooks.wakeup_kswapd = real;
    shrinker_free(counter);
    counter = nullptr;
    ctx = nullptr;
  }
};

struct PressureOracle : fuzz::Oracle {
  std::map<std::string, long> file_pages; // pages ever read or written, per file result

  void at_boot(fuzz::Ctx& c) override { KswapdCheck::install(c); }
  void at_end(fuzz::Ctx& c) override { KswapdCheck::remove(c); }

  static int live_tasks(fuzz::Ctx& c, bool killable_only) {
    int n = 0;
    for (const auto& [name, l] : c.res)
      if (l.kind == uint8_t(scn::Kind::Task) && l.live && (!killable_only || l.adj != -1000)) n++;
    return n;
  }

  int killable_before = 0, live_before = 0;

  void after(fuzz::Ctx& c, const Op& op) override {
    const std::string_view n = fuzz::op_name(op);
    if (n == "out_of_memory") {
      int live = live_tasks(c, false);
      if (killable_before > 0 && live != live_before - 1)
        fuzz::fail(c, "sysrq OOM kill with " + std::to_string(killable_before) +
                          " killable task(s) left " + std::to_string(live) + " of " +
                          std::to_string(live_before) + " alive");
      if (killable_before == 0 && live != live_before)
        fuzz::fail(c, "sysrq OOM kill with no killable task killed one");
    } else if (n == "file_read" || n == "file_write") {
      long& pages = file_pages[op.args[0].str];
      if (pages >= 0) pages += op.args[2].num;
    } else if (n == "file_delete") {
      file_pages[op.args[0].str] = -1;
    }
    for (const auto& [name, pages] : file_pages) {
      const fuzz::Live& l = c.res.at(name);
      if (l.id <= 0) continue;
      long cached = file_cached_pages(*c.m, l.id);
      if (pages < 0 && cached != -ENOENT)
        fuzz::fail(c, name + ": a deleted file still answers with " + std::to_string(cached));
      if (pages >= 0 && cached > pages)
        fuzz::fail(c, name + ": " + std::to_string(cached) + " pages cached, only " +
                          std::to_string(pages) + " ever read or written");
    }
    killable_before = live_tasks(c, true);
    live_before = live_tasks(c, false);
  }
};

const fuzz::Target target{
    "pressure",
    {"task_spawn",    "task_touch",  "task_exit", "oom_score_adj", "oom_score",
     "out_of_memory", "file_create", "file_read", "file_write",    "writeback",
     "file_delete",   "kswapd_run",  "reclaim",   "proc_write",    "proc_read",
     "write",         "read",        "fill",      "alloc_pages",   "free_pages",
     "kmalloc",       "kfree",       "vmalloc",   "vfree",         "cpu"},
    // A small machine: OOM and reclaim come after a few thousand page faults, and every page an
    // input touches costs a host page fault on the memfd at each run.
    "mem=8M nr_cpus=2",
    1,
    fuzz::report_bit(ReportKind::AllocFail) | fuzz::report_bit(ReportKind::Warn) |
        fuzz::report_bit(ReportKind::Oom),
    true,
    [] { return std::unique_ptr<fuzz::Oracle>(new PressureOracle); }};

} // namespace

KMM_FUZZ_TARGET(target)
