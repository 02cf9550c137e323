// /proc/meminfo (fs/proc/meminfo.c): the kernel's lines in the kernel's order, "%-16s%8lu kB"
// style (show_val_kb). Lines for memory kmm does not model (swap, huge pages, zswap) are shown
// as the kernel shows them on a machine without it.
#include <algorithm>

#include "bug.h"
#include "kernel.h"
#include "overcommit.h"

namespace kmm {

static long totalram_pages(const Kernel& k) {
  long n = 0;
  for (auto& z : k.zones) n += static_cast<long>(z.managed_pages);
  return n;
}

// si_mem_available()
long si_mem_available(const Kernel& k) {
  long wmark_low = 0, free = 0;
  for (auto& z : k.zones) {
    wmark_low += static_cast<long>(z.wmark(WMARK_LOW));
    free += z.free_pages();
  }
  long available = free - static_cast<long>(k.totalreserve_pages);
  long pagecache = k.node_page_state(NR_ACTIVE_FILE) + k.node_page_state(NR_INACTIVE_FILE);
  pagecache -= std::min(pagecache / 2, wmark_low);
  available += pagecache;
  long reclaimable = k.node_page_state(NR_SLAB_RECLAIMABLE_B) >> PAGE_SHIFT_;
  reclaimable -= std::min(reclaimable / 2, wmark_low);
  available += reclaimable;
  return std::max(available, 0l);
}

std::string proc_meminfo(Kernel& k) {
  std::string t;
  auto kb = [&](const char* label, long pages) {
    t += strprintf("%-16s%8lu kB\n", (std::string(label) + ":").c_str(),
                   static_cast<unsigned long>(pages) << (PAGE_SHIFT_ - 10));
  };
  auto kb_raw = [&](const char* label, long kbytes) {
    t += strprintf("%-16s%8lu kB\n", (std::string(label) + ":").c_str(),
                   static_cast<unsigned long>(kbytes));
  };
  long free = 0, cma_free = 0, cma_total = 0;
  for (auto& z : k.zones) {
    free += z.free_pages();
    cma_free += z.vm_stat[NR_FREE_CMA_PAGES].load();
    cma_total += static_cast<long>(z.cma_pages);
  }
  const long totalram = totalram_pages(k);
  const long active_anon = k.node_page_state(NR_ACTIVE_ANON);
  const long inactive_anon = k.node_page_state(NR_INACTIVE_ANON);
  const long active_file = k.node_page_state(NR_ACTIVE_FILE);
  const long inactive_file = k.node_page_state(NR_INACTIVE_FILE);
  const long sreclaimable = k.node_page_state(NR_SLAB_RECLAIMABLE_B) >> PAGE_SHIFT_;
  const long sunreclaim = k.node_page_state(NR_SLAB_UNRECLAIMABLE_B) >> PAGE_SHIFT_;
  const long cached = std::max(k.node_page_state(NR_FILE_PAGES), 0l);

  kb("MemTotal", totalram);
  kb("MemFree", free);
  kb("MemAvailable", si_mem_available(k));
  kb("Buffers", 0);
  kb("Cached", cached);
  kb("SwapCached", 0);
  kb("Active", active_anon + active_file);
  kb("Inactive", inactive_anon + inactive_file);
  kb("Active(anon)", active_anon);
  kb("Inactive(anon)", inactive_anon);
  kb("Active(file)", active_file);
  kb("Inactive(file)", inactive_file);
  kb("Unevictable", k.node_page_state(NR_UNEVICTABLE));
  kb("Mlocked", 0);
  kb("SwapTotal", 0);
  kb("SwapFree", 0);
  kb("Dirty", k.node_page_state(NR_FILE_DIRTY));
  kb("Writeback", k.node_page_state(NR_WRITEBACK));
  kb("AnonPages", k.node_page_state(NR_ANON_MAPPED));
  kb("Mapped", k.node_page_state(NR_FILE_MAPPED));
  kb("Shmem", k.node_page_state(NR_SHMEM));
  kb("KReclaimable", sreclaimable);
  kb("Slab", sreclaimable + sunreclaim);
  kb("SReclaimable", sreclaimable);
  kb("SUnreclaim", sunreclaim);
  kb_raw("KernelStack", k.node_page_state(NR_KERNEL_STACK_KB));
  kb("PageTables", k.node_page_state(NR_PAGETABLE));
  kb("SecPageTables", 0);
  kb("NFS_Unstable", 0);
  kb("Bounce", 0);
  kb("WritebackTmp", 0);
  kb("CommitLimit", vm_commit_limit(k));
  kb("Committed_AS", vm_memory_committed(k));
  kb_raw("VmallocTotal", 34359738367l); // (VMALLOC_END - VMALLOC_START) >> 10 on x86_64
  kb("VmallocUsed", k.node_page_state(NR_VMALLOC));
  kb("VmallocChunk", 0);
  kb("Percpu", 0);
  kb("CmaTotal", cma_total);
  kb("CmaFree", cma_free);
  t += strprintf("HugePages_Total:   %5lu\nHugePages_Free:    %5lu\nHugePages_Rsvd:    %5lu\n"
                 "HugePages_Surp:    %5lu\nHugepagesize:   %8lu kB\n",
                 0ul, 0ul, 0ul, 0ul, 2048ul);
  t += strprintf("Hugetlb:        %8lu kB\n", 0ul);
  kb_raw("DirectMap4k", static_cast<long>(k.mem.bytes >> 10));
  kb_raw("DirectMap2M", 0);
  kb_raw("DirectMap1G", 0);
  return t;
}

} // namespace kmm
