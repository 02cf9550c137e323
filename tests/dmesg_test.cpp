// Tests for allocator/src/dmesg.cpp: the kernel log ring. Lines get virtual timestamps (one
// microsecond apart), a multi-line printk is split into stamped lines, the oldest lines drop once
// the ring holds more than 1 MiB, and clear() empties it without turning the clock back.
#include <gtest/gtest.h>

#include <string>

#include "dmesg.h"

namespace {

TEST(Dmesg, EachLineGetsTheNextVirtualTimestamp) {
  kmm::Dmesg log;
  log.printk("first");
  log.printk("second\nthird");
  EXPECT_EQ(log.text(), "[    0.000000] first\n"
                        "[    0.000001] second\n"
                        "[    0.000002] third\n");
}

TEST(Dmesg, TheOldestLinesDropBeyondOneMegabyte) {
  kmm::Dmesg log;
  // Each line is 15 bytes of stamp + 85 of text + newline = 101 bytes.
  const std::string text(85, 'x');
  const size_t lines = kmm::Dmesg::kMaxBytes / 101 + 100;
  for (size_t i = 0; i < lines; i++) log.printk(text);
  std::string out = log.text();
  EXPECT_LE(out.size(), kmm::Dmesg::kMaxBytes);
  EXPECT_GT(out.size(), kmm::Dmesg::kMaxBytes - 101);
  EXPECT_EQ(out.size() % 101, 0u);
  size_t kept = out.size() / 101;
  // The first line kept is the one printed at microsecond (lines - kept); the last, lines - 1.
  char first[32], last[32];
  std::snprintf(first, sizeof first, "[    %zu.%06zu] ", (lines - kept) / 1000000,
                (lines - kept) % 1000000);
  std::snprintf(last, sizeof last, "[    %zu.%06zu] ", (lines - 1) / 1000000,
                (lines - 1) % 1000000);
  EXPECT_EQ(out.rfind(first, 0), 0u) << out.substr(0, 40);
  EXPECT_EQ(out.substr(out.size() - 101, 15), last);
}

TEST(Dmesg, ClearEmptiesTheRingButTheClockRunsOn) {
  kmm::Dmesg log;
  log.printk("before");
  log.clear();
  EXPECT_EQ(log.text(), "");
  log.printk("after");
  EXPECT_EQ(log.text(), "[    0.000001] after\n");
}

} // namespace
