// kmm::Report: one detected error, as the kernel would have printed it. [contract]
#pragma once

#include <cstdint>
#include <string>

namespace kmm {

enum class ReportKind : uint8_t {
  Warn,          // WARN(): "WARNING: CPU: 0 PID: 1 at mm/page_alloc.c ..."
  BadPage,       // "BUG: Bad page state in process ..."
  PagePoison,    // page_poison corruption ("pagealloc: memory corruption")
  SleepInAtomic, // "BUG: sleeping function called from invalid context"
  AllocFail,     // "<task>: page allocation failure: order:N, mode:..."
  SlubDebug,     // "BUG kmalloc-64 (Not tainted): Right Redzone overwritten"
  Kasan,         // "BUG: KASAN: slab-out-of-bounds in ..."
  Kfence,        // "BUG: KFENCE: out-of-bounds read in ..."
  Oom,           // "Out of memory: Killed process ..."
  Panic,         // "Kernel panic - not syncing: ..."
  PageFault,     // "BUG: unable to handle page fault for address: ..."
};

const char* report_kind_name(ReportKind kind);

struct Report {
  ReportKind kind;
  std::string title;  // the first line's message, e.g. "BUG: Bad page state in process swapper/0"
  std::string text;   // the whole report, lines ending in '\n', as written to dmesg
  uint64_t addr = 0;  // physical (or vmalloc) address the report is about, 0 if none
  std::string cache;  // slab cache name, if any
  int64_t offset = 0; // offset within the object, if any
};

} // namespace kmm
