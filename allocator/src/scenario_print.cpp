// The scenario text form's printer, and canonical naming. The printed form is canonical: fixed
// defaults are spelled out, optional arguments left out stay out, so parse(print(s)) == s.
#include <cstdio>
#include <map>

#include "kmm/gfp.h"
#include "kmm/scenario.h"
#include "scenario_ops.h"

namespace kmm {

using namespace scn;

std::string print_op(const Scenario&, const Op& op) {
  const OpSpec& spec = op_table()[op.code % op_table().size()];
  std::string out;
  if (!op.result.empty()) out = op.result + " = ";
  out += spec.name;
  for (size_t i = 0; i < spec.fields.size() && i < op.args.size(); i++) {
    const Field& f = spec.fields[i];
    const Value& v = op.args[i];
    if (!v.present) continue;
    out += ' ';
    if (f.key && f.type != FieldType::Access) out += std::string(f.key) + "=";
    char buf[32];
    switch (f.type) {
    case FieldType::Ref: out += v.str; break;
    case FieldType::Access:
      out += v.str + (v.num < 0 ? "-" : "+") + std::to_string(v.num < 0 ? -v.num : v.num) +
             " len=" + std::to_string(v.len);
      break;
    case FieldType::UInt: out += std::to_string(v.num); break;
    case FieldType::Byte:
      std::snprintf(buf, sizeof buf, "0x%02x", static_cast<unsigned>(v.num & 0xff));
      out += buf;
      break;
    case FieldType::Gfp: out += gfp_names(static_cast<gfp_t>(v.num)); break;
    case FieldType::SlabFlags: out += slab_flags_names(static_cast<uint64_t>(v.num)); break;
    case FieldType::Ctor: out += v.num ? "fill" : "none"; break;
    case FieldType::Name:
    case FieldType::PathRead:
    case FieldType::PathWrite: out += v.str; break;
    case FieldType::Text: out += "\"" + v.str + "\""; break;
    }
  }
  return out;
}

std::string print_scenario(const Scenario& s) {
  std::string out;
  if (!s.boot.empty()) out += "boot " + s.boot + "\n";
  for (const Op& op : s.ops) out += print_op(s, op) + "\n";
  return out;
}

Scenario canonical(const Scenario& s) {
  Scenario c = s;
  std::map<std::string, std::string> rename;
  std::map<char, int> counter;
  for (Op& op : c.ops) {
    const OpSpec& spec = op_table()[op.code];
    for (size_t i = 0; i < spec.fields.size(); i++)
      if (spec.fields[i].type == FieldType::Ref || spec.fields[i].type == FieldType::Access) {
        auto it = rename.find(op.args[i].str);
        if (it != rename.end()) op.args[i].str = it->second;
      }
    if (!op.result.empty()) {
      char p = kind_prefix(spec.result);
      std::string name = p + std::to_string(counter[p]++);
      rename[op.result] = name;
      op.result = name;
    }
  }
  return c;
}

} // namespace kmm
