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
#include <vector>

#include "kmm/linux.h"
#include "kmm/machine.h"
#include "kmm/scenario.h"
#include "scenario_ops.h"

namespace kmm {
struct Kernel;
}

namespace kmm::scn {

struct Result {
  Kind kind = Kind::None;
  struct page* page = nullptr;         // Page: the head page
  void* ptr = nullptr;                 // Page/Virt/Obj: the address (direct map)
  struct kmem_cache* cache = nullptr;  // Cache
  int64_t size = 0;                    // bytes
  unsigned order = 0;                  // Page: order the block is freed with by default
  bool null() const { return kind == Kind::Cache ? cache == nullptr : ptr == nullptr; }
};

struct Runner {
  const Scenario& s;
  Machine& m;
  Kernel& k;
  RunResult& out;
  std::map<std::string, Result> results;
  spinlock_t lock;               // the scenario's one lock object
  bool lock_held = false;
  size_t report_cursor = 0;      // reports before this were looked at by an `expect`
  std::unique_ptr<CpuScope> cpu_scope;
  unsigned cpu = 0;

  // Set by an executor: appended to the operation's trace line as " -> detail".
  std::string detail;
  std::vector<std::string> extra; // further trace lines (proc_read contents)

  Runner(const Scenario& s_, Machine& m_, RunResult& out_);

  // The result a reference argument names (the parser and decoder guarantee it exists).
  Result& ref(const Op& op, size_t field);
  void define(const Op& op, const Result& r);
  // Records a failed expectation or invariant at the operation's line.
  void fail(const Op& op, const std::string& msg);
  // The host memory of [off, off+len) of r, inside the machine's RAM, or nullptr with *why set.
  uint8_t* host(const Result& r, int64_t off, int64_t len, std::string* why);
  // "pfn 0x1c08 (zone Normal)", "phys 0x1c08040 (pfn 0x1c08, zone Normal)", "NULL" ...
  std::string describe(const Result& r);
  // Skips an operation on a NULL result; returns true if it did.
  bool skip_null(const Op& op, size_t field);
};

// The name of the slab cache a direct-map address belongs to, or "" (scenario_ops.cpp).
std::string slab_cache_of(const void* ptr);

} // namespace kmm::scn
