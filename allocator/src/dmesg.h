// The kernel log ring: printk() appends "[    0.000123] message" lines, dmesg() returns them.
// Timestamps come from a virtual clock that advances one microsecond per line, never from the
// host clock, so the same scenario gives the same log on every run.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

namespace kmm {

class Dmesg {
public:
  static constexpr size_t kMaxBytes = 1u << 20; // like a 1 MiB log buffer: oldest lines drop

  // Appends one or more lines (split at '\n'); each gets its own timestamp.
  void printk(const std::string& text);
  std::string text() const;
  void clear();

private:
  mutable std::mutex lock_;
  std::deque<std::string> lines_;
  size_t bytes_ = 0;
  uint64_t clock_us_ = 0;
};

} // namespace kmm
