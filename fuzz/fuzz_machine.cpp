// Fuzz target: the whole machine. Every operation of the scenario language except the
// expectations (expect ..., check: the harness is the oracle) and corrupt, on the machine the
// input's header byte chooses, with every generic oracle (liveness, no overlap, content, reports,
// validate every 16 operations and at the end, everything freed cleanly). Misuse is skipped:
// the kasan target is where injected faults are checked.
#include "harness.h"

namespace {

using namespace kmm;

const fuzz::Target target{"machine",
                          {"alloc_pages",
                           "free_pages",
                           "get_page",
                           "put_page",
                           "split_page",
                           "alloc_pages_exact",
                           "free_pages_exact",
                           "write",
                           "read",
                           "fill",
                           "cpu",
                           "spin_lock",
                           "spin_unlock",
                           "local_irq_disable",
                           "local_irq_enable",
                           "proc_write",
                           "proc_read",
                           "kmem_cache_create",
                           "kmem_cache_alloc",
                           "kmem_cache_zalloc",
                           "kmem_cache_free",
                           "kmem_cache_destroy",
                           "kmem_cache_shrink",
                           "kmalloc",
                           "kzalloc",
                           "krealloc",
                           "kfree",
                           "kfree_sensitive",
                           "ksize",
                           "vmalloc",
                           "vzalloc",
                           "vfree",
                           "kvmalloc",
                           "kvzalloc",
                           "kvfree",
                           "cma_alloc",
                           "cma_release",
                           "dma_alloc_coherent",
                           "dma_free_coherent",
                           "task_spawn",
                           "task_touch",
                           "task_exit",
                           "oom_score_adj",
                           "oom_score",
                           "out_of_memory",
                           "file_create",
                           "file_read",
                           "file_write",
                           "writeback",
                           "file_delete",
                           "kswapd_run",
                           "reclaim"},
                          nullptr,
                          16,
                          fuzz::report_bit(ReportKind::AllocFail) |
                              fuzz::report_bit(ReportKind::Warn) |
                              fuzz::report_bit(ReportKind::Oom),
                          true,
                          nullptr};

} // namespace

KMM_FUZZ_TARGET(target)
