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

  // A point in the log to come back to (a machine restored to its boot image, recycle.h):
  // rewind() drops every line printed since and turns the clock back. Possible while no line
  // older than the mark has dropped off the ring and the log was not cleared.
  struct Mark {
    size_t lines = 0, bytes = 0;
    uint64_t clock_us = 0, dropped = 0;
  };
  Mark mark() const;
  bool can_rewind(const Mark& m) const;
  void rewind(const Mark& m);

private:
  mutable std::mutex lock_;
  std::deque<std::string> lines_;
  size_t bytes_ = 0;
  uint64_t clock_us_ = 0;
  uint64_t dropped_ = 0; // lines gone from the front (ring overflow, clear)
};

} // namespace kmm
