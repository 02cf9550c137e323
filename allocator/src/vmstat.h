// VM event counters (enum vm_event_item, mm/vmstat.c): per CPU, summed when /proc/vmstat is read.
// The X-macro keeps the enum and the /proc/vmstat names in one list, in the kernel's order.
#pragma once

namespace kmm {

#define KMM_VM_EVENTS(X)                                                                           \
  X(PGPGIN, "pgpgin")                                                                              \
  X(PGPGOUT, "pgpgout")                                                                            \
  X(PSWPIN, "pswpin")                                                                              \
  X(PSWPOUT, "pswpout")                                                                            \
  X(PGALLOC_DMA, "pgalloc_dma")                                                                    \
  X(PGALLOC_DMA32, "pgalloc_dma32")                                                                \
  X(PGALLOC_NORMAL, "pgalloc_normal")                                                              \
  X(PGALLOC_MOVABLE, "pgalloc_movable")                                                            \
  X(ALLOCSTALL_DMA, "allocstall_dma")                                                              \
  X(ALLOCSTALL_DMA32, "allocstall_dma32")                                                          \
  X(ALLOCSTALL_NORMAL, "allocstall_normal")                                                        \
  X(ALLOCSTALL_MOVABLE, "allocstall_movable")                                                      \
  X(PGFREE, "pgfree")                                                                              \
  X(PGACTIVATE, "pgactivate")                                                                      \
  X(PGDEACTIVATE, "pgdeactivate")                                                                  \
  X(PGFAULT, "pgfault")                                                                            \
  X(PGMAJFAULT, "pgmajfault")                                                                      \
  X(PGREFILL, "pgrefill")                                                                          \
  X(PGSTEAL_KSWAPD, "pgsteal_kswapd")                                                              \
  X(PGSTEAL_DIRECT, "pgsteal_direct")                                                              \
  X(PGSCAN_KSWAPD, "pgscan_kswapd")                                                                \
  X(PGSCAN_DIRECT, "pgscan_direct")                                                                \
  X(PGSCAN_ANON, "pgscan_anon")                                                                    \
  X(PGSCAN_FILE, "pgscan_file")                                                                    \
  X(PGSTEAL_ANON, "pgsteal_anon")                                                                  \
  X(PGSTEAL_FILE, "pgsteal_file")                                                                  \
  X(SLABS_SCANNED, "slabs_scanned")                                                                \
  X(KSWAPD_LOW_WMARK_HIT_QUICKLY, "kswapd_low_wmark_hit_quickly")                                  \
  X(KSWAPD_HIGH_WMARK_HIT_QUICKLY, "kswapd_high_wmark_hit_quickly")                                \
  X(PAGEOUTRUN, "pageoutrun")                                                                      \
  X(DROP_PAGECACHE, "drop_pagecache")                                                              \
  X(DROP_SLAB, "drop_slab")                                                                        \
  X(OOM_KILL, "oom_kill")                                                                          \
  X(PGMIGRATE_SUCCESS, "pgmigrate_success")                                                        \
  X(PGMIGRATE_FAIL, "pgmigrate_fail")                                                              \
  X(COMPACT_STALL, "compact_stall")                                                                \
  X(COMPACT_FAIL, "compact_fail")                                                                  \
  X(COMPACT_SUCCESS, "compact_success")                                                            \
  X(CMA_ALLOC_SUCCESS, "cma_alloc_success")                                                        \
  X(CMA_ALLOC_FAIL, "cma_alloc_fail")

enum vm_event_item {
#define KMM_X(e, name) e,
  KMM_VM_EVENTS(KMM_X)
#undef KMM_X
      NR_VM_EVENT_ITEMS
};

extern const char* const vm_event_names[NR_VM_EVENT_ITEMS];

// Node counters (enum node_stat_item): updated by the layer that owns the memory, read by
// /proc/meminfo and /proc/vmstat. Slab counters are in bytes, as the kernel's *_B items.
#define KMM_NODE_STATS(X)                                                                          \
  X(NR_INACTIVE_ANON, "nr_inactive_anon")                                                          \
  X(NR_ACTIVE_ANON, "nr_active_anon")                                                              \
  X(NR_INACTIVE_FILE, "nr_inactive_file")                                                          \
  X(NR_ACTIVE_FILE, "nr_active_file")                                                              \
  X(NR_UNEVICTABLE, "nr_unevictable")                                                              \
  X(NR_SLAB_RECLAIMABLE_B, "nr_slab_reclaimable")                                                  \
  X(NR_SLAB_UNRECLAIMABLE_B, "nr_slab_unreclaimable")                                              \
  X(NR_ANON_MAPPED, "nr_anon_pages")                                                               \
  X(NR_FILE_MAPPED, "nr_mapped")                                                                   \
  X(NR_FILE_PAGES, "nr_file_pages")                                                                \
  X(NR_FILE_DIRTY, "nr_dirty")                                                                     \
  X(NR_WRITEBACK, "nr_writeback")                                                                  \
  X(NR_SHMEM, "nr_shmem")                                                                          \
  X(NR_KERNEL_STACK_KB, "nr_kernel_stack")                                                         \
  X(NR_PAGETABLE, "nr_page_table_pages")                                                           \
  X(NR_VMALLOC, "nr_vmalloc")

enum node_stat_item {
#define KMM_X(e, name) e,
  KMM_NODE_STATS(KMM_X)
#undef KMM_X
      NR_VM_NODE_STAT_ITEMS
};
extern const char* const node_stat_names[NR_VM_NODE_STAT_ITEMS];

struct Kernel;
// Sum of one event over all CPUs.
unsigned long sum_vm_event(const Kernel& k, vm_event_item item);

} // namespace kmm
