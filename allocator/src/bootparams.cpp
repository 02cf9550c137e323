// Kernel command line parsing: "mem=64M nr_cpus=4 slab_nomerge". Each word is name[=value];
// names and value syntax follow the kernel's (memparse suffixes, on/off booleans). Anything not
// in bootparams.def, or a value that does not parse or is out of range, is a BootError that
// names the parameter.
#include "bootparams.h"

#include <cerrno>
#include <cstdlib>
#include <map>
#include <mutex>
#include <sstream>

#include "kmm/machine.h"

namespace kmm {

const std::vector<BootParamInfo>& boot_param_table() {
  static const std::vector<BootParamInfo> table = {
#define BOOT_PARAM(name, field, type, def, desc) {name, ParamType::type, def, desc},
#include "bootparams.def"
#undef BOOT_PARAM
  };
  return table;
}

bool memparse(const std::string& text, uint64_t* out) {
  if (text.empty() || !(text[0] >= '0' && text[0] <= '9')) return false;
  errno = 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(text.c_str(), &end, 0);
  if (errno) return false;
  unsigned shift = 0;
  switch (*end) {
  case '\0': break;
  case 'k':
  case 'K':
    shift = 10;
    ++end;
    break;
  case 'm':
  case 'M':
    shift = 20;
    ++end;
    break;
  case 'g':
  case 'G':
    shift = 30;
    ++end;
    break;
  case 't':
  case 'T':
    shift = 40;
    ++end;
    break;
  default: return false;
  }
  if (*end != '\0') return false;
  if (shift && (v >> (64 - shift)) != 0) return false;
  *out = v << shift;
  return true;
}

namespace {

[[noreturn]] void bad(const std::string& name, const std::string& value, const std::string& why) {
  throw BootError("boot parameter '" + name + "=" + value + "': " + why);
}

bool parse_bool(const std::string& v, bool* out) {
  if (v == "1" || v == "on" || v == "y" || v == "Y" || v == "yes") return *out = true, true;
  if (v == "0" || v == "off" || v == "n" || v == "N" || v == "no") return *out = false, true;
  return false;
}

// UINT values use the whole 64-bit range (kmm.seed=18446744073709551615).
bool parse_uint(const std::string& v, uint64_t* out) {
  if (v.empty() || !(v[0] >= '0' && v[0] <= '9')) return false;
  errno = 0;
  char* end = nullptr;
  unsigned long long x = std::strtoull(v.c_str(), &end, 0);
  if (errno || *end) return false;
  *out = x;
  return true;
}

bool parse_int(const std::string& v, int64_t* out) {
  if (v.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long long x = std::strtoll(v.c_str(), &end, 0);
  if (errno || *end) return false;
  *out = x;
  return true;
}

void set_value(BootParams& p, const BootParamInfo& info, const std::string& name,
               const std::string& value, bool has_value) {
  const std::string v = value;
  auto as_size = [&]() {
    uint64_t x;
    if (!memparse(v, &x)) bad(name, v, "expected a size such as 64M (suffixes K, M, G, T)");
    return x;
  };
  auto as_uint = [&]() {
    uint64_t x;
    if (!parse_uint(v, &x)) bad(name, v, "expected a non-negative integer");
    return x;
  };
  auto as_int = [&]() {
    int64_t x;
    if (!parse_int(v, &x)) bad(name, v, "expected an integer");
    return x;
  };
  auto as_bool = [&]() {
    if (!has_value) return true;
    bool b;
    if (!parse_bool(v, &b)) bad(name, v, "expected 0/1, on/off or y/n");
    return b;
  };
  if (info.type != ParamType::BOOL && info.type != ParamType::FLAG && !has_value)
    throw BootError("boot parameter '" + name + "' needs a value (" + name + "=...)");
  if (info.type == ParamType::FLAG && has_value)
    throw BootError("boot parameter '" + name + "' takes no value");
#define SIZE as_size()
#define UINT as_uint()
#define INT as_int()
#define BOOL as_bool()
#define STR v
#define FLAG true
#define BOOT_PARAM(pname, field, type, def, desc)                                                  \
  if (std::string(pname) == info.name) {                                                           \
    p.field = type;                                                                                \
    return;                                                                                        \
  }
#include "bootparams.def"
#undef BOOT_PARAM
#undef SIZE
#undef UINT
#undef INT
#undef BOOL
#undef STR
#undef FLAG
}

void check_ranges(const BootParams& p) {
  auto range = [](const char* name, uint64_t v, uint64_t lo, uint64_t hi, const char* unit) {
    if (v < lo || v > hi) {
      std::ostringstream os;
      os << "boot parameter '" << name << "=" << v << "': out of range (" << lo << unit << " .. "
         << hi << unit << ")";
      throw BootError(os.str());
    }
  };
  if (p.mem < (4ull << 20) || p.mem > (64ull << 30))
    throw BootError("boot parameter 'mem=" + std::to_string(p.mem) + "': out of range (4M .. 64G)");
  if (p.mem % (1ull << 20))
    throw BootError("boot parameter 'mem=" + std::to_string(p.mem) +
                    "': must be a whole number of MiB");
  range("nr_cpus", p.nr_cpus, 1, 64, "");
  range("watermark_scale_factor", p.watermark_scale_factor, 1, 3000, "");
  if (p.min_free_kbytes != -1 && (p.min_free_kbytes < 0 || p.min_free_kbytes > 262144))
    throw BootError("boot parameter 'min_free_kbytes=" + std::to_string(p.min_free_kbytes) +
                    "': out of range (0 .. 262144, or -1 for the default rule)");
  if (p.movablecore >= p.mem)
    throw BootError("boot parameter 'movablecore=" + std::to_string(p.movablecore) +
                    "': must be smaller than mem=");
  if (p.kasan_fault != "report" && p.kasan_fault != "panic")
    throw BootError("boot parameter 'kasan.fault=" + p.kasan_fault + "': expected report or panic");
}

} // namespace

static BootParams parse_words(const std::string& cmdline) {
  BootParams p;
  const auto& table = boot_param_table();
  for (const auto& info : table) set_value(p, info, info.name, info.def, true);
  p.cmdline = cmdline;

  std::istringstream words(cmdline);
  std::string word;
  while (words >> word) {
    auto eq = word.find('=');
    std::string name = word.substr(0, eq);
    bool has_value = eq != std::string::npos;
    std::string value = has_value ? word.substr(eq + 1) : "";
    const BootParamInfo* info = nullptr;
    for (const auto& i : table)
      if (name == i.name) info = &i;
    if (!info) throw BootError("unknown boot parameter '" + name + "'");
    set_value(p, *info, name, value, has_value);
  }
  check_ranges(p);
  return p;
}

// The parse is a function of the text alone, and a fuzzer boots the same few lines thousands of
// times a second: the lines that parsed are kept (a few dozen at most; the table starts over
// when full). A line that does not parse is parsed, and rejected, every time.
BootParams parse_cmdline(const std::string& cmdline) {
  static std::mutex lock;
  static std::map<std::string, BootParams> parsed;
  {
    std::lock_guard<std::mutex> guard(lock);
    auto it = parsed.find(cmdline);
    if (it != parsed.end()) return it->second;
  }
  BootParams p = parse_words(cmdline);
  std::lock_guard<std::mutex> guard(lock);
  if (parsed.size() >= 64) parsed.clear();
  parsed.emplace(cmdline, p);
  return p;
}

} // namespace kmm
