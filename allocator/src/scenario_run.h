// The scenario interpreter's state, shared by run_scenario (scenario_run.cpp) and the executors
// of the operation table (scenario_ops.cpp).
//
// A scenario is single-threaded: this thread holds a MachineScope for the machine and a CpuScope
// for the CPU chosen by the last `cpu N`. Results live in `results` by name; memory accesses go
// through host() which never leaves the machine's RAM, so no decoded input can crash the host.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kmm/device.h"
#include "kmm/linux.h"
#include "kmm/machine.h"
#include "kmm/scenario.h"
#include "scenario_ops.h"

namespace kmm {
struct Kernel;

// run_scenario on a machine the caller booted (or restored, recycle.h) instead of a fresh one; the
// scenario's boot line is not looked at. The machine stays the caller's.
RunResult run_scenario_on(Machine& m, const Scenario& s, const RunOptions& opts = {});
} // namespace kmm

namespace kmm::scn {

struct Result {
  Kind kind = Kind::None;
  struct page* page = nullptr;        // Page, Cma: the head page
  void* ptr = nullptr;                // Page/Virt/Obj/Cma/Dma: the address (direct map);
                                      // Vmalloc, Kvmalloc: the vmalloc or kmalloc address
  struct kmem_cache* cache = nullptr; // Cache
  int64_t size = 0;                   // bytes (Task: its anonymous pages, from the task)
  unsigned order = 0;                 // Page: order the block is freed with by default
  int id = 0;                         // Task: pid (<= 0: spawn failed); File: inode (<= 0: none)
  uint64_t dma = 0;                   // Dma: the bus address
  unsigned mask_bits = 0;             // Dma: the device's mask
  bool null() const {
    switch (kind) {
    case Kind::Cache: return cache == nullptr;
    case Kind::Task:
    case Kind::File: return id <= 0;
    default: return ptr == nullptr;
    }
  }
};

// A piece of a memory access: host bytes of the simulated memory.
struct Chunk {
  uint8_t* mem;
  size_t len;
};

struct Runner {
  const Scenario& s;
  Machine& m;
  Kernel& k;
  RunResult& out;
  std::map<std::string, Result, NameLess> results;
  spinlock_t lock; // the scenario's one lock object
  bool lock_held = false;
  size_t report_cursor = 0; // reports before this were looked at by an `expect`
  std::unique_ptr<CpuScope> cpu_scope;
  unsigned cpu = 0;
  // The scenario's devices for dma_alloc_coherent, one per DMA mask width, made on first use
  // (named "scenario-dma32" ...). Destroyed with the Runner, while the machine is current.
  std::map<unsigned, std::unique_ptr<device>> devices;

  // Set by an executor: appended to the operation's trace line as " -> detail".
  std::string detail;
  // false: nobody reads the details (the fuzz harness runs executors without a trace), so the
  // executors that can skip building them do. Failures and skips are described regardless.
  bool details = true;
  std::vector<std::string> extra; // further trace lines (proc_read contents)

  // The pages handed out to kernel code (Page and Virt results) as [pfn, pfn + n), which the
  // scenario marks written when it writes them (Kernel::kernel_page_writes_marked, set while
  // the Runner lives); those still allocated when it ends are marked written then, for the code
  // that uses the machine next.
  std::vector<std::pair<unsigned long, unsigned long>> kernel_pages;

  Runner(const Scenario& s_, Machine& m_, RunResult& out_);
  ~Runner(); // end_marking(), and results' nodes kept for the next Runner on this thread
  // The scenario's operations are over (other code may use the machine now, as run_scenario's
  // at_end does): marks its kernel pages still allocated written and stops marking.
  void end_marking();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;
  // The scenario wrote [p, p + len) (write, fill, corrupt): marks its pages written (physmem.h).
  void wrote(const uint8_t* p, size_t len);
  // The pfns [first, first + n) that direct-map bytes [p, p + len) lie in (len > 0).
  std::pair<unsigned long, unsigned long> pages_of(const void* p, uint64_t len) const;

  // The result a reference argument names (the parser and decoder guarantee it exists).
  Result& ref(const Op& op, size_t field);
  void define(const Op& op, const Result& r);
  // Records a failed expectation or invariant at the operation's line.
  void fail(const Op& op, const std::string& msg);
  // The host memory of [off, off+len) of r, inside the machine's RAM (or, for vmalloc memory,
  // inside its area and guard page), or nullptr with *why set. Not for tasks (see span).
  uint8_t* host(const Result& r, int64_t off, int64_t len, std::string* why);
  // [off, off+len) of r as host pieces: one for contiguous memory, one per page for a task's
  // anonymous pages (found afresh each time: migration moves them). false with *why set if
  // any part is not there (NULL, freed task, beyond the pages touched ...).
  bool span(const Result& r, int64_t off, int64_t len, std::vector<Chunk>* out, std::string* why);
  // The bytes a task result has now (its anonymous pages); 0 if it is gone.
  int64_t task_bytes(const Result& r);
  // The device of the given DMA mask width.
  device* dma_device(unsigned bits);
  // "pfn 0x1c08 (zone Normal)", "phys 0x1c08040 (pfn 0x1c08, zone Normal)", "NULL" ...
  std::string describe(const Result& r);
  // detail = describe(r), when details are wanted.
  void note(const Result& r) {
    if (details) detail = describe(r);
  }
  // Skips an operation on a NULL result; returns true if it did.
  bool skip_null(const Op& op, size_t field);
};

// The name of the slab cache a direct-map address belongs to, or "" (scenario_ops.cpp).
std::string slab_cache_of(const void* ptr);

} // namespace kmm::scn
