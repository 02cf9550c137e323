// The page-fault handler: host SIGSEGV on simulated memory that the kernel would take as a page
// fault (a vmalloc guard page, an unmapped vmalloc address, a KFENCE guard page).
//
// Layers register address ranges with a callback. On a fault inside one, the callback reports
// what the kernel would print and the handler maps a scratch page over the faulting page so the
// access completes and the program continues (the kernel would oops; kmm keeps going so the
// report can be inspected). A fault outside every range is passed to the handler that was
// installed before kmm's, so the host program's own signal handling is undisturbed.
//
// The callback runs inside the signal handler, on the faulting thread, synchronously with the
// faulting access (never inside kmm's allocator), which is why it may format a report.
#pragma once

#include <cstdint>

namespace kmm {

struct Kernel;

// Returns true if it handled the fault and made the page accessible (map_scratch_page, or
// mprotect), so the faulting access can be retried.
using FaultCallback = bool (*)(Kernel& k, uintptr_t addr, bool write);

// Registers [start, end) for k. Returns false if the table is full (16 ranges).
bool register_fault_range(Kernel& k, uintptr_t start, uintptr_t end, FaultCallback cb);
void unregister_fault_ranges(Kernel& k);

// Maps a fresh zero page at the page holding addr (the fix-up). Async-signal-safe.
void map_scratch_page(uintptr_t addr);

} // namespace kmm
