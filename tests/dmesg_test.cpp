// Tests for allocator/src/dmesg.cpp: the kernel log ring. Lines get virtual timestamps (one
// microsecond apart), a multi-line printk is split into stamped lines, the oldest lines drop once
// the ring holds more than 1 MiB, and clear() empties it without turning the clock back. A mark
// can be rewound to while no line has left the front since. Last, a random run against the plain
// model the ring replaced (one std::string per line in a deque) checks the text byte for byte.
#include <gtest/gtest.h>

#include <cstdio>
#include <deque>
#include <random>
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

TEST(Dmesg, OverflowCountsEveryDroppedLine) {
  kmm::Dmesg log;
  const std::string text(85, 'x'); // 101-byte lines, as above
  const size_t fit = kmm::Dmesg::kMaxBytes / 101;
  for (size_t i = 0; i < fit; i++) log.printk(text);
  EXPECT_EQ(log.mark().dropped, 0u);
  // Four more MiB: the buffer compacts several times on the way.
  const size_t more = 4 * fit;
  for (size_t i = 0; i < more; i++) log.printk(text);
  kmm::Dmesg::Mark m = log.mark();
  EXPECT_EQ(m.lines, fit);
  EXPECT_EQ(m.dropped, more);
  EXPECT_EQ(m.bytes, fit * 101);
  EXPECT_EQ(m.clock_us, fit + more);
  const std::string out = log.text();
  ASSERT_EQ(out.size(), fit * 101);
  for (size_t i = 0; i < fit; i++) {
    char stamp[32];
    std::snprintf(stamp, sizeof stamp, "[%5zu.%06zu] ", (more + i) / 1000000, (more + i) % 1000000);
    ASSERT_EQ(out.compare(i * 101, 15, stamp), 0) << i;
    ASSERT_EQ(out[i * 101 + 100], '\n') << i;
  }
}

// The stamp is printk's "[%5llu.%06llu] ", written without printf: the same bytes at every width.
TEST(Dmesg, TheStampIsPrintksFormat) {
  for (uint64_t us :
       {uint64_t(0), uint64_t(1), uint64_t(999999), uint64_t(1000000), uint64_t(12345678901),
        uint64_t(99999999999), uint64_t(100000000000), uint64_t(123456789012345), ~uint64_t(0)}) {
    char want[64], got[kmm::Dmesg::kStampMax];
    const int n = std::snprintf(want, sizeof want, "[%5llu.%06llu] ",
                                static_cast<unsigned long long>(us / 1000000),
                                static_cast<unsigned long long>(us % 1000000));
    ASSERT_EQ(std::string(got, kmm::Dmesg::format_stamp(got, us)), std::string(want, size_t(n)))
        << us;
  }
}

TEST(Dmesg, ALineLongerThanTheRingDropsWithAllTheOthers) {
  kmm::Dmesg log;
  log.printk("a\nb");
  log.printk(std::string(kmm::Dmesg::kMaxBytes, 'y'));
  EXPECT_EQ(log.text(), "");
  EXPECT_EQ(log.mark().dropped, 3u);
  log.printk("c");
  EXPECT_EQ(log.text(), "[    0.000003] c\n");
}

TEST(Dmesg, RewindDropsTheLinesSinceTheMarkAndTurnsTheClockBack) {
  kmm::Dmesg log;
  log.printk("boot\nmore boot");
  const std::string before = log.text();
  const kmm::Dmesg::Mark m = log.mark();
  // Almost a whole ring of lines since the mark, none dropped.
  const std::string text(85, 'x');
  for (size_t i = 0; i < kmm::Dmesg::kMaxBytes / 101 - 1; i++) log.printk(text);
  ASSERT_TRUE(log.can_rewind(m));
  log.rewind(m);
  EXPECT_EQ(log.text(), before);
  log.printk("again");
  EXPECT_EQ(log.text(), before + "[    0.000002] again\n");
  // A mark can be rewound to more than once.
  ASSERT_TRUE(log.can_rewind(m));
  log.rewind(m);
  EXPECT_EQ(log.text(), before);
}

// Lines dropped before the mark leave a dead prefix in the buffer; the mark counts lines and
// bytes from the oldest live one, so the rewind cuts at the right place behind it.
TEST(Dmesg, RewindWorksOnARingThatOverflowedBeforeTheMark) {
  kmm::Dmesg log;
  const std::string big(600 * 1024, 'b');
  log.printk(big);
  log.printk(big); // drops the first
  log.printk("small");
  const std::string before = log.text();
  const kmm::Dmesg::Mark m = log.mark();
  EXPECT_EQ(m.lines, 2u);
  EXPECT_EQ(m.dropped, 1u);
  for (int i = 0; i < 1000; i++) log.printk("since the mark\nand another");
  ASSERT_TRUE(log.can_rewind(m));
  log.rewind(m);
  EXPECT_EQ(log.text(), before);
  log.printk("next");
  EXPECT_EQ(log.text(), before + "[    0.000003] next\n");
}

TEST(Dmesg, NoRewindOnceALineOlderThanTheMarkDropped) {
  kmm::Dmesg log;
  log.printk("boot");
  const kmm::Dmesg::Mark m = log.mark();
  const std::string text(85, 'x');
  const size_t room = (kmm::Dmesg::kMaxBytes - 20) / 101; // "boot" stays, just
  for (size_t i = 0; i < room; i++) log.printk(text);
  ASSERT_TRUE(log.can_rewind(m));
  log.printk(text); // "boot" drops
  EXPECT_FALSE(log.can_rewind(m));
}

// The rule is "no line dropped since the mark", not only "none older than it": a mark on an empty
// log cannot be rewound to once the lines printed after it overflow the ring.
TEST(Dmesg, NoRewindOnceAnyLineDroppedSinceTheMark) {
  kmm::Dmesg log;
  const kmm::Dmesg::Mark m = log.mark();
  log.printk(std::string(kmm::Dmesg::kMaxBytes / 2, 'x'));
  log.printk(std::string(kmm::Dmesg::kMaxBytes / 2, 'x')); // drops the first
  EXPECT_FALSE(log.can_rewind(m));
}

TEST(Dmesg, ClearCountsItsLinesAsDroppedAndEndsTheMark) {
  kmm::Dmesg log;
  const kmm::Dmesg::Mark empty = log.mark();
  log.clear(); // an empty log loses nothing: the mark holds
  EXPECT_TRUE(log.can_rewind(empty));
  log.printk("one\ntwo");
  const kmm::Dmesg::Mark m = log.mark();
  log.clear();
  EXPECT_EQ(log.mark().dropped, 2u);
  EXPECT_EQ(log.mark().lines, 0u);
  EXPECT_FALSE(log.can_rewind(m));
  EXPECT_FALSE(log.can_rewind(empty));
  log.printk("three");
  EXPECT_EQ(log.text(), "[    0.000002] three\n");
}

// The log as it was kept before the single buffer: one string per line. Same rules, same text.
class PlainDmesg {
public:
  void printk(const std::string& text) {
    size_t start = 0;
    while (start < text.size()) {
      size_t nl = text.find('\n', start);
      if (nl == std::string::npos) nl = text.size();
      char stamp[32];
      std::snprintf(stamp, sizeof stamp, "[%5llu.%06llu] ", clock_us / 1000000, clock_us % 1000000);
      ++clock_us;
      lines.push_back(stamp + text.substr(start, nl - start) + "\n");
      bytes += lines.back().size();
      while (bytes > kmm::Dmesg::kMaxBytes && !lines.empty()) {
        bytes -= lines.front().size();
        lines.pop_front();
        dropped++;
      }
      start = nl + 1;
    }
  }
  std::string text() const {
    std::string out;
    for (const auto& l : lines) out += l;
    return out;
  }

  std::deque<std::string> lines;
  size_t bytes = 0;
  unsigned long long clock_us = 0, dropped = 0;
};

TEST(Dmesg, RandomRunMatchesOneStringPerLine) {
  std::mt19937_64 rng(20261207);
  kmm::Dmesg log;
  PlainDmesg model;
  struct Saved {
    kmm::Dmesg::Mark mark;
    PlainDmesg model;
  };
  std::deque<Saved> saved;
  int rewinds = 0, refused = 0;
  auto text_of = [&rng] {
    std::string t;
    const int parts = 1 + int(rng() % 4);
    for (int i = 0; i < parts; i++) {
      const uint64_t r = rng() % 100;
      const size_t len = r < 80 ? rng() % 120 : r < 98 ? rng() % 40000 : rng() % 700000;
      t.append(len, char('a' + rng() % 26));
      if (i + 1 < parts || rng() % 4 == 0) t += '\n';
    }
    return t;
  };
  for (int step = 0; step < 4000; step++) {
    const uint64_t op = rng() % 100;
    if (op < 85) {
      const std::string t = text_of();
      log.printk(t);
      model.printk(t);
    } else if (op < 87) {
      log.clear();
      model.dropped += model.lines.size();
      model.lines.clear();
      model.bytes = 0;
    } else if (op < 93) {
      saved.push_back({log.mark(), model});
      if (saved.size() > 4) saved.pop_front();
    } else if (!saved.empty()) {
      const Saved& s = saved[rng() % saved.size()];
      const bool can =
          model.dropped == s.model.dropped && model.lines.size() >= s.model.lines.size();
      ASSERT_EQ(log.can_rewind(s.mark), can) << step;
      (can ? rewinds : refused)++;
      if (can) {
        // The first lines stay, as the deque's resize() kept them (the same lines as at the
        // mark, unless the log was rewound past the mark since and printed again).
        log.rewind(s.mark);
        model.lines.resize(s.model.lines.size());
        model.bytes = 0;
        for (const auto& l : model.lines) model.bytes += l.size();
        model.clock_us = s.model.clock_us;
      }
    }
    const kmm::Dmesg::Mark now = log.mark();
    ASSERT_EQ(now.lines, model.lines.size()) << step;
    ASSERT_EQ(now.bytes, model.bytes) << step;
    ASSERT_EQ(now.clock_us, model.clock_us) << step;
    ASSERT_EQ(now.dropped, model.dropped) << step;
    if (step % 16 == 0) {
      ASSERT_EQ(log.text(), model.text()) << step;
    }
  }
  EXPECT_EQ(log.text(), model.text());
  // The run overflowed the ring, and both rewound and was refused.
  EXPECT_GT(model.dropped, 0u);
  EXPECT_GT(rewinds, 0);
  EXPECT_GT(refused, 0);
}

} // namespace
