// The OOM killer (mm/oom_kill.c): oom_badness, select_bad_process, the kernel's report, the kill
// and the reaper. The victim's memory is reaped at once, so the failed allocation can retry.
#pragma once

#include <climits>
#include <string>

#include "kmm/gfp.h"

namespace kmm {

struct Kernel;
struct Task;

// totalram_pages() + total_swap_pages.
unsigned long oom_totalpages(Kernel& k);
// oom_badness(): LONG_MIN for a task never to be chosen (oom_score_adj -1000, already reaped).
long oom_badness(const Task& t, unsigned long totalpages);
// /proc/<pid>/oom_score: (1000 + badness * 1000 / totalpages) * 2 / 3, 0 for LONG_MIN.
long oom_score(const Task& t, unsigned long totalpages);

// out_of_memory(): the allocator's hook. Returns true if a victim's memory was freed.
bool out_of_memory(Kernel& k, gfp_t gfp, unsigned order);
// sysrq 'f': "sysrq: Manual OOM execution", then out_of_memory with order -1 (never panics).
void moom(Kernel& k);

void oom_init(Kernel& k);

} // namespace kmm
