// Tests for the scenario language (allocator/src/scenario_*.cpp): text and binary round trips
// (RapidCheck properties), every parse error's exact message, the examples in corpus/examples
// meeting their expectations, determinism, and decoded inputs never crashing the interpreter.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "kmm/scenario.h"

using kmm::Scenario;

namespace {

bool example_available(const std::filesystem::path& p);

std::vector<std::filesystem::path> example_files() {
  std::vector<std::filesystem::path> files;
  for (const auto& e :
       std::filesystem::directory_iterator(std::filesystem::path(KMM_SOURCE_DIR) / "corpus/examples"))
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
  Scenario s = kmm::parse_scenario("boot mem=32M nr_cpus=2\n"
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
      {"p0 = alloc_pages order=12\n",
       "t.kmm:1: bad value '12' for order: expected a number 0..11"},
      {"p0 = alloc_pages order=x\n", "t.kmm:1: bad value 'x' for order: expected a number 0..11"},
      {"p0 = alloc_pages order=1 order=2\n", "t.kmm:1: duplicate argument 'order'"},
      {"p0 = alloc_pages order=1 colour=red\n", "t.kmm:1: unknown argument 'colour' for alloc_pages"},
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
      {"p0 = alloc_pages order=0\nwrite p0+zz len=1 byte=1\n", "t.kmm:2: bad offset '+zz' in 'p0+zz'"},
      {"cpu 2\n", "t.kmm:1: cpu 2 out of range: the machine has 2 CPUs"},
      {"boot nr_cpus=4\ncpu 3\ncpu 64\n", "t.kmm:3: bad value '64' for cpu number: expected a number 0..63"},
      {"expect\n", "t.kmm:1: expect needs one of: report, no-report, null, value"},
      {"expect maybe\n", "t.kmm:1: unknown operation 'expect maybe'"},
      {"expect report Redzone\n", "t.kmm:1: expected a quoted string, got 'Redzone'"},
      {"expect report \"Redzone\n", "t.kmm:1: unterminated string"},
      {"proc_read buddyinfo\n", "t.kmm:1: bad path 'buddyinfo'"},
      {"proc_write /proc/sys/vm/drop_caches -1\n",
       "t.kmm:1: bad value '-1' for value: expected a number 0..16777215"},
      {"check \"x\"\n", "t.kmm:1: unexpected '\"x\"' for check"},
      {"p0 =\n", "t.kmm:1: missing operation after 'p0 ='"},
      {"check\x01\n", "t.kmm:1: control character in line"},
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

// ---- binary form ---------------------------------------------------------------------------

TEST(ScenarioBinary, EmptyAndTruncatedInputsAreShortScenarios) {
  EXPECT_EQ(kmm::print_scenario(decode({})), "");
  EXPECT_EQ(decode({3}).boot, "mem=32M nr_cpus=2 page_poison=1");
  // opcode 0 = alloc_pages needs 1 (order) + 3 (gfp) bytes: a truncated op ends the scenario.
  EXPECT_EQ(decode({0, 0, 3, 0xc0}).ops.size(), 0u);
  EXPECT_EQ(kmm::print_scenario(decode({0, 0, 3, 0xc0, 0x0c, 0x00})),
            "p0 = alloc_pages order=3 gfp=GFP_KERNEL\n");
}

TEST(ScenarioBinary, OpsWithNothingToReferToAreDropped) {
  // free_pages (opcode 1) before any allocation: dropped; its bytes are still consumed.
  Scenario s = decode({0, 1, 0, 0, 0, 0, 0, 3, 0xc0, 0x0c, 0x00});
  EXPECT_EQ(kmm::print_scenario(s), "p0 = alloc_pages order=3 gfp=GFP_KERNEL\n");
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
