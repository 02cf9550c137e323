// The scenario language: one list of operations on one machine, with a text form people read and
// edit (corpus/**/*.kmm), a binary form fuzzers mutate, and an interpreter. [contract]
//
//   boot mem=32M nr_cpus=2                      # optional; absent = the default machine
//   p0 = alloc_pages order=3 gfp=GFP_KERNEL     # named results
//   write p0+16 len=8 byte=0x12                 # addresses are symbolic: result + offset
//   free_pages p0
//   expect no-report
//   check                                       # kmm::validate now
//
// Every operation is declared once, in allocator/src/scenario_ops.cpp: its name, its arguments
// (text keys, ranges, binary widths) and its executor. The parser, the printer, the codec and
// the interpreter all read that table.
//
// Binary form: one header byte choosing a machine, then per operation one opcode byte (modulo
// the number of operations) and fixed small fields. Every byte string decodes to a valid
// scenario: values are folded into range, references taken modulo the results defined so far,
// an operation with nothing to refer to is dropped, a truncated operation ends the scenario.
// decode(encode(s)) == canonical(s) for every scenario in range.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace kmm {

// A malformed scenario. what() is "FILE:LINE: what is wrong".
class ScenarioError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// Orders result names (p0, o12, c3): shorter first, then byte by byte. A map keyed by names
// looks up without memcmp: under the fuzz build every memcmp that differs feeds libFuzzer's
// comparison tables (names are not input bytes, so that only cost time).
struct NameLess {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const {
    if (a.size() != b.size()) return a.size() < b.size();
    for (size_t i = 0; i < a.size(); i++)
      if (a[i] != b[i]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[i]);
    return false;
  }
};

// One argument value. Its meaning is given by the operation's schema (scenario_ops.cpp):
// a number (order, gfp, byte, size ...), a string (path, title, cache name) or a reference
// (str = result name; for a memory access, num = byte offset and len = length).
struct Value {
  int64_t num = 0;
  int64_t len = 0;
  std::string str;
  bool present = true; // false: an optional argument left out (its default depends on the ref)
  bool operator==(const Value&) const = default;
};

struct Op {
  unsigned code = 0;       // index into the operation table
  std::string result;      // the result's name ("p0"), empty for operations without a result
  std::vector<Value> args; // one per schema field, in schema order
  int line = 0;            // source line (not part of the meaning)
  bool operator==(const Op& o) const {
    return code == o.code && result == o.result && args == o.args;
  }
};

struct Scenario {
  std::string boot; // the kernel command line; empty = the default machine
  std::vector<Op> ops;
  std::string filename = "<scenario>"; // for messages
  bool operator==(const Scenario& o) const { return boot == o.boot && ops == o.ops; }
};

// Text form. parse_scenario throws ScenarioError("FILE:LINE: ...").
Scenario parse_scenario(const std::string& text, const std::string& filename = "<scenario>");
std::string print_scenario(const Scenario& s);
std::string print_op(const Scenario& s, const Op& op);

// Results renamed p0, p1 ... / x0 ... / c0 ... / o0 ... in order of definition: the names the
// decoder gives.
Scenario canonical(const Scenario& s);

// Binary form. encode throws ScenarioError for a scenario outside the encodable range (a boot
// line not among the fuzz machines, a path not in the table, a string too long ...).
std::vector<uint8_t> encode_scenario(const Scenario& s);
Scenario decode_scenario(const uint8_t* data, size_t size);
inline Scenario decode_scenario(const std::vector<uint8_t>& bytes) {
  return decode_scenario(bytes.data(), bytes.size());
}
// The boot lines the header byte chooses among.
const std::vector<std::string>& fuzz_machines();

class Machine;

struct RunOptions {
  bool validate_at_end = true;
  // Called after the last operation, with the machine still current (kmm proc, kmm top).
  std::function<void(Machine&)> at_end;
};

struct RunResult {
  std::vector<std::string> trace;    // one line per operation (plus proc_read contents, reports)
  std::string dmesg;                 // the machine's kernel log at the end
  std::vector<std::string> reports;  // titles of every report, in order
  std::vector<std::string> failures; // "FILE:LINE: expectation failed: ..." and validate errors
  std::string first_failure_key;     // the first report title or failure, for minimization
  int exit_status = 0;               // 0 ok, 1 failed expectation or invariant, 2 bad scenario
};

// Boots the scenario's machine, runs every operation on it (this thread acts as its CPUs), checks
// expectations, calls validate at `check` and at the end. Never throws for a valid scenario; a
// boot line the machine refuses gives exit_status 2 and the message in failures.
RunResult run_scenario(const Scenario& s, const RunOptions& opts = {});

// What `kmm run` prints: the trace, "--- dmesg ---" and the log (unless show_dmesg is false), the
// report titles, then "--- ok ---" or "--- FAILED ---" with each failure. The same scenario gives
// the same bytes in every build flavour; corpus/examples/<name>.out holds them for each example.
std::string format_run(const RunResult& r, bool show_dmesg = true);

// The operation names, for --help.
std::vector<std::string> scenario_op_names();
std::string scenario_op_usage(); // one line per operation: its syntax

} // namespace kmm
