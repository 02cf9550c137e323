// Overcommit accounting (mm/util.c __vm_enough_memory, vm_commit_limit): Committed_AS,
// CommitLimit and the vm.overcommit_memory policies.
#pragma once

namespace kmm {

struct Kernel;
struct Task;

inline constexpr int OVERCOMMIT_GUESS = 0;
inline constexpr int OVERCOMMIT_ALWAYS = 1;
inline constexpr int OVERCOMMIT_NEVER = 2;

void overcommit_init(Kernel& k); // init_user_reserve / init_admin_reserve, boot sysctls
long vm_commit_limit(const Kernel& k);
long vm_memory_committed(const Kernel& k);
// __vm_enough_memory(): charges `pages` to Committed_AS, or refuses (-ENOMEM, nothing charged).
// `mm_total_vm` is the task's total_vm (for the user reserve under OVERCOMMIT_NEVER).
int vm_enough_memory(Kernel& k, long pages, unsigned long mm_total_vm);
void vm_unacct_memory(Kernel& k, long pages);

} // namespace kmm
