// The parsed kernel command line. Every parameter is declared once, in bootparams.def.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kmm {

enum class ParamType { SIZE, UINT, INT, BOOL, STR, FLAG };

struct BootParamInfo {
  const char* name;
  ParamType type;
  const char* def;
  const char* description;
};

struct BootParams {
#define SIZE uint64_t
#define UINT uint64_t
#define INT int64_t
#define BOOL bool
#define STR std::string
#define FLAG bool
#define BOOT_PARAM(name, field, type, def, desc) type field{};
#include "bootparams.def"
#undef BOOT_PARAM
#undef SIZE
#undef UINT
#undef INT
#undef BOOL
#undef STR
#undef FLAG
  std::string cmdline; // as given
};

// Parses a command line; throws BootError naming the offending parameter. Ranges are checked.
BootParams parse_cmdline(const std::string& cmdline);

// The table, in declaration order (for help listings and docs).
const std::vector<BootParamInfo>& boot_param_table();

// memparse(): "64M" -> 67108864. Returns false on a malformed number or suffix.
bool memparse(const std::string& text, uint64_t* out);

} // namespace kmm
