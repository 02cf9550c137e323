// Tests for allocator/src/bootparams.cpp and bootparams.def: memparse, the declared table and
// its defaults, value syntax per type, ranges, and the exact error for each kind of bad input.
#include <gtest/gtest.h>

#include <set>

#include "bootparams.h"
#include "kmm/machine.h"

using kmm::BootError;
using kmm::parse_cmdline;

namespace {

std::string error_of(const std::string& cmdline) {
  try {
    parse_cmdline(cmdline);
  } catch (const BootError& e) {
    return e.what();
  }
  return "(no error)";
}

} // namespace

TEST(BootParams, Memparse) {
  uint64_t v = 0;
  struct Case {
    const char* text;
    uint64_t value;
  };
  for (auto c : {Case{"0", 0}, Case{"4096", 4096}, Case{"4k", 4096}, Case{"4K", 4096},
                 Case{"64M", 64ull << 20}, Case{"1g", 1ull << 30}, Case{"2T", 2ull << 40},
                 Case{"0x10M", 16ull << 20}, Case{"16383P", 0}}) {
    if (c.value == 0 && std::string(c.text) != "0") {
      EXPECT_FALSE(kmm::memparse(c.text, &v)) << c.text;
      continue;
    }
    ASSERT_TRUE(kmm::memparse(c.text, &v)) << c.text;
    EXPECT_EQ(v, c.value) << c.text;
  }
  for (const char* bad :
       {"", "M", "-1M", "12MB", "1.5G", " 1M", "99999999999999999999", "17179869184G"})
    EXPECT_FALSE(kmm::memparse(bad, &v)) << '"' << bad << '"';
}

TEST(BootParams, DefaultsComeFromTheTable) {
  kmm::BootParams p = parse_cmdline("");
  EXPECT_EQ(p.mem, 32ull << 20);
  EXPECT_EQ(p.nr_cpus, 2u);
  EXPECT_EQ(p.min_free_kbytes, -1);
  EXPECT_EQ(p.watermark_scale_factor, 10u);
  EXPECT_FALSE(p.page_poison);
  EXPECT_FALSE(p.init_on_alloc);
  EXPECT_FALSE(p.init_on_free);
  EXPECT_FALSE(p.panic_on_warn);
  EXPECT_EQ(p.kasan_fault, "report");
  EXPECT_TRUE(p.pcp);
  EXPECT_EQ(p.cmdline, "");
  // Every entry is documented, and names are unique.
  const auto& table = kmm::boot_param_table();
  std::set<std::string> names;
  for (const auto& info : table) {
    EXPECT_TRUE(names.insert(info.name).second) << info.name;
    EXPECT_GT(std::string(info.description).size(), 10u) << info.name;
  }
  for (const char* n :
       {"mem", "nr_cpus", "movablecore", "min_free_kbytes", "watermark_scale_factor", "page_poison",
        "init_on_alloc", "init_on_free", "panic_on_warn", "kasan.fault", "kmm.seed", "kmm.pcp"})
    EXPECT_EQ(names.count(n), 1u) << n;
}

TEST(BootParams, ValueSyntaxPerType) {
  kmm::BootParams p = parse_cmdline("mem=128M nr_cpus=0x4 page_poison init_on_alloc=on "
                                    "init_on_free=y kmm.pcp=off min_free_kbytes=0 "
                                    "kasan.fault=panic kmm.seed=18446744073709551615");
  EXPECT_EQ(p.mem, 128ull << 20);
  EXPECT_EQ(p.nr_cpus, 4u);
  EXPECT_TRUE(p.page_poison); // a bare boolean means on
  EXPECT_TRUE(p.init_on_alloc);
  EXPECT_TRUE(p.init_on_free);
  EXPECT_FALSE(p.pcp);
  EXPECT_EQ(p.min_free_kbytes, 0);
  EXPECT_EQ(p.kasan_fault, "panic");
  EXPECT_EQ(p.seed, 18446744073709551615ull); // the whole 64-bit range
  // Later words override earlier ones, as on a kernel command line.
  EXPECT_EQ(parse_cmdline("nr_cpus=3 nr_cpus=5").nr_cpus, 5u);
  EXPECT_EQ(parse_cmdline("  mem=8M\tnr_cpus=1  ").mem, 8ull << 20);
}

TEST(BootParams, ErrorsNameTheParameter) {
  EXPECT_EQ(error_of("mem=64M frobnicate=3"), "unknown boot parameter 'frobnicate'");
  EXPECT_EQ(error_of("Mem=64M"), "unknown boot parameter 'Mem'");
  EXPECT_EQ(error_of("mem=64Q"),
            "boot parameter 'mem=64Q': expected a size such as 64M (suffixes K, M, G, T)");
  EXPECT_EQ(error_of("mem"), "boot parameter 'mem' needs a value (mem=...)");
  EXPECT_EQ(error_of("nr_cpus=-1"), "boot parameter 'nr_cpus=-1': expected a non-negative integer");
  EXPECT_EQ(error_of("nr_cpus=two"),
            "boot parameter 'nr_cpus=two': expected a non-negative integer");
  EXPECT_EQ(error_of("min_free_kbytes=lots"),
            "boot parameter 'min_free_kbytes=lots': expected an integer");
  EXPECT_EQ(error_of("page_poison=perhaps"),
            "boot parameter 'page_poison=perhaps': expected 0/1, on/off or y/n");
  EXPECT_EQ(error_of("nr_cpus=65"), "boot parameter 'nr_cpus=65': out of range (1 .. 64)");
  EXPECT_EQ(error_of("nr_cpus=0"), "boot parameter 'nr_cpus=0': out of range (1 .. 64)");
  EXPECT_EQ(error_of("watermark_scale_factor=0"),
            "boot parameter 'watermark_scale_factor=0': out of range (1 .. 3000)");
  EXPECT_EQ(error_of("mem=2M"), "boot parameter 'mem=2097152': out of range (4M .. 64G)");
  EXPECT_EQ(error_of("mem=65G"), "boot parameter 'mem=69793218560': out of range (4M .. 64G)");
  EXPECT_EQ(error_of("mem=4100K"), "boot parameter 'mem=4198400': must be a whole number of MiB");
  EXPECT_EQ(error_of("min_free_kbytes=262145"),
            "boot parameter 'min_free_kbytes=262145': out of range (0 .. 262144, or -1 for the "
            "default rule)");
  EXPECT_EQ(error_of("mem=16M movablecore=16M"),
            "boot parameter 'movablecore=16777216': must be smaller than mem=");
  EXPECT_EQ(error_of("kasan.fault=maybe"),
            "boot parameter 'kasan.fault=maybe': expected report or panic");
  // Machine::boot passes the error through unchanged.
  try {
    kmm::Machine::boot("nr_cpus=65");
    FAIL();
  } catch (const BootError& e) {
    EXPECT_STREQ(e.what(), "boot parameter 'nr_cpus=65': out of range (1 .. 64)");
  }
}
