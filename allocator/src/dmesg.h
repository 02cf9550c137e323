// The kernel log ring: printk() appends "[    0.000123] message" lines, dmesg() returns them.
// Timestamps come from a virtual clock that advances one microsecond per line, never from the
// host clock, so the same scenario gives the same log on every run.
//
// The lines live back to back in one character buffer, not one host allocation each: a fuzz
// input prints many reports of dozens of lines, and under ASan every malloc/free costs about a
// microsecond. Once the buffer has grown to its working size, printk() allocates nothing.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace kmm {

// What always holds (under lock_):
//   - buf_[head_, buf_.size()) is the live log: the lines of len_[first_, len_.size()) in order,
//     each ending in '\n'; buf_[0, head_) and len_[0, first_) are dead lines, dropped but not yet
//     compacted away. So the live bytes are buf_.size() - head_ == sum of the live lengths.
//   - The live bytes are at most kMaxBytes: printk() drops the oldest lines until they are.
//   - After each line printk() adds, head_ <= the live bytes: when the dead prefix outgrows the
//     live part, the live part moves to the front (compact()). Each byte moved stands for a dead
//     byte printed before it, so the moves cost O(bytes printed) in all, and the buffer never
//     holds more than twice kMaxBytes plus one line. rewind() and clear() only shrink it.
//   - dropped_ counts every line that left the front (ring overflow or clear()); it never goes
//     back. clock_us_ is the timestamp of the next line; only rewind() turns it back.
class Dmesg {
public:
  static constexpr size_t kMaxBytes = 1u << 20; // like a 1 MiB log buffer: oldest lines drop

  // Appends one or more lines (split at '\n'); each gets its own timestamp.
  void printk(std::string_view text);
  // A line's time stamp, printk's "[%5llu.%06llu] " of a clock in microseconds, into out
  // (kStampMax bytes are enough); returns its length.
  static constexpr size_t kStampMax = 32;
  static size_t format_stamp(char* out, uint64_t us);
  std::string text() const;
  void clear();

  // A point in the log to come back to (a machine restored to its boot image, recycle.h):
  // rewind() drops every line printed since and turns the clock back. Possible while no line has
  // left the front since the mark (dropped unchanged: no overflow, no clear() of a non-empty
  // log), so the first `lines` live lines are still the ones the mark saw (unless the log was
  // rewound to an earlier mark since and printed again: rewinding past a mark leaves it stale,
  // which the counts cannot see; recycle.cpp keeps one mark). rewind() is for after
  // can_rewind() said yes.
  struct Mark {
    size_t lines = 0, bytes = 0;
    uint64_t clock_us = 0, dropped = 0;
  };
  Mark mark() const;
  bool can_rewind(const Mark& m) const;
  void rewind(const Mark& m);

private:
  size_t nr_lines() const { return len_.size() - first_; }
  void compact();

  mutable std::mutex lock_;
  std::string buf_;         // dead lines [0, head_), then the live lines
  size_t head_ = 0;         // offset of the oldest live byte
  std::vector<size_t> len_; // length of each line in buf_, '\n' included, oldest first
  size_t first_ = 0;        // index in len_ of the oldest live line
  uint64_t clock_us_ = 0;   // timestamp of the next line
  uint64_t dropped_ = 0;    // lines gone from the front (ring overflow, clear)
};

} // namespace kmm
