// The system under test shared by every property: one booted machine made current on this
// thread, the results of the scenario so far by name, and the reproducer log.
//
// Every command's show() prints its operation as a scenario line (kmm/scenario.h). Sut::step()
// also writes that line into RC_LOG, after a "boot ..." line, so the minimal failing case prints
// as a complete `.kmm` file that `kmm run` executes (properties/README.md: turning it into a
// regression in corpus/regressions/).
#pragma once

#include <rapidcheck.h>
#include <rapidcheck/state.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "kmm/linux.h"
#include "kmm/machine.h"
#include "kmm/validate.h"

#include "kernel.h"
#include "pcp.h"

namespace kmm::prop {

// Command counts scale with KMM_PROP_SCALE (default 1; nightly: 10). RC_PARAMS max_success sets
// how many sequences are tried.
inline int scale() {
  const char* s = std::getenv("KMM_PROP_SCALE");
  int v = s ? std::atoi(s) : 1;
  return v < 1 ? 1 : v;
}

inline std::string hex(uint64_t v) {
  std::ostringstream os;
  os << "0x" << std::hex << v;
  return os.str();
}

inline std::string byte_hex(unsigned b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", b & 0xff);
  return buf;
}

template <typename Cmd>
std::string show_line(const Cmd& c) {
  std::ostringstream os;
  c.show(os);
  return os.str();
}

struct Sut {
  std::string boot_line;
  std::unique_ptr<Machine> m;
  std::unique_ptr<MachineScope> scope;
  std::vector<std::string> lines; // the scenario so far

  explicit Sut(const std::string& boot) : boot_line(boot) {
    m = Machine::boot(boot);
    scope = std::make_unique<MachineScope>(*m);
    RC_LOG() << "---- reproducer (.kmm; see properties/README.md) ----\n";
    if (!boot.empty()) RC_LOG() << "boot " << boot << "\n";
  }
  ~Sut() {
    scope.reset();
    m.reset();
  }
  Kernel& k() { return m->kernel(); }

  // Records the operation about to run in the reproducer.
  template <typename Cmd>
  void step(const Cmd& c) {
    std::string l = show_line(c);
    lines.push_back(l);
    RC_LOG() << l << "\n";
  }
  void note(const std::string& l) {
    lines.push_back(l);
    RC_LOG() << l << "\n";
  }

  // Report titles since `from`.
  std::vector<std::string> titles(size_t from = 0) const {
    std::vector<std::string> t;
    for (size_t i = from; i < m->reports().size(); i++) t.push_back(m->reports()[i].title);
    return t;
  }
  size_t nreports() const { return m->reports().size(); }
  std::string dump_reports(size_t from = 0) const {
    std::string s;
    for (size_t i = from; i < m->reports().size(); i++) s += m->reports()[i].title + "\n";
    return s;
  }
  // kmm::validate must hold; its complaints go into the failure message.
  void check_valid() {
    auto errs = validate(*m);
    std::string all;
    for (auto& e : errs) all += e + "\n";
    RC_LOG() << (errs.empty() ? "" : "validate:\n" + all);
    RC_ASSERT(errs.empty());
  }
  void drain() { drain_all_pages(k(), nullptr); }

  // One /proc/meminfo field in kB (-1 if absent).
  long meminfo(const std::string& key) {
    std::istringstream in(m->proc_read("/proc/meminfo"));
    std::string line;
    while (std::getline(in, line)) {
      auto colon = line.find(':');
      if (colon != std::string::npos && line.substr(0, colon) == key)
        return std::strtol(line.c_str() + colon + 1, nullptr, 10);
    }
    return -1;
  }
};

// The free blocks per zone and order as /proc/buddyinfo shows them, as one comparable string.
inline std::string buddyinfo(Sut& s) { return s.m->proc_read("/proc/buddyinfo"); }

} // namespace kmm::prop
