// Kernel log ring (see dmesg.h for the layout and its invariants).
#include "dmesg.h"

#include <charconv>
#include <cstdint>
#include <cstring>

namespace kmm {

// Written out by hand: every line of every report gets a stamp, and a printf per line was most
// of printk's cost.
size_t Dmesg::format_stamp(char* out, uint64_t us) {
  char secs[24];
  const size_t nsecs = size_t(std::to_chars(secs, secs + sizeof secs, us / 1000000).ptr - secs);
  char* p = out;
  *p++ = '[';
  for (size_t i = nsecs; i < 5; i++) *p++ = ' ';
  std::memcpy(p, secs, nsecs);
  p += nsecs;
  *p++ = '.';
  uint64_t frac = us % 1000000;
  for (int i = 5; i >= 0; i--, frac /= 10) p[i] = char('0' + frac % 10);
  p += 6;
  *p++ = ']';
  *p++ = ' ';
  return size_t(p - out);
}

void Dmesg::printk(std::string_view text) {
  std::lock_guard<std::mutex> guard(lock_);
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    char stamp[kStampMax];
    const size_t n = format_stamp(stamp, clock_us_++);
    const size_t len = n + (nl - start) + 1;
    buf_.append(stamp, n).append(text.substr(start, nl - start)).push_back('\n');
    len_.push_back(len);
    // A line longer than the whole ring drops too, after all the others.
    while (buf_.size() - head_ > kMaxBytes && nr_lines() > 0) {
      head_ += len_[first_++];
      dropped_++;
    }
    if (head_ > buf_.size() - head_) compact();
    start = nl + 1;
  }
}

// Moves the live lines to the front of buf_ and len_. Called only when the dead prefix is larger
// than the live part, so the bytes moved never exceed the bytes dropped since the last compact.
// Neither erase() reallocates: the capacity stays for the lines to come.
void Dmesg::compact() {
  buf_.erase(0, head_);
  head_ = 0;
  len_.erase(len_.begin(), len_.begin() + static_cast<std::ptrdiff_t>(first_));
  first_ = 0;
}

std::string Dmesg::text() const {
  std::lock_guard<std::mutex> guard(lock_);
  return buf_.substr(head_);
}

void Dmesg::clear() {
  std::lock_guard<std::mutex> guard(lock_);
  dropped_ += nr_lines();
  buf_.clear();
  head_ = 0;
  len_.clear();
  first_ = 0;
}

Dmesg::Mark Dmesg::mark() const {
  std::lock_guard<std::mutex> guard(lock_);
  return {nr_lines(), buf_.size() - head_, clock_us_, dropped_};
}

bool Dmesg::can_rewind(const Mark& m) const {
  std::lock_guard<std::mutex> guard(lock_);
  return dropped_ == m.dropped && nr_lines() >= m.lines;
}

// Keeps the first m.lines live lines. With no line dropped since the mark they are the lines the
// mark saw, m.bytes long; the bytes are still counted from the lengths, so that a mark taken
// after a point the log was later rewound to (still "rewindable" by the count) cannot leave the
// buffer and the lengths disagreeing.
void Dmesg::rewind(const Mark& m) {
  std::lock_guard<std::mutex> guard(lock_);
  size_t cut = 0;
  while (nr_lines() > m.lines) {
    cut += len_.back();
    len_.pop_back();
  }
  buf_.resize(buf_.size() - cut);
  clock_us_ = m.clock_us;
}

} // namespace kmm
