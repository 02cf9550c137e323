// The /proc and /sys table (see procfs.h) and the page allocator's files and sysctls.
#include "procfs.h"

#include <cerrno>
#include <cstdlib>

#include "kernel.h"
#include "watermark.h"

namespace kmm {

std::string proc_vmstat(Kernel& k);
std::string proc_buddyinfo(Kernel& k);
std::string proc_pagetypeinfo(Kernel& k);
std::string proc_zoneinfo(Kernel& k);
std::string proc_meminfo(Kernel& k);

bool ProcFs::lookup(Kernel& k, const std::string& path, ProcFile* out) const {
  auto it = files_.find(path);
  if (it != files_.end()) {
    *out = it->second;
    return true;
  }
  for (const auto& r : resolvers_)
    if (r(k, path, out)) return true;
  return false;
}

std::vector<std::string> ProcFs::paths() const {
  std::vector<std::string> out;
  for (const auto& [path, file] : files_) out.push_back(path);
  return out;
}

bool parse_sysctl_int(const std::string& text, long* out) {
  std::string s = text;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) i++;
  s = s.substr(i);
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  if (errno || *end) return false;
  *out = v;
  return true;
}

// An integer sysctl in [lo, hi] whose change runs `apply` (proc_dointvec_minmax + handler).
static ProcFile int_sysctl(long (*get)(Kernel&), void (*set)(Kernel&, long), long lo, long hi) {
  ProcFile f;
  f.read = [get](Kernel& k) { return std::to_string(get(k)) + "\n"; };
  f.write = [set, lo, hi](Kernel& k, const std::string& text) {
    long v;
    if (!parse_sysctl_int(text, &v) || v < lo || v > hi) return -EINVAL;
    set(k, v);
    return 0;
  };
  return f;
}

void register_mm_procfs(Kernel& k) {
  ProcFs& fs = k.procfs;
  fs.add("/proc/buddyinfo", {proc_buddyinfo, nullptr});
  fs.add("/proc/pagetypeinfo", {proc_pagetypeinfo, nullptr});
  fs.add("/proc/zoneinfo", {proc_zoneinfo, nullptr});
  fs.add("/proc/vmstat", {proc_vmstat, nullptr});
  fs.add("/proc/meminfo", {proc_meminfo, nullptr});
  fs.add("/proc/sys/vm/min_free_kbytes",
         int_sysctl([](Kernel& k) { return static_cast<long>(k.min_free_kbytes); },
                    [](Kernel& k, long v) {
                      k.min_free_kbytes = static_cast<int>(v);
                      k.user_min_free_kbytes = static_cast<int>(v);
                      setup_per_zone_wmarks(k);
                    },
                    0, 0x7fffffff));
  fs.add("/proc/sys/vm/watermark_scale_factor",
         int_sysctl([](Kernel& k) { return static_cast<long>(k.watermark_scale_factor); },
                    [](Kernel& k, long v) {
                      k.watermark_scale_factor = static_cast<unsigned>(v);
                      setup_per_zone_wmarks(k);
                    },
                    1, 3000));
}

} // namespace kmm
