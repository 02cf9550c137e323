// mm/vmstat.c: the event and node counters and the files that show the buddy lists:
// /proc/vmstat, /proc/buddyinfo, /proc/pagetypeinfo and /proc/zoneinfo, in the kernel's layout.
#include "vmstat.h"

#include <algorithm>
#include <mutex>

#include "bug.h"
#include "kernel.h"
#include "pcp.h"

namespace kmm {

const char* const vm_event_names[NR_VM_EVENT_ITEMS] = {
#define KMM_X(e, name) name,
    KMM_VM_EVENTS(KMM_X)
#undef KMM_X
};

const char* const node_stat_names[NR_VM_NODE_STAT_ITEMS] = {
#define KMM_X(e, name) name,
    KMM_NODE_STATS(KMM_X)
#undef KMM_X
};

const char* const zone_stat_names[NR_ZONE_STAT_ITEMS] = {
    "nr_free_pages",
    "nr_zone_inactive_anon",
    "nr_zone_active_anon",
    "nr_zone_inactive_file",
    "nr_zone_active_file",
    "nr_zone_unevictable",
    "nr_zone_write_pending",
    "nr_mlock",
    "nr_bounce",
    "nr_zspages",
    "nr_free_cma",
};

unsigned long sum_vm_event(const Kernel& k, vm_event_item item) {
  unsigned long sum = 0;
  for (unsigned c = 0; c < k.nr_cpu_slots(); c++) sum += k.cpus[c].events[item];
  return sum;
}

// Node counters kept in bytes are shown in pages.
static long node_stat_pages(const Kernel& k, int item) {
  long v = k.node_page_state(static_cast<node_stat_item>(item));
  if (item == NR_SLAB_RECLAIMABLE_B || item == NR_SLAB_UNRECLAIMABLE_B) v >>= PAGE_SHIFT_;
  return v;
}

std::string proc_vmstat(Kernel& k) {
  std::string t;
  for (int i = 0; i < NR_ZONE_STAT_ITEMS; i++) {
    long sum = 0;
    for (auto& z : k.zones) sum += z.vm_stat[i].load(std::memory_order_relaxed);
    t += strprintf("%s %ld\n", zone_stat_names[i], sum);
  }
  for (int i = 0; i < NR_VM_NODE_STAT_ITEMS; i++)
    t += strprintf("%s %ld\n", node_stat_names[i], node_stat_pages(k, i));
  // Dirty thresholds (global_dirty_limits): 20% and 10% of dirtyable memory, which is free plus
  // file pages less the reserves.
  long dirtyable = 0;
  for (auto& z : k.zones) {
    long f = z.free_pages() - static_cast<long>(z._watermark[WMARK_HIGH]);
    if (f > 0) dirtyable += f;
  }
  dirtyable += k.node_page_state(NR_ACTIVE_FILE) + k.node_page_state(NR_INACTIVE_FILE);
  t += strprintf("nr_dirty_threshold %ld\n", dirtyable * 20 / 100);
  t += strprintf("nr_dirty_background_threshold %ld\n", dirtyable * 10 / 100);
  for (int i = 0; i < NR_VM_EVENT_ITEMS; i++)
    t += strprintf("%s %lu\n", vm_event_names[i], sum_vm_event(k, static_cast<vm_event_item>(i)));
  return t;
}

// frag_show_print(): "Node 0, zone      DMA      0      1 ... " with a trailing space.
std::string proc_buddyinfo(Kernel& k) {
  std::string t;
  for (auto& z : k.zones) {
    if (!z.populated()) continue;
    std::lock_guard<std::mutex> guard(z.lock);
    t += strprintf("Node %d, zone %8s ", 0, z.name);
    for (unsigned o = 0; o <= MAX_PAGE_ORDER_; o++)
      t += strprintf("%6lu ", z.free_area_[o].nr_free);
    t += "\n";
  }
  return t;
}

std::string proc_pagetypeinfo(Kernel& k) {
  std::string t = strprintf("Page block order: %u\n", pageblock_order);
  t += strprintf("Pages per block:  %lu\n", pageblock_nr_pages);
  t += "\n";
  t += strprintf("%-43s ", "Free pages count per migrate type at order");
  for (unsigned o = 0; o <= MAX_PAGE_ORDER_; o++) t += strprintf("%6u ", o);
  t += "\n";
  for (auto& z : k.zones) {
    if (!z.populated()) continue;
    std::lock_guard<std::mutex> guard(z.lock);
    for (int mt = 0; mt < MIGRATE_TYPES; mt++) {
      t += strprintf("Node %4d, zone %8s, type %12s ", 0, z.name, migratetype_names[mt]);
      for (unsigned o = 0; o <= MAX_PAGE_ORDER_; o++) {
        unsigned long n = z.free_area_[o].nr_free_mt[mt];
        // The kernel stops counting a list at 100000 entries and prints ">100000".
        bool overflow = n >= 100000;
        t += strprintf("%s%6lu ", overflow ? ">" : "", overflow ? 100000ul : n);
      }
      t += "\n";
    }
  }
  t += strprintf("\n%-23s", "Number of blocks type ");
  for (int mt = 0; mt < MIGRATE_TYPES; mt++) t += strprintf("%12s ", migratetype_names[mt]);
  t += "\n";
  for (auto& z : k.zones) {
    if (!z.populated()) continue;
    unsigned long count[MIGRATE_TYPES] = {};
    // pagetypeinfo_showblockitmes_print(): from the zone's first pfn in pageblock steps.
    for (unsigned long pfn = z.zone_start_pfn; pfn < z.end_pfn(); pfn += pageblock_nr_pages)
      count[k.mem.get_pageblock_migratetype(pfn)]++;
    t += strprintf("Node %d, zone %8s ", 0, z.name);
    for (int mt = 0; mt < MIGRATE_TYPES; mt++) t += strprintf("%12lu ", count[mt]);
    t += "\n";
  }
  return t;
}

// calculate_normal_threshold(): the per-CPU counter drift allowed before folding.
static int stat_threshold(const Kernel& k, const zone& z) {
  auto fls = [](unsigned long x) { return x ? 64 - __builtin_clzl(x) : 0; };
  unsigned long mem = z.managed_pages >> (27 - PAGE_SHIFT_);
  int threshold = 2 * fls(k.nr_cpus) * (1 + fls(mem));
  return std::min(125, threshold);
}

std::string proc_zoneinfo(Kernel& k) {
  std::string t;
  bool first_populated = true;
  for (auto& z : k.zones) {
    t += strprintf("Node %d, zone %8s", 0, z.name);
    if (z.populated() && first_populated) {
      first_populated = false;
      t += "\n  per-node stats";
      for (int i = 0; i < NR_VM_NODE_STAT_ITEMS; i++)
        t += strprintf("\n      %-12s %ld", node_stat_names[i], node_stat_pages(k, i));
    }
    t += strprintf("\n  pages free     %ld"
                   "\n        boost    %lu"
                   "\n        min      %lu"
                   "\n        low      %lu"
                   "\n        high     %lu"
                   "\n        promo    %lu"
                   "\n        spanned  %lu"
                   "\n        present  %lu"
                   "\n        managed  %lu"
                   "\n        cma      %lu",
                   z.free_pages(), z.watermark_boost, z.wmark(WMARK_MIN), z.wmark(WMARK_LOW),
                   z.wmark(WMARK_HIGH), z.wmark(WMARK_PROMO), z.spanned_pages, z.present_pages,
                   z.managed_pages, z.cma_pages);
    t += strprintf("\n        protection: (%lu", z.lowmem_reserve[0]);
    for (int i = 1; i < MAX_NR_ZONES; i++) t += strprintf(", %lu", z.lowmem_reserve[i]);
    t += ")";
    if (!z.populated()) {
      t += "\n";
      continue;
    }
    for (int i = 0; i < NR_ZONE_STAT_ITEMS; i++)
      t += strprintf("\n      %-12s %ld", zone_stat_names[i], z.vm_stat[i].load());
    t += "\n  pagesets";
    for (unsigned c = 0; c < k.nr_cpus; c++) {
      const per_cpu_pages& pcp = z.pcp[c];
      t += strprintf("\n    cpu: %u"
                     "\n              count: %d"
                     "\n              high:  %d"
                     "\n              batch: %d",
                     c, pcp.count, pcp.high, pcp.batch);
      t += strprintf("\n  vm stats threshold: %d", stat_threshold(k, z));
    }
    t += strprintf("\n  node_unreclaimable:  %u"
                   "\n  start_pfn:           %lu",
                   0u, z.zone_start_pfn);
    t += "\n";
  }
  return t;
}

} // namespace kmm
