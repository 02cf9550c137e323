// The scenario text form's parser: lines of `[NAME =] OPERATION ARGS... [# comment]`, checked
// against the operation table (scenario_ops.cpp). Every error is "FILE:LINE: what is wrong".
#include <cstdlib>
#include <sstream>

#include "kmm/gfp.h"
#include "kmm/scenario.h"
#include "scenario_ops.h"

namespace kmm {

using namespace scn;

namespace {

struct Token {
  std::string text;
  bool quoted = false;
};

class LineParser {
public:
  LineParser(const std::string& filename, int line) : file_(filename), line_(line) {}

  [[noreturn]] void error(const std::string& msg) const {
    throw ScenarioError(file_ + ":" + std::to_string(line_) + ": " + msg);
  }

  std::vector<Token> tokenize(const std::string& text) const {
    std::vector<Token> out;
    size_t i = 0, n = text.size();
    while (i < n) {
      char c = text[i];
      if (c == ' ' || c == '\t' || c == '\r') {
        i++;
      } else if (c == '#') {
        break;
      } else if (c == '"') {
        size_t end = text.find('"', i + 1);
        if (end == std::string::npos) error("unterminated string");
        out.push_back({text.substr(i + 1, end - i - 1), true});
        i = end + 1;
      } else {
        size_t start = i;
        while (i < n && text[i] != ' ' && text[i] != '\t' && text[i] != '\r' && text[i] != '#' &&
               text[i] != '"')
          i++;
        out.push_back({text.substr(start, i - start), false});
      }
    }
    return out;
  }

  static bool is_ident(const std::string& s) {
    if (s.empty() || s.size() > 32) return false;
    if (!(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
    for (char c : s)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
    return true;
  }

  // A number in C syntax (decimal, 0x..); negative only where the field allows it.
  bool number(const std::string& s, int64_t* out, bool negative = false) const {
    if (s.empty()) return false;
    size_t first = negative && s[0] == '-' ? 1 : 0;
    if (first >= s.size() || !(std::isdigit(static_cast<unsigned char>(s[first])))) return false;
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(s.c_str(), &end, 0);
    if (errno || !end || *end) return false;
    *out = v;
    return true;
  }

  std::string label(const OpSpec& spec, const Field& f) const {
    if (f.type == FieldType::Access) return "result+offset";
    if (f.key) return f.key;
    switch (f.type) {
    case FieldType::Ref: return "result";
    case FieldType::PathRead:
    case FieldType::PathWrite: return "path";
    case FieldType::Text: return "\"text\"";
    default: return std::string(spec.name) == "cpu" ? "cpu number" : "value";
    }
  }

  const Def& resolve(const OpSpec& spec, const Field& f, const std::string& name,
                     const SymTab& syms) const {
    if (!is_ident(name)) error("bad result name '" + name + "'");
    const Def* d = syms.find(name);
    if (!d) error("unknown result '" + name + "'");
    if (!(kind_mask(d->kind) & f.refs))
      error("'" + name + "' is " + kind_noun(d->kind) + "; " + spec.name + " needs " +
            mask_noun(f.refs));
    return *d;
  }

  // A positional or keyword value into v.
  void value(const OpSpec& spec, const Field& f, const Token& t, Value* v, const SymTab& syms,
             const std::string& boot) const {
    const std::string& s = t.text;
    if (t.quoted && f.type != FieldType::Text)
      error("unexpected string \"" + s + "\" for " + label(spec, f));
    switch (f.type) {
    case FieldType::Ref:
      resolve(spec, f, s, syms);
      v->str = s;
      break;
    case FieldType::Access: {
      size_t cut = s.find_first_of("+-");
      std::string name = s.substr(0, cut);
      resolve(spec, f, name, syms);
      v->str = name;
      v->num = 0;
      if (cut != std::string::npos) {
        int64_t off;
        if (!number(s.substr(cut + 1), &off) || off > (int64_t(1) << 40))
          error("bad offset '" + s.substr(cut) + "' in '" + s + "'");
        v->num = s[cut] == '-' ? -off : off;
      }
      break;
    }
    case FieldType::UInt: {
      int64_t n;
      if (!number(s, &n, f.min < 0) || n < f.min || n > f.max)
        error("bad value '" + s + "' for " + label(spec, f) + ": expected a number " +
              std::to_string(f.min) + ".." + std::to_string(f.max));
      if (std::string(spec.name) == "cpu") {
        unsigned cpus = boot_nr_cpus(boot);
        if (n >= cpus)
          error("cpu " + s + " out of range: the machine has " + std::to_string(cpus) + " CPUs");
      }
      v->num = n;
      break;
    }
    case FieldType::Byte: {
      int64_t n;
      if (!number(s, &n) || n < 0 || n > 255)
        error("bad value '" + s + "' for " + label(spec, f) + ": expected a byte 0..255");
      v->num = n;
      break;
    }
    case FieldType::Gfp: {
      gfp_t g;
      if (!parse_gfp(s, &g)) error("bad gfp flags '" + s + "'");
      v->num = g;
      break;
    }
    case FieldType::SlabFlags: {
      uint64_t fl;
      if (!parse_slab_flags(s, &fl)) error("bad slab flags '" + s + "'");
      v->num = static_cast<int64_t>(fl);
      break;
    }
    case FieldType::Ctor:
      if (s != "none" && s != "fill") error("bad ctor '" + s + "': expected none or fill");
      v->num = s == "fill";
      break;
    case FieldType::Name:
      if (s.empty() || s.size() > kMaxName)
        error("bad name '" + s + "': 1.." + std::to_string(kMaxName) + " characters");
      for (char c : s)
        if (!name_char_ok(c)) error("bad name '" + s + "': use letters, digits, '_' and '-'");
      v->str = s;
      break;
    case FieldType::Text:
      if (!t.quoted) error("expected a quoted string, got '" + s + "'");
      if (s.size() > kMaxText)
        error("string too long (" + std::to_string(s.size()) + " characters, at most " +
              std::to_string(kMaxText) + ")");
      for (char c : s)
        if (!text_char_ok(c)) error("bad character in string");
      v->str = s;
      break;
    case FieldType::PathRead:
    case FieldType::PathWrite:
      if (s.empty() || s[0] != '/' || s.size() > 127) error("bad path '" + s + "'");
      v->str = s;
      break;
    }
  }

  void check_access(const OpSpec& spec, const Field& f, const Value& v, const SymTab& syms) const {
    const Def& d = *syms.find(v.str);
    if (v.len < 1 || v.len > kMaxAccessLen)
      error("bad value '" + std::to_string(v.len) + "' for len: expected a number 1.." +
            std::to_string(kMaxAccessLen));
    Window w = access_window(d, f.corrupt);
    if (v.num < w.lo || v.num >= w.hi || v.len > w.hi - v.num) {
      std::string where =
          v.str + (v.num < 0 ? "" : "+") + std::to_string(v.num) + " len=" + std::to_string(v.len);
      std::string msg = where + " is outside " + v.str + " (" + std::to_string(d.size) + " bytes)";
      if (f.corrupt && (d.kind == Kind::Vmalloc || d.kind == Kind::Kvmalloc))
        msg += " and its guard page";
      else if (f.corrupt && d.kind != Kind::Task) msg += " and the page either side";
      else if (d.kind == Kind::Obj) msg += " and its 64-byte margins";
      else if (!f.corrupt) msg += "; only corrupt may go outside an allocation";
      error(msg);
    }
  }

  Op parse(const std::vector<Token>& toks, const SymTab& syms, const std::string& boot) const {
    Op op;
    op.line = line_;
    size_t i = 0;
    if (toks.size() >= 2 && !toks[1].quoted && toks[1].text == "=") {
      if (toks[0].quoted || !is_ident(toks[0].text))
        error("bad result name '" + toks[0].text + "'");
      op.result = toks[0].text;
      i = 2;
      if (i >= toks.size()) error("missing operation after '" + op.result + " ='");
    }
    if (toks[i].quoted) error("expected an operation, got a string");
    std::string name = toks[i++].text;
    if (name == "expect") {
      if (i >= toks.size() || toks[i].quoted)
        error("expect needs one of: report, no-report, null, value, vmalloc, kmalloc");
      name += " " + toks[i++].text;
    }
    int code = find_op(name);
    if (code < 0) {
      if (name == "boot") error("boot must be the first operation");
      error("unknown operation '" + name + "'");
    }
    op.code = static_cast<unsigned>(code);
    const OpSpec& spec = op_table()[op.code];
    if (spec.result != Kind::None && op.result.empty())
      error(std::string(spec.name) + " needs a result name: NAME = " + spec.name + " ...");
    if (spec.result == Kind::None && !op.result.empty())
      error(std::string(spec.name) + " has no result to name");
    if (!op.result.empty() && syms.find(op.result)) error("'" + op.result + "' is already defined");

    op.args.assign(spec.fields.size(), Value{});
    std::vector<bool> seen(spec.fields.size(), false);
    bool len_seen = false;
    size_t next_pos = 0; // next positional field to fill
    for (; i < toks.size(); i++) {
      const Token& t = toks[i];
      size_t eq = t.quoted ? std::string::npos : t.text.find('=');
      if (eq == std::string::npos) {
        while (next_pos < spec.fields.size() && spec.fields[next_pos].key &&
               spec.fields[next_pos].type != FieldType::Access)
          next_pos++;
        if (next_pos >= spec.fields.size())
          error("unexpected '" + (t.quoted ? "\"" + t.text + "\"" : t.text) + "' for " + spec.name);
        value(spec, spec.fields[next_pos], t, &op.args[next_pos], syms, boot);
        seen[next_pos] = true;
        next_pos++;
        continue;
      }
      std::string key = t.text.substr(0, eq);
      Token val{t.text.substr(eq + 1), false};
      if (val.text.empty() && i + 1 < toks.size() && toks[i + 1].quoted) val = toks[++i];
      size_t f = 0;
      for (; f < spec.fields.size(); f++)
        if (spec.fields[f].key && key == spec.fields[f].key) break;
      if (f == spec.fields.size()) error("unknown argument '" + key + "' for " + spec.name);
      if (spec.fields[f].type == FieldType::Access) {
        if (len_seen) error("duplicate argument '" + key + "'");
        int64_t n;
        if (!number(val.text, &n) || n < 1 || n > kMaxAccessLen)
          error("bad value '" + val.text + "' for len: expected a number 1.." +
                std::to_string(kMaxAccessLen));
        op.args[f].len = n;
        len_seen = true;
        continue;
      }
      if (seen[f]) error("duplicate argument '" + key + "'");
      value(spec, spec.fields[f], val, &op.args[f], syms, boot);
      seen[f] = true;
    }
    for (size_t f = 0; f < spec.fields.size(); f++) {
      const Field& fd = spec.fields[f];
      if (!seen[f]) {
        if (fd.need == Need::Default) op.args[f].num = fd.def;
        else if (fd.need == Need::Optional) op.args[f].present = false;
        else error("missing " + label(spec, fd) + " for " + spec.name);
      }
      if (fd.type == FieldType::Access) {
        if (!len_seen) error(std::string("missing len for ") + spec.name);
        check_access(spec, fd, op.args[f], syms);
      }
    }
    return op;
  }

private:
  std::string file_;
  int line_;
};

} // namespace

Scenario parse_scenario(const std::string& text, const std::string& filename) {
  Scenario s;
  s.filename = filename;
  SymTab syms;
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  bool boot_seen = false;
  while (std::getline(in, line)) {
    lineno++;
    LineParser p(filename, lineno);
    for (char c : line)
      if (c == '\0' || (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\r'))
        p.error("control character in line");
    auto toks = p.tokenize(line);
    if (toks.empty()) continue;
    if (!toks[0].quoted && toks[0].text == "boot") {
      if (boot_seen || !s.ops.empty()) p.error("boot must be the first operation");
      boot_seen = true;
      std::string cmdline;
      for (size_t i = 1; i < toks.size(); i++) {
        if (toks[i].quoted) p.error("unexpected string in boot line");
        cmdline += (cmdline.empty() ? "" : " ") + toks[i].text;
      }
      s.boot = cmdline;
      continue;
    }
    Op op = p.parse(toks, syms, s.boot);
    syms.define(op);
    s.ops.push_back(std::move(op));
  }
  return s;
}

} // namespace kmm
