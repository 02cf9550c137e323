// `kmm top`: a slabtop-like view of the slab caches after a scenario (from /proc/slabinfo),
// with the page allocator's summary from /proc/meminfo and /proc/buddyinfo.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "tool.h"

namespace kmm::tool {

namespace {

struct SlabRow {
  std::string name;
  unsigned long active = 0, objs = 0, objsize = 0, perslab = 0, pages = 0, slabs = 0;
  unsigned long cache_kb() const { return slabs * pages * 4; }
};

// /proc/slabinfo version 2.1 rows (the header lines are skipped).
std::vector<SlabRow> parse_slabinfo(const std::string& text) {
  std::vector<SlabRow> rows;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line.rfind("slabinfo", 0) == 0) continue;
    std::istringstream w(line);
    SlabRow r;
    std::string colon, word;
    if (!(w >> r.name >> r.active >> r.objs >> r.objsize >> r.perslab >> r.pages)) continue;
    // : tunables a b c : slabdata active_slabs num_slabs sharedavail
    std::vector<std::string> rest;
    while (w >> word) rest.push_back(word);
    auto it = std::find(rest.begin(), rest.end(), "slabdata");
    if (it != rest.end() && it + 2 < rest.end()) r.slabs = std::stoul(*(it + 2));
    rows.push_back(r);
  }
  return rows;
}

void print_top(Machine& m, size_t limit) {
  std::string slabinfo;
  try {
    slabinfo = m.proc_read("/proc/slabinfo");
  } catch (const std::exception&) {}
  auto rows = parse_slabinfo(slabinfo);
  unsigned long free_kb = 0, total_kb = 0;
  {
    std::istringstream in(m.proc_read("/proc/meminfo"));
    std::string key;
    unsigned long v;
    std::string unit;
    while (in >> key >> v) {
      std::getline(in, unit);
      if (key == "MemTotal:") total_kb = v;
      if (key == "MemFree:") free_kb = v;
    }
  }
  std::printf(" Memory: %lu kB total, %lu kB free\n", total_kb, free_kb);
  if (rows.empty()) {
    std::printf(" No slab caches: /proc/slabinfo is %s.\n",
                slabinfo.empty() ? "not provided by this build (SLUB not built yet)" : "empty");
    std::printf("\n/proc/buddyinfo:\n%s", m.proc_read("/proc/buddyinfo").c_str());
    return;
  }
  unsigned long active = 0, total = 0, slabs = 0, size_kb = 0, active_caches = 0;
  unsigned long min_obj = ~0ul, max_obj = 0, sum_obj = 0;
  for (const auto& r : rows) {
    active += r.active;
    total += r.objs;
    slabs += r.slabs;
    size_kb += r.cache_kb();
    if (r.active) active_caches++;
    min_obj = std::min(min_obj, r.objsize);
    max_obj = std::max(max_obj, r.objsize);
    sum_obj += r.objsize;
  }
  auto pct = [](unsigned long a, unsigned long b) {
    return b ? 100.0 * double(a) / double(b) : 0.0;
  };
  std::printf(" Active / Total Objects (%% used)    : %lu / %lu (%.1f%%)\n", active, total,
              pct(active, total));
  // SLUB reports every slab of a cache as active (slabinfo's active_slabs == num_slabs).
  std::printf(" Active / Total Slabs (%% used)      : %lu / %lu (%.1f%%)\n", slabs, slabs,
              pct(slabs, slabs));
  std::printf(" Active / Total Caches (%% used)     : %lu / %zu (%.1f%%)\n", active_caches,
              rows.size(), pct(active_caches, rows.size()));
  std::printf(" Total Size                         : %lu.00K\n", size_kb);
  std::printf(" Minimum / Average / Maximum Object : %.2fK / %.2fK / %.2fK\n\n", min_obj / 1024.0,
              double(sum_obj) / double(rows.size()) / 1024.0, max_obj / 1024.0);
  std::sort(rows.begin(), rows.end(), [](const SlabRow& a, const SlabRow& b) {
    return a.cache_kb() != b.cache_kb() ? a.cache_kb() > b.cache_kb() : a.name < b.name;
  });
  std::printf("  OBJS ACTIVE  USE OBJ SIZE  SLABS OBJ/SLAB CACHE SIZE NAME\n");
  for (size_t i = 0; i < rows.size() && i < limit; i++) {
    const auto& r = rows[i];
    std::printf("%6lu %6lu %3.0f%% %7.2fK %6lu %8lu %9luK %s\n", r.objs, r.active,
                pct(r.active, r.objs), r.objsize / 1024.0, r.slabs, r.perslab, r.cache_kb(),
                r.name.c_str());
  }
}

} // namespace

int cmd_top(std::vector<std::string> args) {
  if (wants_help(args)) {
    std::printf("usage: kmm top [--boot LINE] [-n ROWS] [FILE.kmm]\n\n"
                "Runs the scenario (or just boots), then prints a slabtop-like view of the slab\n"
                "caches, largest first, from /proc/slabinfo.\n");
    return 0;
  }
  size_t limit = 40;
  std::vector<std::string> rest;
  for (size_t i = 0; i < args.size(); i++)
    if (args[i] == "-n") {
      if (i + 1 >= args.size()) usage_error("top: -n needs a number");
      char* end = nullptr;
      const std::string& n = args[++i];
      limit = std::strtoul(n.c_str(), &end, 10);
      if (n.empty() || *end) usage_error("top: -n needs a number, got '" + n + "'");
    } else {
      rest.push_back(args[i]);
    }
  MachineArgs m = machine_args(rest, "top");
  if (!m.rest.empty()) usage_error("top: unexpected argument " + m.rest[0]);
  return run_then(
      m.s, [&](Machine& mach) { print_top(mach, limit); }, false);
}

} // namespace kmm::tool
