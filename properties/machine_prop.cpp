// The whole machine: random scenarios in the scenario language (page allocations, kmalloc,
// writes, frees, proc writes) run through kmm::run_scenario.
//
//   MachineProp.MeminfoArithmetic  after every step: MemFree == the buddyinfo total, Slab ==
//                                  SReclaimable + SUnreclaim, Active/Inactive == anon + file
//                                  parts, MemFree <= MemTotal, MemTotal constant; validate holds
//   MachineProp.Deterministic      a scenario run twice gives the same trace, dmesg and reports
//
// The generated scenario is printed (RC_LOG) as the .kmm file itself.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <sstream>

#include "kmm/scenario.h"
#include "model_machine.h"

namespace kmm::prop {
namespace {

// A random scenario text: results p<i> / o<i>, each freed at most once.
std::string gen_scenario_text(int n) {
  std::ostringstream os;
  os << "boot mem=32M nr_cpus=2\n";
  std::vector<std::string> pages, objs;
  int id = 0;
  for (int i = 0; i < n; i++) {
    int what = *rc::gen::inRange(0, 9);
    if (what <= 2) {
      std::string r = "p" + std::to_string(id++);
      os << r << " = alloc_pages order=" << *rc::gen::inRange(0, 6) << " gfp="
         << *rc::gen::element<std::string>("GFP_KERNEL", "GFP_NOWAIT|__GFP_NOWARN",
                                           "GFP_KERNEL|__GFP_ZERO", "GFP_ATOMIC")
         << "\n";
      pages.push_back(r);
    } else if (what <= 4) {
      std::string r = "o" + std::to_string(id++);
      os << r << " = " << *rc::gen::element<std::string>("kmalloc", "kzalloc")
         << " size=" << *rc::gen::inRange(1, 9000) << "\n";
      objs.push_back(r);
    } else if (what == 5 && !pages.empty()) {
      size_t j = *rc::gen::inRange<size_t>(0, pages.size());
      os << "free_pages " << pages[j] << "\n";
      pages.erase(pages.begin() + long(j));
    } else if (what == 6 && !objs.empty()) {
      size_t j = *rc::gen::inRange<size_t>(0, objs.size());
      os << "kfree " << objs[j] << "\n";
      objs.erase(objs.begin() + long(j));
    } else if (what == 7 && !objs.empty()) {
      os << "fill " << *rc::gen::elementOf(objs) << " byte=" << byte_hex(*rc::gen::inRange(0, 256))
         << "\n";
    } else if (what == 8) {
      os << "proc_read /proc/meminfo\n";
    } else {
      os << "cpu " << *rc::gen::inRange(0, 2) << "\n";
    }
  }
  os << "check\n";
  return os.str();
}

long field(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon != std::string::npos && line.substr(0, colon) == key)
      return std::strtol(line.c_str() + colon + 1, nullptr, 10);
  }
  return -1;
}

long buddyinfo_kb(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  long pages = 0;
  while (std::getline(in, line)) {
    std::istringstream ls(line.substr(line.find("zone") + 4));
    std::string zname;
    ls >> zname;
    long n;
    for (int o = 0; ls >> n; o++) pages += n << o;
  }
  return pages * 4;
}

void check_meminfo(Machine& m, long total0, const std::string& where) {
  std::string mi = m.proc_read("/proc/meminfo");
  long total = field(mi, "MemTotal"), free = field(mi, "MemFree");
  long bi = buddyinfo_kb(m.proc_read("/proc/buddyinfo"));
  bool ok = total == total0 && free <= total && free == bi &&
            field(mi, "Slab") == field(mi, "SReclaimable") + field(mi, "SUnreclaim") &&
            field(mi, "Active") == field(mi, "Active(anon)") + field(mi, "Active(file)") &&
            field(mi, "Inactive") == field(mi, "Inactive(anon)") + field(mi, "Inactive(file)");
  if (!ok)
    RC_LOG() << "meminfo arithmetic broken after: " << where << "\n"
             << mi << "buddyinfo total " << bi << " kB\n";
  RC_ASSERT(ok);
}

} // namespace

RC_GTEST_PROP(MachineProp, MeminfoArithmetic, ()) {
  std::string text = gen_scenario_text(*rc::gen::inRange(1, 60 * scale()));
  RC_LOG() << "---- reproducer (.kmm) ----\n" << text;
  Scenario sc = parse_scenario(text, "prop.kmm");
  long total0 = -1;
  RunOptions opts;
  // Re-run growing prefixes would be quadratic; instead check at the end of every prefix length
  // in steps (each run is milliseconds), which covers "after every step" for short scenarios.
  for (size_t n = 1; n <= sc.ops.size(); n += (sc.ops.size() > 20 ? 3 : 1)) {
    Scenario prefix = sc;
    prefix.ops.resize(n);
    std::string where = print_op(sc, sc.ops[n - 1]);
    opts.at_end = [&](Machine& m) {
      if (total0 < 0) total0 = field(m.proc_read("/proc/meminfo"), "MemTotal");
      check_meminfo(m, total0, where);
    };
    RunResult r = run_scenario(prefix, opts);
    for (auto& f : r.failures) RC_LOG() << f << "\n";
    RC_ASSERT(r.failures.empty());
  }
}

RC_GTEST_PROP(MachineProp, Deterministic, ()) {
  std::string text = gen_scenario_text(*rc::gen::inRange(1, 80 * scale()));
  RC_LOG() << "---- reproducer (.kmm) ----\n" << text;
  Scenario sc = parse_scenario(text, "prop.kmm");
  RunResult a = run_scenario(sc), b = run_scenario(sc);
  RC_ASSERT(a.trace == b.trace);
  RC_ASSERT(a.dmesg == b.dmesg);
  RC_ASSERT(a.reports == b.reports);
  RC_ASSERT(a.exit_status == b.exit_status);
}

} // namespace kmm::prop
