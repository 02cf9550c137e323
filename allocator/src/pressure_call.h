// PressureCall: the public memory-pressure API (kmm/pressure.h) takes a Machine; this scope makes
// it current on the calling thread for the call, keeping the thread's CPU if it already holds a
// scope on that machine, else running as CPU 0.
#pragma once

#include "kernel.h"
#include "kmm/machine.h"

namespace kmm {

class PressureCall {
public:
  explicit PressureCall(Machine& m) : prev_k_(Kernel::current), prev_cpu_(Kernel::current_cpu) {
    if (Kernel::current != &m.kernel()) {
      Kernel::current = &m.kernel();
      Kernel::current_cpu = 0;
    }
  }
  ~PressureCall() {
    Kernel::current = prev_k_;
    Kernel::current_cpu = prev_cpu_;
  }
  PressureCall(const PressureCall&) = delete;
  PressureCall& operator=(const PressureCall&) = delete;

private:
  Kernel* prev_k_;
  int prev_cpu_;
};

} // namespace kmm
