// The virtual /proc and /sys: a table of files, each with a read and/or write handler, plus
// resolvers for families of paths (/proc/<pid>/..., /sys/kernel/slab/<cache>/...). Each layer
// registers its own files at boot; the formats live beside the data they show.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace kmm {

struct Kernel;

struct ProcFile {
  std::function<std::string(Kernel&)> read;              // empty: not readable
  std::function<int(Kernel&, const std::string&)> write; // empty: not writable (-EACCES)
};

class ProcFs {
public:
  void add(const std::string& path, ProcFile file) { files_[path] = std::move(file); }
  // A resolver returns true and fills `out` if it serves `path`.
  using Resolver = std::function<bool(Kernel&, const std::string& path, ProcFile* out)>;
  void add_resolver(Resolver r) { resolvers_.push_back(std::move(r)); }

  bool lookup(Kernel& k, const std::string& path, ProcFile* out) const;
  std::vector<std::string> paths() const;

private:
  std::map<std::string, ProcFile> files_;
  std::vector<Resolver> resolvers_;
};

// Registers the page-allocator files: buddyinfo, pagetypeinfo, zoneinfo, vmstat, meminfo and
// the vm sysctls.
void register_mm_procfs(Kernel& k);

// Parses a sysctl integer as proc_dointvec does: optional sign, digits, optional trailing
// newline. Returns false on anything else.
bool parse_sysctl_int(const std::string& text, long* out);

} // namespace kmm
