// Page reclaim (mm/vmscan.c): the LRU lists, shrink_lruvec/shrink_node, direct reclaim
// (try_to_free_pages) and kswapd (balance_pgdat), in sync mode (the waking CPU runs it at once)
// or as a real thread (kmm.kswapd=thread) acting as the hidden CPU slot nr_cpus.
//
// Lock order: Reclaim::lru_lock -> pcp->lock -> zone->lock. lru_lock is never held across an
// allocation, so reclaim entered from the allocator never finds it taken by its own thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kmm/gfp.h"
#include "mmzone.h"

namespace kmm {

struct Kernel;

enum lru_list {
  LRU_INACTIVE_ANON,
  LRU_ACTIVE_ANON,
  LRU_INACTIVE_FILE,
  LRU_ACTIVE_FILE,
  NR_LRU_LISTS
};
extern const char* const lru_list_names[NR_LRU_LISTS];

inline constexpr int DEF_PRIORITY = 12;
inline constexpr unsigned long SWAP_CLUSTER_MAX = 32; // reclaim unit
inline constexpr int MAX_RECLAIM_FAILURES = 16;       // MAX_RECLAIM_RETRIES for kswapd_failures

// One node's LRU lists (struct lruvec). Every page on lists[l] is allocated, has PG_lru, has
// PG_active iff l is an active list, is Anon for the anon lists and PageCache for the file
// lists; nr[l] == the list's length == the node counter NR_INACTIVE_ANON + l.
struct lruvec {
  pfn_list lists[NR_LRU_LISTS];
  unsigned long nr[NR_LRU_LISTS] = {};
};

struct Reclaim {
  std::mutex lru_lock; // the lists below, task page lists, file page indices
  lruvec lru;

  // kswapd (struct pglist_data's kswapd fields), under kswapd_lock.
  bool threaded = false;
  std::mutex kswapd_lock;
  std::condition_variable kswapd_wait; // kswapd sleeps here
  std::condition_variable kswapd_idle; // kswapd_wait_idle() sleeps here
  bool kswapd_pending = false;         // woken, balance_pgdat not yet run
  bool kswapd_running = false;         // inside balance_pgdat
  bool kswapd_stop = false;
  unsigned kswapd_order = 0; // largest order asked since the last run
  int kswapd_highest_zoneidx = 0;
  std::atomic<int> kswapd_failures{0}; // passes that reclaimed nothing; >= 16: unreclaimable
  std::thread thread;

  bool drop_caches_stfu = false; // bit 4 was written to drop_caches: no more log lines
};

void reclaim_init(Kernel& k); // installs the wakeup_kswapd and try_to_free_pages hooks
void kswapd_start(Kernel& k); // threaded mode: starts the thread
void kswapd_stop(Kernel& k);

// LRU list operations; the caller holds lru_lock ("Locked").
void lru_add_Locked(Kernel& k, struct page* p, lru_list l);
void lru_del_Locked(Kernel& k, struct page* p);
lru_list page_lru(const struct page* p);
// Replaces `old_page` by `new_page` at the same LRU position (migration).
void lru_replace_Locked(Kernel& k, struct page* old_page, struct page* new_page);

// try_to_free_pages(): direct reclaim for an allocation; returns pages reclaimed.
unsigned long try_to_free_pages(Kernel& k, gfp_t gfp, unsigned order);
// Reclaim at least nr_to_reclaim pages as direct reclaim would (kmm::reclaim()).
unsigned long reclaim_pages(Kernel& k, gfp_t gfp, unsigned long nr_to_reclaim);
// wakeup_kswapd(): the allocator's hook.
void wakeup_kswapd(Kernel& k, zone& z, gfp_t gfp, unsigned order);
// balance_pgdat(): reclaim until some zone up to highest_zoneidx is above its high watermark.
unsigned long balance_pgdat(Kernel& k, unsigned order, int highest_zoneidx);
// kswapd_run(): the deterministic step (see kmm/pressure.h).
unsigned long kswapd_step(Kernel& k);
void kswapd_wait_idle_k(Kernel& k);
bool pgdat_balanced(Kernel& k, unsigned order, int highest_zoneidx);

// drop_caches bit 1: frees every clean, unpinned page-cache page. Returns pages freed.
unsigned long drop_pagecache(Kernel& k);

void lru_validate(Kernel& k, std::vector<std::string>& errors);

} // namespace kmm
