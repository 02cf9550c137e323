// The simulated machine: boot from a kernel command line, make it current on a thread, read its
// kernel log, its reports and its /proc and /sys files.
//
//   auto m = kmm::Machine::boot("mem=64M nr_cpus=4");
//   kmm::MachineScope scope(*m);          // this thread is CPU 0 of m
//   struct page* p = alloc_pages(GFP_KERNEL, 3);
//
// Everything here is [contract] (DESIGN.md section 2): users' code and scripts rely on these names.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "kmm/report.h"

namespace kmm {

struct Kernel; // the machine's internal state (allocator/src/kernel.h)

// A malformed or unknown boot parameter. what() names the parameter and says what is wrong.
class BootError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

class Machine {
public:
  // Boot from a kernel command line ("mem=64M nr_cpus=4 slub_debug=FZP"). The empty line boots
  // the small embedded default machine. Throws BootError naming a bad parameter.
  static std::unique_ptr<Machine> boot(const std::string& cmdline = "");
  ~Machine();
  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;

  // The kernel log, one line per message, each ending in '\n'.
  std::string dmesg() const;
  // Every error detected so far, in order.
  const std::vector<Report>& reports() const;
  void clear_reports();

  // The virtual /proc and /sys. proc_read throws std::invalid_argument naming an unknown path;
  // proc_write returns 0 or a negative errno (-EINVAL for a bad value, -ENOENT for no such file).
  std::string proc_read(const std::string& path);
  int proc_write(const std::string& path, const std::string& text);

  // The command line this machine booted from, as given, and normalised (every parameter).
  const std::string& cmdline() const;
  unsigned nr_cpus() const;
  uint64_t mem_bytes() const;

  Kernel& kernel() { return *k_; }
  const Kernel& kernel() const { return *k_; }

private:
  explicit Machine(std::unique_ptr<Kernel> k);
  std::unique_ptr<Kernel> k_;
};

// Makes `m` the current machine of this thread, as CPU 0, for the scope's lifetime. Scopes nest:
// the previous machine and CPU are restored on exit.
class MachineScope {
public:
  explicit MachineScope(Machine& m);
  ~MachineScope();
  MachineScope(const MachineScope&) = delete;
  MachineScope& operator=(const MachineScope&) = delete;

private:
  Kernel* prev_k_;
  int prev_cpu_;
};

// This host thread acts as CPU `cpu` of `m` while the scope lives. Per-CPU structures of a CPU are
// touched only by the thread holding its scope: one thread per CPU at a time.
class CpuScope {
public:
  CpuScope(Machine& m, unsigned cpu);
  ~CpuScope();
  CpuScope(const CpuScope&) = delete;
  CpuScope& operator=(const CpuScope&) = delete;

private:
  Kernel* prev_k_;
  int prev_cpu_;
};

// The machine current on this thread, or nullptr.
Machine* current_machine();

} // namespace kmm
