// Overcommit accounting (see overcommit.h), after mm/util.c:
//  - every private writable reservation is charged to vm_committed_as first;
//  - OVERCOMMIT_ALWAYS keeps it; OVERCOMMIT_GUESS refuses only a single request larger than
//    RAM + swap; OVERCOMMIT_NEVER refuses once Committed_AS would pass CommitLimit less the
//    user reserve (min(total_vm / 32, user_reserve_kbytes)). Tasks run as root (CAP_SYS_ADMIN),
//    so the admin reserve is not taken off.
//  - CommitLimit = RAM * overcommit_ratio / 100 + swap (vm_commit_limit, overcommit_kbytes 0).
#include "overcommit.h"

#include <algorithm>
#include <cerrno>

#include "bug.h"
#include "kernel.h"

namespace kmm {

static long totalram(const Kernel& k) {
  long n = 0;
  for (auto& z : k.zones) n += static_cast<long>(z.managed_pages);
  return n;
}

void overcommit_init(Kernel& k) {
  // init_user_reserve(): min(3% of free, 128 MiB); init_admin_reserve(): min(3% of free, 8 MiB).
  long free_kbytes = 0;
  for (auto& z : k.zones) free_kbytes += z.free_pages() << (PAGE_SHIFT_ - 10);
  k.user_reserve_kbytes = std::min(free_kbytes / 32, 1l << 17);
  k.admin_reserve_kbytes = std::min(free_kbytes / 32, 1l << 13);
}

long vm_commit_limit(const Kernel& k) { return totalram(k) * k.overcommit_ratio / 100; }

long vm_memory_committed(const Kernel& k) {
  return std::max(k.vm_committed_as.load(std::memory_order_relaxed), 0l);
}

void vm_unacct_memory(Kernel& k, long pages) { k.vm_committed_as.fetch_sub(pages); }

int vm_enough_memory(Kernel& k, long pages, unsigned long mm_total_vm) {
  long committed = k.vm_committed_as.fetch_add(pages) + pages; // vm_acct_memory()
  if (k.overcommit_memory == OVERCOMMIT_ALWAYS) return 0;
  if (k.overcommit_memory == OVERCOMMIT_GUESS) {
    if (pages <= totalram(k)) return 0;
  } else {
    long allowed = vm_commit_limit(k);
    long user_reserve = k.user_reserve_kbytes >> (PAGE_SHIFT_ - 10);
    allowed -= std::min(static_cast<long>(mm_total_vm / 32), user_reserve);
    if (committed <= allowed) return 0;
  }
  const TaskRef& cur = k.cpu().current;
  k.log.printk(strprintf("__vm_enough_memory: pid: %d, comm: %s, bytes: %ld not enough memory for "
                         "the allocation",
                         cur.pid, cur.comm.c_str(), pages << PAGE_SHIFT_));
  vm_unacct_memory(k, pages);
  return -ENOMEM;
}

} // namespace kmm
