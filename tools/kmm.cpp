// The `kmm` command-line tool: run, replay, decode, encode and minimize scenarios, print /proc
// files and a slabtop-like view after a scenario, and run a campaign.
//
// Exit codes: 0 success; 1 a failed expectation or invariant (or a minimization that found
// nothing to keep); 2 a malformed file or command line ("FILE:LINE: what is wrong").
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "kmm/machine.h"
#include "kmm/scenario.h"
#include "tool.h"

namespace kmm::tool {

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "kmm: %s\n(try 'kmm --help')\n", msg.c_str());
  std::exit(2);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "kmm: cannot read %s: %s\n", path.c_str(), std::strerror(errno));
    std::exit(2);
  }
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_output(const std::string& path, const std::string& data) {
  if (path.empty() || path == "-") {
    std::fwrite(data.data(), 1, data.size(), stdout);
    return;
  }
  std::ofstream out(path, std::ios::binary);
  if (!out || !out.write(data.data(), static_cast<std::streamsize>(data.size()))) {
    std::fprintf(stderr, "kmm: cannot write %s\n", path.c_str());
    std::exit(2);
  }
}

Scenario load_text(const std::string& path) {
  try {
    return parse_scenario(read_file(path), path);
  } catch (const ScenarioError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    std::exit(2);
  }
}

void print_run(const RunResult& r, bool show_dmesg) {
  std::fputs(format_run(r, show_dmesg).c_str(), stdout);
}

bool wants_help(const std::vector<std::string>& args) {
  for (const auto& a : args)
    if (a == "--help" || a == "-h") return true;
  return false;
}

// Splits `-o FILE` out of args.
std::string take_output(std::vector<std::string>& args) {
  std::string out;
  for (size_t i = 0; i < args.size(); i++)
    if (args[i] == "-o") {
      if (i + 1 >= args.size()) usage_error("-o needs a file name");
      out = args[i + 1];
      args.erase(args.begin() + static_cast<long>(i), args.begin() + static_cast<long>(i) + 2);
      break;
    }
  return out;
}

// ---- run / replay / decode / encode -------------------------------------------------------

int cmd_run(std::vector<std::string> args) {
  if (wants_help(args)) {
    std::printf("usage: kmm run [--no-dmesg] FILE.kmm\n\n"
                "Runs a scenario: one trace line per operation (results by pfn, physical\n"
                "address and cache name), the kernel log, the reports. Validates the machine at\n"
                "each `check` and at the end. Exit 1 on a failed expectation or invariant, 2 on a\n"
                "malformed file.\n\nOperations:\n%s",
                scenario_op_usage().c_str());
    return 0;
  }
  bool dmesg = true;
  std::vector<std::string> files;
  for (auto& a : args)
    if (a == "--no-dmesg") dmesg = false;
    else if (a.size() > 1 && a[0] == '-') usage_error("run: unknown option " + a);
    else files.push_back(a);
  if (files.size() != 1) usage_error("run needs exactly one FILE.kmm");
  Scenario s = load_text(files[0]);
  RunResult r = run_scenario(s);
  print_run(r, dmesg);
  return r.exit_status;
}

int cmd_replay(std::vector<std::string> args) {
  if (wants_help(args)) {
    std::printf("usage: kmm replay [--no-dmesg] CRASH\n\n"
                "Decodes a binary fuzz input (a crash, a corpus file) into its text scenario,\n"
                "prints it, then runs it as `kmm run` does. Any byte string is a valid input.\n");
    return 0;
  }
  bool dmesg = true;
  std::vector<std::string> files;
  for (auto& a : args)
    if (a == "--no-dmesg") dmesg = false;
    else if (a.size() > 1 && a[0] == '-') usage_error("replay: unknown option " + a);
    else files.push_back(a);
  if (files.size() != 1) usage_error("replay needs exactly one input file");
  std::string bytes = read_file(files[0]);
  Scenario s = decode_scenario(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  s.filename = files[0];
  std::printf("--- scenario (%zu bytes, %zu operations) ---\n%s--- run ---\n", bytes.size(),
              s.ops.size(), print_scenario(s).c_str());
  RunResult r = run_scenario(s);
  print_run(r, dmesg);
  return r.exit_status;
}

int cmd_decode(std::vector<std::string> args) {
  if (wants_help(args)) {
    std::printf("usage: kmm decode [-o OUT.kmm] INPUT\n\n"
                "Prints the text scenario a binary input decodes to.\n");
    return 0;
  }
  std::string out = take_output(args);
  if (args.size() != 1) usage_error("decode needs exactly one input file");
  std::string bytes = read_file(args[0]);
  Scenario s = decode_scenario(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  write_output(out, print_scenario(s));
  return 0;
}

int cmd_encode(std::vector<std::string> args) {
  if (wants_help(args)) {
    std::printf("usage: kmm encode [-o OUT] FILE.kmm\n\n"
                "Writes the binary form of a text scenario (a fuzz seed). The boot line must be\n"
                "one of the fuzz machines:\n");
    for (const auto& m : fuzz_machines())
      std::printf("  %s\n", m.empty() ? "(none: the default machine)" : ("boot " + m).c_str());
    return 0;
  }
  std::string out = take_output(args);
  if (args.size() != 1) usage_error("encode needs exactly one FILE.kmm");
  Scenario s = load_text(args[0]);
  std::vector<uint8_t> bytes;
  try {
    bytes = encode_scenario(s);
  } catch (const ScenarioError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  if (out.empty() && isatty(fileno(stdout))) {
    std::fprintf(stderr, "kmm: refusing to write binary to a terminal; use -o FILE or a pipe\n");
    return 2;
  }
  write_output(out, std::string(bytes.begin(), bytes.end()));
  return 0;
}

// ---- minimize ---------------------------------------------------------------------------

int cmd_minimize(std::vector<std::string> args) {
  if (wants_help(args)) {
    std::printf("usage: kmm minimize [--binary] [-o OUT.kmm] FILE\n\n"
                "Shrinks a failing scenario: removes operations while the run still shows the\n"
                "same first report title (or, without reports, the same first failed\n"
                "expectation or invariant). FILE is text unless --binary (or it does not parse\n"
                "as text and decodes instead). Prints the minimal scenario.\n");
    return 0;
  }
  std::string out = take_output(args);
  bool binary = false;
  std::vector<std::string> files;
  for (auto& a : args)
    if (a == "--binary") binary = true;
    else if (a.size() > 1 && a[0] == '-') usage_error("minimize: unknown option " + a);
    else files.push_back(a);
  if (files.size() != 1) usage_error("minimize needs exactly one FILE");
  std::string data = read_file(files[0]);
  Scenario s;
  if (binary) {
    s = decode_scenario(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  } else {
    try {
      s = parse_scenario(data, files[0]);
    } catch (const ScenarioError& e) {
      std::fprintf(stderr, "%s\n", e.what());
      return 2;
    }
  }
  s.filename = files[0];
  RunResult first = run_scenario(s);
  if (first.first_failure_key.empty()) {
    std::fprintf(stderr, "kmm: %s runs clean (no report, no failure): nothing to minimize\n",
                 files[0].c_str());
    return 1;
  }
  const std::string key = first.first_failure_key;
  std::fprintf(stderr, "minimizing %zu operations, keeping: %s\n", s.ops.size(), key.c_str());
  size_t runs = 0;
  auto still_fails = [&](const Scenario& cand) {
    // A candidate must still be a valid scenario (no reference to a removed result).
    Scenario reparsed;
    try {
      reparsed = parse_scenario(print_scenario(cand), s.filename);
    } catch (const ScenarioError&) {
      return false;
    }
    runs++;
    return run_scenario(reparsed).first_failure_key == key;
  };
  // ddmin-style: remove chunks, halving the chunk size when nothing can go.
  for (size_t chunk = std::max<size_t>(1, s.ops.size() / 2);; chunk /= 2) {
    bool progress = true;
    while (progress) {
      progress = false;
      for (size_t i = 0; i < s.ops.size();) {
        Scenario cand = s;
        size_t n = std::min(chunk, cand.ops.size() - i);
        cand.ops.erase(cand.ops.begin() + static_cast<long>(i),
                       cand.ops.begin() + static_cast<long>(i + n));
        if (still_fails(cand)) {
          s = cand;
          progress = true;
        } else {
          i += n;
        }
      }
    }
    if (chunk <= 1) break;
  }
  // Try the default machine instead of the boot line.
  if (!s.boot.empty()) {
    Scenario cand = s;
    cand.boot.clear();
    if (still_fails(cand)) s = cand;
  }
  std::fprintf(stderr, "minimized to %zu operations in %zu runs\n", s.ops.size(), runs);
  write_output(out, "# minimized from " + files[0] + ": " + key + "\n" + print_scenario(s));
  return 0;
}

// ---- proc / top ---------------------------------------------------------------------------

MachineArgs machine_args(const std::vector<std::string>& args, const char* cmd) {
  MachineArgs m;
  std::string boot;
  bool have_boot = false;
  for (size_t i = 0; i < args.size(); i++) {
    const std::string& a = args[i];
    if (a == "--boot") {
      if (i + 1 >= args.size()) usage_error(std::string(cmd) + ": --boot needs a command line");
      boot = args[++i];
      have_boot = true;
    } else if (a.rfind("--boot=", 0) == 0) {
      boot = a.substr(7);
      have_boot = true;
    } else if (a.size() > 1 && a[0] == '-') {
      usage_error(std::string(cmd) + ": unknown option " + a);
    } else if (!m.have_file && a.size() > 4 && a.compare(a.size() - 4, 4, ".kmm") == 0) {
      m.s = load_text(a);
      m.have_file = true;
    } else {
      m.rest.push_back(a);
    }
  }
  if (have_boot) m.s.boot = boot;
  return m;
}

int run_then(const Scenario& s, const std::function<void(Machine&)>& fn, bool quiet) {
  RunOptions opts;
  opts.at_end = fn;
  RunResult r = run_scenario(s, opts);
  if (r.exit_status == 2) {
    for (const auto& f : r.failures) std::fprintf(stderr, "%s\n", f.c_str());
    return 2;
  }
  if (!quiet || r.exit_status)
    for (const auto& f : r.failures) std::fprintf(stderr, "%s\n", f.c_str());
  return r.exit_status;
}

int cmd_proc(std::vector<std::string> args) {
  if (wants_help(args)) {
    std::printf(
        "usage: kmm proc [--boot LINE] [FILE.kmm] PATH...\n\n"
        "Boots the machine (the scenario's boot line, or --boot, or the default), runs the\n"
        "scenario if one is given, then prints each /proc or /sys file, e.g.\n"
        "  kmm proc /proc/buddyinfo\n"
        "  kmm proc --boot 'mem=64M nr_cpus=4' /proc/zoneinfo\n"
        "  kmm proc corpus/examples/fragmentation.kmm /proc/buddyinfo /proc/meminfo\n");
    return 0;
  }
  MachineArgs m = machine_args(args, "proc");
  if (m.rest.empty()) usage_error("proc needs at least one PATH");
  int bad = 0;
  int rc = run_then(
      m.s,
      [&](Machine& mach) {
        for (const auto& path : m.rest) {
          if (m.rest.size() > 1) std::printf("==> %s <==\n", path.c_str());
          try {
            std::string text = mach.proc_read(path);
            std::fwrite(text.data(), 1, text.size(), stdout);
          } catch (const std::exception& e) {
            std::fprintf(stderr, "kmm: %s\n", e.what());
            bad = 2;
          }
        }
      },
      true);
  return rc ? rc : bad;
}

} // namespace kmm::tool

using namespace kmm::tool;

static void print_help() {
  std::printf("usage: kmm COMMAND [ARGS]   (kmm COMMAND --help for each)\n\n"
              "  run FILE.kmm          run a scenario: trace, dmesg, reports; exit 1 on a failure\n"
              "  replay CRASH          decode a binary fuzz input, print it as text, run it\n"
              "  decode INPUT          print the text scenario of a binary input\n"
              "  encode FILE.kmm       write the binary form of a text scenario\n"
              "  minimize FILE         shrink a failing scenario keeping its first report/failure\n"
              "  proc [--boot LINE] [FILE.kmm] PATH...   print /proc files after a scenario\n"
              "  top [--boot LINE] [FILE.kmm]            slabtop-like view after a scenario\n"
              "  campaign              run the default campaign (today: the built-in demo)\n"
              "  ops                   list the scenario operations\n");
}

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    print_help();
    return 2;
  }
  std::string cmd = args[0];
  args.erase(args.begin());
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    print_help();
    return 0;
  }
  if (cmd == "run") return cmd_run(args);
  if (cmd == "replay") return cmd_replay(args);
  if (cmd == "decode") return cmd_decode(args);
  if (cmd == "encode") return cmd_encode(args);
  if (cmd == "minimize") return cmd_minimize(args);
  if (cmd == "proc") return cmd_proc(args);
  if (cmd == "top") return cmd_top(args);
  if (cmd == "campaign") return cmd_campaign(args);
  if (cmd == "ops") {
    if (wants_help(args)) {
      std::printf("usage: kmm ops\n\nLists every scenario operation and its syntax.\n");
      return 0;
    }
    std::printf("%s", kmm::scenario_op_usage().c_str());
    return 0;
  }
  usage_error("unknown command '" + cmd + "'");
}
