// Kernel log ring (see dmesg.h).
#include "dmesg.h"

#include <cstdio>

namespace kmm {

void Dmesg::printk(const std::string& text) {
  std::lock_guard<std::mutex> guard(lock_);
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    char stamp[32];
    const int n = std::snprintf(stamp, sizeof stamp, "[%5llu.%06llu] ",
                                static_cast<unsigned long long>(clock_us_ / 1000000),
                                static_cast<unsigned long long>(clock_us_ % 1000000));
    ++clock_us_;
    std::string line;
    line.reserve(size_t(n) + (nl - start) + 1);
    line.append(stamp, size_t(n)).append(text, start, nl - start).push_back('\n');
    bytes_ += line.size();
    lines_.push_back(std::move(line));
    while (bytes_ > kMaxBytes && !lines_.empty()) {
      bytes_ -= lines_.front().size();
      lines_.pop_front();
      dropped_++;
    }
    start = nl + 1;
  }
}

std::string Dmesg::text() const {
  std::lock_guard<std::mutex> guard(lock_);
  std::string out;
  out.reserve(bytes_);
  for (const auto& l : lines_) out += l;
  return out;
}

void Dmesg::clear() {
  std::lock_guard<std::mutex> guard(lock_);
  dropped_ += lines_.size();
  lines_.clear();
  bytes_ = 0;
}

Dmesg::Mark Dmesg::mark() const {
  std::lock_guard<std::mutex> guard(lock_);
  return {lines_.size(), bytes_, clock_us_, dropped_};
}

bool Dmesg::can_rewind(const Mark& m) const {
  std::lock_guard<std::mutex> guard(lock_);
  return dropped_ == m.dropped && lines_.size() >= m.lines;
}

void Dmesg::rewind(const Mark& m) {
  std::lock_guard<std::mutex> guard(lock_);
  lines_.resize(m.lines);
  bytes_ = m.bytes;
  clock_us_ = m.clock_us;
}

} // namespace kmm
