// Tests for the scenario language (allocator/src/scenario_*.cpp): text and binary round trips
// (RapidCheck properties), every parse error's exact message, the examples in corpus/examples
// meeting their expectations, determinism, and decoded inputs never crashing the interpreter.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "kmm/scenario.h"
#include "scenario_ops.h"

using kmm::Scenario;

namespace {

bool example_available(const std::filesystem::path& p);

std::vector<std::filesystem::path> example_files() {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(KMM_SOURCE_DIR) /
                                                           "corpus/examples"))
    if (e.path().extension() == ".kmm" && example_available(e.path())) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

// Examples of subsystems this build does not have yet (slab ops before SLUB lands) are skipped.
bool example_available(const std::filesystem::path& p) {
  auto names = kmm::scenario_op_names();
  bool slab = std::find(names.begin(), names.end(), "kmem_cache_create") != names.end();
  return slab || p.filename().string().rfind("slab_", 0) != 0;
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string parse_error(const std::string& text) {
  try {
    kmm::parse_scenario(text, "t.kmm");
  } catch (const kmm::ScenarioError& e) {
    return e.what();
  }
  return "(no error)";
}

Scenario decode(const std::vector<uint8_t>& b) { return kmm::decode_scenario(b); }

} // namespace

// ---- text form -----------------------------------------------------------------------------

TEST(ScenarioText, ParsesTheIssueExamples) {
  Scenario s =
      kmm::parse_scenario("boot mem=32M nr_cpus=2\n"
                          "# a comment\n"
                          "\n"
                          "p0 = alloc_pages order=3 gfp=GFP_KERNEL|__GFP_ZERO  # trailing\n"
                          "write p0+328 len=1 byte=0x12\n"
                          "cpu 1\n"
                          "proc_write /proc/sys/vm/drop_caches 3\n"
                          "expect report \"Right Redzone overwritten\"\n"
                          "expect no-report\n"
                          "check\n",
                          "t.kmm");
  EXPECT_EQ(s.boot, "mem=32M nr_cpus=2");
  ASSERT_EQ(s.ops.size(), 7u);
  EXPECT_EQ(s.ops[0].line, 4);
  EXPECT_EQ(kmm::print_scenario(s), "boot mem=32M nr_cpus=2\n"
                                    "p0 = alloc_pages order=3 gfp=GFP_KERNEL|__GFP_ZERO\n"
                                    "write p0+328 len=1 byte=0x12\n"
                                    "cpu 1\n"
                                    "proc_write /proc/sys/vm/drop_caches 3\n"
                                    "expect report \"Right Redzone overwritten\"\n"
                                    "expect no-report\n"
                                    "check\n");
}

TEST(ScenarioText, DefaultsAreSpelledOutOptionalsStayOut) {
  Scenario s = kmm::parse_scenario("p0 = alloc_pages order=1\nfree_pages p0\nread p0 len=4\n");
  EXPECT_EQ(kmm::print_scenario(s),
            "p0 = alloc_pages order=1 gfp=GFP_KERNEL\nfree_pages p0\nread p0+0 len=4\n");
}

TEST(ScenarioText, EveryErrorSaysFileLineAndWhat) {
  const std::pair<const char*, const char*> cases[] = {
      {"frobnicate\n", "t.kmm:1: unknown operation 'frobnicate'"},
      {"check\nboot mem=32M\n", "t.kmm:2: boot must be the first operation"},
      {"boot\nboot\n", "t.kmm:2: boot must be the first operation"},
      {"alloc_pages order=1\n", "t.kmm:1: alloc_pages needs a result name: NAME = alloc_pages ..."},
      {"x = check\n", "t.kmm:1: check has no result to name"},
      {"1x = alloc_pages order=1\n", "t.kmm:1: bad result name '1x'"},
      {"p0 = alloc_pages order=1\np0 = alloc_pages order=1\n", "t.kmm:2: 'p0' is already defined"},
      {"p0 = alloc_pages\n", "t.kmm:1: missing order for alloc_pages"},
      {"p0 = alloc_pages order=12\n", "t.kmm:1: bad value '12' for order: expected a number 0..11"},
      {"p0 = alloc_pages order=x\n", "t.kmm:1: bad value 'x' for order: expected a number 0..11"},
      {"p0 = alloc_pages order=1 order=2\n", "t.kmm:1: duplicate argument 'order'"},
      {"p0 = alloc_pages order=1 colour=red\n",
       "t.kmm:1: unknown argument 'colour' for alloc_pages"},
      {"p0 = alloc_pages order=1 gfp=GFP_BOGUS\n", "t.kmm:1: bad gfp flags 'GFP_BOGUS'"},
      {"free_pages p9\n", "t.kmm:1: unknown result 'p9'"},
      {"free_pages\n", "t.kmm:1: missing result for free_pages"},
      {"p0 = alloc_pages order=0\nfree_pages p0 p0\n", "t.kmm:2: unexpected 'p0' for free_pages"},
      {"x0 = alloc_pages_exact size=100\nfree_pages x0\n",
       "t.kmm:2: 'x0' is an alloc_pages_exact allocation; free_pages needs a page allocation "
       "(alloc_pages)"},
      {"p0 = alloc_pages order=0\nwrite p0+4096 len=1 byte=1\n",
       "t.kmm:2: p0+4096 len=1 is outside p0 (4096 bytes); only corrupt may go outside an "
       "allocation"},
      {"p0 = alloc_pages order=0\nwrite p0-1 len=1 byte=1\n",
       "t.kmm:2: p0-1 len=1 is outside p0 (4096 bytes); only corrupt may go outside an allocation"},
      {"p0 = alloc_pages order=0\ncorrupt p0+8192 len=1 byte=1\n",
       "t.kmm:2: p0+8192 len=1 is outside p0 (4096 bytes) and the page either side"},
      {"p0 = alloc_pages order=0\nwrite p0+0 byte=1\n", "t.kmm:2: missing len for write"},
      {"p0 = alloc_pages order=0\nwrite p0+0 len=0 byte=1\n",
       "t.kmm:2: bad value '0' for len: expected a number 1..65536"},
      {"p0 = alloc_pages order=0\nwrite p0+0 len=1 byte=256\n",
       "t.kmm:2: bad value '256' for byte: expected a byte 0..255"},
      {"p0 = alloc_pages order=0\nwrite p0+zz len=1 byte=1\n",
       "t.kmm:2: bad offset '+zz' in 'p0+zz'"},
      {"cpu 2\n", "t.kmm:1: cpu 2 out of range: the machine has 2 CPUs"},
      {"boot nr_cpus=4\ncpu 3\ncpu 64\n",
       "t.kmm:3: bad value '64' for cpu number: expected a number 0..63"},
      {"expect\n",
       "t.kmm:1: expect needs one of: report, no-report, null, value, vmalloc, kmalloc"},
      {"expect maybe\n", "t.kmm:1: unknown operation 'expect maybe'"},
      {"expect report Redzone\n", "t.kmm:1: expected a quoted string, got 'Redzone'"},
      {"expect report \"Redzone\n", "t.kmm:1: unterminated string"},
      {"proc_read buddyinfo\n", "t.kmm:1: bad path 'buddyinfo'"},
      {"proc_write /proc/sys/vm/drop_caches -1\n",
       "t.kmm:1: bad value '-1' for value: expected a number 0..16777215"},
      {"check \"x\"\n", "t.kmm:1: unexpected '\"x\"' for check"},
      {"p0 =\n", "t.kmm:1: missing operation after 'p0 ='"},
      {"check\x01\n", "t.kmm:1: control character in line"},
      {"f0 = file_create name=\n", "t.kmm:1: bad name '': 1..24 characters"},
      {"f0 = file_create name=abcdefghijklmnopqrstuvwxy\n",
       "t.kmm:1: bad name 'abcdefghijklmnopqrstuvwxy': 1..24 characters"},
      {"p0 = alloc_pages order=0\nfree_pages \"p0\"\n",
       "t.kmm:2: unexpected string \"p0\" for result"},
      {"expect report \"0123456789012345678901234567890123456789012345678901234567890123\"\n",
       "t.kmm:1: string too long (64 characters, at most 63)"},
  };
  for (const auto& [text, msg] : cases) EXPECT_EQ(parse_error(text), msg) << "input: " << text;
}

TEST(ScenarioText, AReferenceOfTheWrongKindNamesBoth) {
  const std::pair<const char*, const char*> cases[] = {
      {"p0 = alloc_pages order=0\nvfree p0\n",
       "t.kmm:2: 'p0' is a page allocation; vfree needs a vmalloc allocation (vmalloc, vzalloc)"},
      {"p0 = alloc_pages order=0\nkvfree p0\n", "t.kmm:2: 'p0' is a page allocation; kvfree needs "
                                                "a kvmalloc allocation (kvmalloc, kvzalloc)"},
      {"c0 = kmem_cache_create name=c size=64\nfill c0 byte=1\n",
       "t.kmm:2: 'c0' is a cache; fill needs memory (an allocation, an object or a task)"},
      {"k0 = kvmalloc size=10 gfp=GFP_KERNEL\nkfree k0\n",
       "t.kmm:2: 'k0' is a kvmalloc allocation; kfree needs a slab object (kmalloc, "
       "kmem_cache_alloc)"},
      {"m0 = cma_alloc count=1\nfree_pages_exact m0\n",
       "t.kmm:2: 'm0' is a CMA range; free_pages_exact needs an alloc_pages_exact allocation"},
      {"d0 = dma_alloc_coherent size=10\nkmem_cache_destroy d0\n",
       "t.kmm:2: 'd0' is a coherent DMA buffer; kmem_cache_destroy needs a cache "
       "(kmem_cache_create)"},
      {"t0 = task_spawn comm=a\ncma_release t0\n",
       "t.kmm:2: 't0' is a task; cma_release needs a CMA range (cma_alloc)"},
      {"f0 = file_create name=x\ndma_free_coherent f0\n",
       "t.kmm:2: 'f0' is a file; dma_free_coherent needs a coherent DMA buffer "
       "(dma_alloc_coherent)"},
      {"o0 = kmalloc size=8\nfile_delete o0\n",
       "t.kmm:2: 'o0' is a slab object; file_delete needs a file (file_create)"},
      {"v0 = vmalloc size=10\ntask_exit v0\n",
       "t.kmm:2: 'v0' is a vmalloc allocation; task_exit needs a task (task_spawn)"},
  };
  for (const auto& [text, msg] : cases) EXPECT_EQ(parse_error(text), msg) << "input: " << text;
}

TEST(ScenarioText, CanonicalRenamesInDefinitionOrder) {
  Scenario s = kmm::parse_scenario("buf = alloc_pages order=0\nx = alloc_pages_exact size=10\n"
                                   "free_pages buf\nfree_pages_exact x\n");
  EXPECT_EQ(kmm::print_scenario(kmm::canonical(s)),
            "p0 = alloc_pages order=0 gfp=GFP_KERNEL\n"
            "x0 = alloc_pages_exact size=10 gfp=GFP_KERNEL\nfree_pages p0\nfree_pages_exact x0\n");
}

TEST(ScenarioText, NewSubsystemsParseAndPrint) {
  const char* text = "boot mem=32M nr_cpus=2 cma=8M\n"
                     "v0 = vmalloc size=10000\n"
                     "v1 = vzalloc size=1\n"
                     "k0 = kvmalloc size=64 gfp=GFP_KERNEL\n"
                     "k1 = kvzalloc size=100000 gfp=GFP_KERNEL\n"
                     "expect kmalloc k0\n"
                     "expect vmalloc v0\n"
                     "m0 = cma_alloc count=16 align=4\n"
                     "d0 = dma_alloc_coherent size=8192 mask=24 gfp=GFP_KERNEL\n"
                     "t0 = task_spawn comm=app adj=-1000\n"
                     "task_touch t0 pages=2\n"
                     "write t0+4000 len=200 byte=0x11\n"
                     "oom_score_adj t0 adj=-5\n"
                     "oom_score t0\n"
                     "f0 = file_create name=log\n"
                     "file_write f0 index=0 pages=3\n"
                     "file_read f0 index=7 pages=1\n"
                     "writeback f0\n"
                     "file_delete f0\n"
                     "kswapd_run\n"
                     "reclaim pages=10\n"
                     "out_of_memory\n"
                     "task_exit t0\n"
                     "dma_free_coherent d0\n"
                     "cma_release m0\n"
                     "kvfree k1\n"
                     "vfree v0\n";
  Scenario s = kmm::parse_scenario(text, "t.kmm");
  EXPECT_EQ(kmm::print_scenario(s), text);
  // Defaults are spelled out.
  EXPECT_EQ(
      kmm::print_scenario(kmm::parse_scenario("t0 = task_spawn comm=a\nm0 = cma_alloc count=1\n"
                                              "d0 = dma_alloc_coherent size=1\n"
                                              "f0 = file_create name=x\nfile_read f0 pages=1\n")),
      "t0 = task_spawn comm=a adj=0\nm0 = cma_alloc count=1 align=0\n"
      "d0 = dma_alloc_coherent size=1 mask=32 gfp=GFP_KERNEL\n"
      "f0 = file_create name=x\nfile_read f0 index=0 pages=1\n");
}

TEST(ScenarioText, NewSubsystemErrors) {
  const std::pair<const char*, const char*> cases[] = {
      {"t0 = task_spawn comm=a adj=-1001\n",
       "t.kmm:1: bad value '-1001' for adj: expected a number -1000..1000"},
      {"t0 = task_spawn comm=a\nwrite t0+1 len=1 byte=1\n",
       "t.kmm:2: t0+1 len=1 is outside t0 (0 bytes); only corrupt may go outside an allocation"},
      {"t0 = task_spawn comm=a\ntask_touch t0 pages=1\nwrite t0+4095 len=2 byte=1\n",
       "t.kmm:3: t0+4095 len=2 is outside t0 (4096 bytes); only corrupt may go outside an "
       "allocation"},
      {"v0 = vmalloc size=100\nkvfree v0\n",
       "t.kmm:2: 'v0' is a vmalloc allocation; kvfree needs a kvmalloc allocation (kvmalloc, "
       "kvzalloc)"},
      {"v0 = vmalloc size=100\ncorrupt v0-1 len=1 byte=1\n",
       "t.kmm:2: v0-1 len=1 is outside v0 (100 bytes) and its guard page"},
      {"d0 = dma_alloc_coherent size=8 mask=16\n",
       "t.kmm:1: bad value '16' for mask: expected a number 24..64"},
      {"o0 = kmalloc size=8 gfp=GFP_KERNEL\ntask_exit o0\n",
       "t.kmm:2: 'o0' is a slab object; task_exit needs a task (task_spawn)"},
      {"p0 = alloc_pages order=0\nwrite p0--5 len=1 byte=1\n",
       "t.kmm:2: bad offset '--5' in 'p0--5'"},
  };
  for (const auto& [text, msg] : cases) EXPECT_EQ(parse_error(text), msg) << "input: " << text;
}

// ---- binary form ---------------------------------------------------------------------------

TEST(ScenarioBinary, EmptyAndTruncatedInputsAreShortScenarios) {
  EXPECT_EQ(kmm::print_scenario(decode({})), "");
  EXPECT_EQ(decode({3}).boot, "mem=8M nr_cpus=2 page_poison=1");
  // opcode 0 = alloc_pages needs 1 (order) + 3 (gfp) bytes: a truncated op ends the scenario.
  // (The order byte is skewed: 0-75 are order 0, 76-129 order 1, 130-167 order 2, 168 order 3.)
  EXPECT_EQ(decode({0, 0, 168, 0xc0}).ops.size(), 0u);
  EXPECT_EQ(kmm::print_scenario(decode({0, 0, 168, 0xc0, 0x0c, 0x00})),
            "p0 = alloc_pages order=3 gfp=GFP_KERNEL\n");
}

// alloc_pages' order byte draws small orders more often: each order has about 1/sqrt(2) of the
// byte values of the order below it, and every order, up to the WARN path's 11, has some.
TEST(ScenarioBinary, SmallOrdersAreDrawnMoreOften) {
  std::map<int64_t, int> values; // order -> how many of the 256 bytes give it
  for (int b = 0; b < 256; b++) {
    Scenario s = decode({0, 0, uint8_t(b), 0xc0, 0x0c, 0x00});
    ASSERT_EQ(s.ops.size(), 1u);
    values[s.ops[0].args[0].num]++;
  }
  ASSERT_EQ(values.size(), 12u);
  EXPECT_EQ(values.begin()->first, 0);
  EXPECT_EQ(values.rbegin()->first, 11);
  EXPECT_EQ(values[0], 76);
  EXPECT_EQ(values[1], 54);
  EXPECT_EQ(values[10], 2);
  for (int64_t o = 1; o <= 11; o++) EXPECT_LE(values[o], values[o - 1]) << "order " << o;
  // Each order still encodes and decodes back to itself.
  for (int64_t o = 0; o <= 11; o++) {
    Scenario s = kmm::parse_scenario("p0 = alloc_pages order=" + std::to_string(o) + "\n");
    EXPECT_EQ(decode(kmm::encode_scenario(s)), kmm::canonical(s)) << "order " << o;
  }
}

TEST(ScenarioBinary, OpsWithNothingToReferToAreDropped) {
  // free_pages (opcode 1) before any allocation: dropped; its bytes are still consumed (ref 1,
  // order 1, page 3: a span above 256 is log-scaled, one byte more than it holds).
  Scenario s = decode({0, 1, 0, 0, 0, 0, 0, 0, 168, 0xc0, 0x0c, 0x00});
  EXPECT_EQ(kmm::print_scenario(s), "p0 = alloc_pages order=3 gfp=GFP_KERNEL\n");
}

// kmalloc's size (0 .. 4 MiB + 1) is read on a log scale: a bit-length byte, then three bytes of
// the bits below the top one. Bit length 0 is size 0; 4 with low bits 0b101 is 0b1101 = 13.
TEST(ScenarioBinary, LargeRangesAreReadOnALogScale) {
  const int kmalloc = kmm::scn::find_op("kmalloc");
  ASSERT_GE(kmalloc, 0);
  const uint8_t op = static_cast<uint8_t>(kmalloc);
  EXPECT_EQ(kmm::print_scenario(decode({0, op, 0, 0, 0, 0, 0xc0, 0x0c, 0x00})),
            "o0 = kmalloc size=0 gfp=GFP_KERNEL\n");
  EXPECT_EQ(kmm::print_scenario(decode({0, op, 4, 5, 0, 0, 0xc0, 0x0c, 0x00})),
            "o0 = kmalloc size=13 gfp=GFP_KERNEL\n");
  // Every size has its bytes, and they read back as it.
  for (int64_t size : {int64_t(1), int64_t(8), int64_t(4096), int64_t(4194305)}) {
    Scenario s = kmm::parse_scenario("o0 = kmalloc size=" + std::to_string(size) + "\n");
    EXPECT_EQ(decode(kmm::encode_scenario(s)), kmm::canonical(s)) << size;
  }
}

TEST(ScenarioBinary, ExamplesWithinRangeRoundTripToTheirCanonicalForm) {
  for (const auto& f : example_files()) {
    Scenario s = kmm::parse_scenario(slurp(f), f.string());
    std::vector<uint8_t> bytes;
    try {
      bytes = kmm::encode_scenario(s);
    } catch (const kmm::ScenarioError&) {
      continue; // boot line or path outside the fuzz tables
    }
    EXPECT_EQ(kmm::print_scenario(decode(bytes)), kmm::print_scenario(kmm::canonical(s))) << f;
  }
}

TEST(ScenarioBinary, EncodeRefusesWhatTheBinaryFormCannotSay) {
  Scenario s = kmm::parse_scenario("boot mem=48M\ncheck\n", "t.kmm");
  try {
    kmm::encode_scenario(s);
    FAIL();
  } catch (const kmm::ScenarioError& e) {
    EXPECT_STREQ(e.what(), "t.kmm: boot line 'mem=48M' is not one of the fuzz machines; the "
                           "binary form cannot express it");
  }
  Scenario p = kmm::parse_scenario("proc_read /proc/nonesuch\n", "t.kmm");
  EXPECT_THROW(kmm::encode_scenario(p), kmm::ScenarioError);
}

// bytes -> text -> bytes -> the same text
RC_GTEST_PROP(ScenarioRoundTrip, BytesTextBytesGivesTheSameText, (std::vector<uint8_t> bytes)) {
  Scenario s = kmm::decode_scenario(bytes);
  std::string text = kmm::print_scenario(s);
  Scenario parsed = kmm::parse_scenario(text, "<decoded>");
  RC_ASSERT(parsed == s);
  Scenario again = kmm::decode_scenario(kmm::encode_scenario(parsed));
  RC_ASSERT(kmm::print_scenario(again) == text);
}

// text -> bytes -> text, for texts written by hand: random scenarios built as text from the
// operation names (arguments from the decoder's view of random bytes), renamed arbitrarily.
RC_GTEST_PROP(ScenarioRoundTrip, TextBytesTextGivesTheCanonicalText, (std::vector<uint8_t> bytes)) {
  Scenario s = kmm::decode_scenario(bytes);
  // Rename results to hand-written names ("buf_p0"), outside quoted strings.
  auto is_word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  std::string text;
  std::istringstream lines(kmm::print_scenario(s));
  std::string line;
  while (std::getline(lines, line)) {
    std::string out;
    for (size_t i = 0; i < line.size();) {
      if (line[i] == '"') { // copy a quoted string unchanged
        size_t end = line.find('"', i + 1);
        out += line.substr(i, end - i + 1);
        i = end + 1;
        continue;
      }
      size_t j = i;
      while (j < line.size() && is_word(line[j])) j++;
      if (j == i) {
        out += line[i++];
        continue;
      }
      std::string word = line.substr(i, j - i);
      bool is_result = false;
      for (const auto& op : s.ops)
        if (op.result == word) is_result = true;
      out += is_result ? "buf_" + word : word;
      i = j;
    }
    text += out + "\n";
  }
  Scenario hand = kmm::parse_scenario(text, "<hand>");
  Scenario back = kmm::decode_scenario(kmm::encode_scenario(hand));
  RC_ASSERT(kmm::print_scenario(back) == kmm::print_scenario(kmm::canonical(hand)));
  RC_ASSERT(kmm::print_scenario(back) == kmm::print_scenario(s));
}

// Any decoded input runs without crashing the host (ASan builds check memory safety too).
RC_GTEST_PROP(ScenarioRun, DecodedInputsNeverCrash, (std::vector<uint8_t> bytes)) {
  if (bytes.size() > 400) bytes.resize(400);
  Scenario s = kmm::decode_scenario(bytes);
  kmm::RunResult r = kmm::run_scenario(s);
  RC_ASSERT(r.exit_status != 2);
  RC_ASSERT(r.trace.size() >= s.ops.size());
}

// ---- interpreter and examples ----------------------------------------------------------------

TEST(ScenarioRun, TraceUsesPfnsAndZones) {
  auto r = kmm::run_scenario(kmm::parse_scenario("p0 = alloc_pages order=3\nfree_pages p0\n"));
  ASSERT_EQ(r.trace.size(), 2u);
  EXPECT_EQ(r.trace[0].rfind("p0 = alloc_pages order=3 gfp=GFP_KERNEL -> pfn 0x", 0), 0u)
      << r.trace[0];
  EXPECT_NE(r.trace[0].find("(zone "), std::string::npos);
  EXPECT_EQ(r.exit_status, 0);
}

TEST(ScenarioRun, FailedExpectationsAreReportedWithTheirLine) {
  auto r = kmm::run_scenario(kmm::parse_scenario(
      "p0 = alloc_pages order=0\nexpect null p0\nexpect report \"Bad page\"\n", "t.kmm"));
  EXPECT_EQ(r.exit_status, 1);
  ASSERT_EQ(r.failures.size(), 2u);
  EXPECT_EQ(r.failures[0].rfind("t.kmm:2: expectation failed: p0 is not NULL (pfn 0x", 0), 0u);
  EXPECT_EQ(r.failures[1],
            "t.kmm:3: expectation failed: no report matching \"Bad page\" (no new report)");
}

TEST(ScenarioRun, BadBootLineIsExitTwo) {
  auto r = kmm::run_scenario(kmm::parse_scenario("boot frobnicate=1\ncheck\n", "t.kmm"));
  EXPECT_EQ(r.exit_status, 2);
  ASSERT_EQ(r.failures.size(), 1u);
  EXPECT_EQ(r.failures[0], "t.kmm: boot frobnicate=1: unknown boot parameter 'frobnicate'");
}

TEST(ScenarioRun, NullResultsAreSkippedNotDereferenced) {
  auto r = kmm::run_scenario(kmm::parse_scenario(
      "p0 = alloc_pages order=11 gfp=GFP_KERNEL|__GFP_NOWARN\nwrite p0+0 len=1 byte=1\n"
      "free_pages p0\nexpect null p0\n"));
  EXPECT_EQ(r.exit_status, 0);
  EXPECT_EQ(r.trace[1], "write p0+0 len=1 byte=0x01 -> skipped: p0 is NULL");
}

// Runs text; returns the result, with failures printed on a mismatch.
kmm::RunResult run_text(const std::string& text) {
  return kmm::run_scenario(kmm::parse_scenario(text, "t.kmm"));
}

TEST(ScenarioRun, KasanChecksEveryScenarioAccess) {
  // A write one byte past a 40-byte kmalloc object is KASAN's slab-out-of-bounds ...
  auto r = run_text("boot kasan=on\no0 = kmalloc size=40 gfp=GFP_KERNEL\n"
                    "write o0+40 len=1 byte=0x01\n"
                    "expect report \"BUG: KASAN: slab-out-of-bounds in scenario_write\"\n"
                    "read o0-8 len=8\n"
                    "expect report \"BUG: KASAN: slab-out-of-bounds in scenario_read\"\n"
                    "kfree o0\n"
                    "fill o0 byte=0x02\n"
                    "expect report \"BUG: KASAN: slab-use-after-free in scenario_fill\"\n");
  EXPECT_EQ(r.exit_status, 0) << (r.failures.empty() ? "" : r.failures[0]);
  // ... while accesses inside allocations of every kind are clean.
  r = run_text("boot kasan=on\no0 = kmalloc size=40 gfp=GFP_KERNEL\nwrite o0+0 len=40 byte=1\n"
               "v0 = vmalloc size=5000\nfill v0 byte=2\nread v0+4990 len=10\n"
               "k0 = kvmalloc size=100 gfp=GFP_KERNEL\nfill k0 byte=3\n"
               "k1 = kvmalloc size=100000 gfp=GFP_KERNEL\nfill k1 byte=4\n"
               "d0 = dma_alloc_coherent size=5000\nfill d0 byte=5\n"
               "t0 = task_spawn comm=a\ntask_touch t0 pages=3\nfill t0 byte=6\n"
               "expect no-report\n");
  EXPECT_EQ(r.exit_status, 0) << (r.failures.empty() ? "" : r.failures[0]);
  // Without KASAN the out-of-bounds write goes unnoticed by the scenario (SLUB may see it later).
  r = run_text(
      "o0 = kmalloc size=40 gfp=GFP_KERNEL\nwrite o0+40 len=1 byte=0x01\nexpect no-report\n");
  EXPECT_EQ(r.exit_status, 0) << (r.failures.empty() ? "" : r.failures[0]);
}

TEST(ScenarioRun, ValuesReadBackOnEveryKindOfMemory) {
  auto r = run_text(
      "boot mem=32M nr_cpus=2 cma=8M\n"
      "v0 = vmalloc size=10000\nwrite v0+4000 len=200 byte=0x11\n"
      "expect value v0+4000 len=200 byte=0x11\nexpect value v0+4200 len=10 byte=0x00\n"
      "k0 = kvzalloc size=64 gfp=GFP_KERNEL\nexpect kmalloc k0\n"
      "expect value k0+0 len=64 byte=0x00\nfill k0 byte=0x22\nexpect value k0+63 len=1 byte=0x22\n"
      "m0 = cma_alloc count=4 align=2\nfill m0 byte=0x33\nexpect value m0+16383 len=1 byte=0x33\n"
      "d0 = dma_alloc_coherent size=8192 mask=24\nexpect value d0+0 len=8192 byte=0\n"
      "write d0+100 len=1 byte=0x44\nexpect value d0+100 len=1 byte=0x44\n"
      "t0 = task_spawn comm=a\ntask_touch t0 pages=2\nexpect value t0+8 len=504 byte=0\n"
      "write t0+4090 len=12 byte=0x55\nexpect value t0+4090 len=12 byte=0x55\n"
      "task_exit t0\ndma_free_coherent d0\ncma_release m0\nkvfree k0\nvfree v0\n"
      "expect no-report\ncheck\n");
  EXPECT_EQ(r.exit_status, 0) << (r.failures.empty() ? "" : r.failures[0]);
  // The trace names where things went: a vmalloc address, a DMA zone bus address, a pid.
  bool vm = false, dma = false, pid = false;
  for (const auto& l : r.trace) {
    vm |= l.rfind("v0 = vmalloc size=10000 -> vmalloc 0xffffc9", 0) == 0;
    dma |= l.rfind("d0 = dma_alloc_coherent size=8192 mask=24 gfp=GFP_KERNEL -> dma 0x", 0) == 0 &&
           l.find("(zone DMA)") != std::string::npos;
    pid |= l.rfind("t0 = task_spawn comm=a adj=0 -> pid ", 0) == 0;
  }
  EXPECT_TRUE(vm && dma && pid);
}

TEST(ScenarioRun, GoneTasksAndFailedAllocationsAreSkipped) {
  auto r = run_text("t0 = task_spawn comm=a\ntask_touch t0 pages=1\ntask_exit t0\n"
                    "write t0+0 len=1 byte=1\ntask_touch t0 pages=1\n"
                    "m0 = cma_alloc count=1\ncma_release m0\nexpect null m0\n");
  EXPECT_EQ(r.exit_status, 0) << (r.failures.empty() ? "" : r.failures[0]);
  ASSERT_EQ(r.trace.size(), 8u);
  EXPECT_EQ(r.trace[3], "write t0+0 len=1 byte=0x01 -> skipped: task 100 is gone");
  EXPECT_EQ(r.trace[4].rfind("task_touch t0 pages=1 -> skipped: pid 100 is gone", 0), 0u);
  EXPECT_EQ(r.trace[5], "m0 = cma_alloc count=1 align=0 -> NULL (no cma= area)");
}

TEST(ScenarioRun, AccessesTheMachineCannotMakeAreSkippedWithTheReason) {
  // kmalloc(0) is ZERO_SIZE_PTR, a pointer outside the direct map; the page after the top of
  // RAM (mem=8M: the order-10 block at pfn 0x400 is Normal, the last 4 MiB) does not exist.
  auto r = run_text("boot mem=8M\nk0 = kmalloc size=0 gfp=GFP_KERNEL\ncorrupt k0+0 len=1 byte=1\n"
                    "p0 = alloc_pages order=10 gfp=GFP_ATOMIC|__GFP_MEMALLOC\n"
                    "corrupt p0+4194304 len=1 byte=1\nexpect no-report\n");
  EXPECT_EQ(r.exit_status, 0) << (r.failures.empty() ? "" : r.failures[0]);
  ASSERT_EQ(r.trace.size(), 5u);
  EXPECT_EQ(r.trace[1], "corrupt k0+0 len=1 byte=0x01 -> skipped: not in the direct map");
  EXPECT_EQ(r.trace[2],
            "p0 = alloc_pages order=10 gfp=GFP_ATOMIC|__GFP_MEMALLOC -> pfn 0x400 (zone Normal)");
  EXPECT_EQ(r.trace[3], "corrupt p0+4194304 len=1 byte=0x01 -> skipped: outside RAM");
}

TEST(ScenarioRun, AMismatchedReportOrValueIsAFailure) {
  auto r = run_text("p0 = alloc_pages order=0\nfree_pages p0\nfree_pages p0\n"
                    "expect report \"Redzone\"\n"
                    "o0 = kzalloc size=16 gfp=GFP_KERNEL\nexpect value o0+0 len=16 byte=7\n");
  EXPECT_EQ(r.exit_status, 1);
  ASSERT_EQ(r.failures.size(), 2u);
  EXPECT_EQ(
      r.failures[0].rfind(
          "t.kmm:4: expectation failed: no report matching \"Redzone\" (got \"BUG: Bad page state",
          0),
      0u)
      << r.failures[0];
  EXPECT_EQ(r.failures[1].rfind("t.kmm:6: expectation failed: ", 0), 0u) << r.failures[1];
}

// Each example's output is checked in beside it, so every build flavour (default, asan, ubsan,
// tsan, coverage, fuzz) compares its run with the same bytes: one machine, one trace, whatever
// the compiler or sanitizer. Regenerate after a deliberate change with
//   for f in corpus/examples/*.kmm; do build/default/tools/kmm run $f > ${f%.kmm}.out; done
// and review the diff.
TEST(ScenarioExamples, OutputIsByteIdenticalToTheCheckedInRun) {
  auto files = example_files();
  ASSERT_FALSE(files.empty());
  for (const auto& f : files) {
    auto expected_path = std::filesystem::path(f).replace_extension(".out");
    ASSERT_TRUE(std::filesystem::exists(expected_path)) << expected_path << " is missing";
    Scenario s = kmm::parse_scenario(slurp(f), f.string());
    std::string got = kmm::format_run(kmm::run_scenario(s));
    std::string want = slurp(expected_path);
    if (got == want) continue;
    // Name the first differing line rather than dumping two long logs.
    std::istringstream g(got), w(want);
    std::string gl, wl;
    int line = 1;
    while (std::getline(g, gl) && std::getline(w, wl) && gl == wl) line++;
    ADD_FAILURE() << expected_path.string() << ":" << line << ": run differs\n  expected: " << wl
                  << "\n  got:      " << gl;
  }
}

TEST(ScenarioExamples, EachMeetsItsExpectationsAndRunsDeterministically) {
  auto files = example_files();
  ASSERT_FALSE(files.empty());
  for (const auto& f : files) {
    Scenario s = kmm::parse_scenario(slurp(f), f.string());
    EXPECT_EQ(kmm::parse_scenario(kmm::print_scenario(s), f.string()), s) << f;
    auto a = kmm::run_scenario(s);
    auto b = kmm::run_scenario(s);
    EXPECT_EQ(a.exit_status, 0) << f << "\n" << (a.failures.empty() ? "" : a.failures[0]);
    EXPECT_EQ(a.trace, b.trace) << f;
    EXPECT_EQ(a.dmesg, b.dmesg) << f;
  }
}
