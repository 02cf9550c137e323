// The scenario binary form, the one fuzzers mutate.
//
//   byte 0        machine: index into fuzz_machines(), modulo its size (absent: machine 0)
//   then per op   opcode byte (modulo the number of operations), then the op's fields:
//     Ref         1 byte: index among the results it may name, modulo their number
//     Access      1 byte ref, 3 bytes offset, 2 bytes length (little-endian): the offset is
//                 folded into the ref's window (access_window), the length into 1..room left
//     UInt        ceil(log256(span)) bytes, folded into [min, max]; an optional field has one
//                 extra value meaning "absent" (span = max - min + 2). A span above 256 is on
//                 a log scale: one more byte first, the bit length of the offset (uint_offset).
//                 A skewed field (an order) is one byte, each value 1/sqrt(2) as likely as the
//                 one before it (skew_table)
//     Byte 1, Gfp 3 (masked to __GFP_BITS_MASK), SlabFlags 4 (masked), Ctor 1 (none|fill),
//     Path 1 (index into the path table), Name/Text 1 length byte + one byte per character
//                 (folded into the allowed alphabet)
// An op whose reference has nothing to name is dropped; a truncated op ends the scenario. So
// every byte string is a valid scenario, and encode(decode(b)) decodes to the same scenario.
#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <string>

#include "kmm/gfp.h"
#include "kmm/scenario.h"
#include "scenario_ops.h"

namespace kmm {

using namespace scn;

// (Built in a lambda: the initializer's temporaries would otherwise be
// the accessor's stack frame, which ASan poisons at every call, op_table()'s note says.)
const std::vector<std::string>& fuzz_machines() {
  static const std::vector<std::string> machines = [] {
    return std::vector<std::string>{
        "",                               // the default embedded machine (32M, 2 CPUs)
        "mem=16M nr_cpus=1",              // small: watermarks and fragmentation bite early
        "mem=64M nr_cpus=4",              // more CPUs: pcp lists on several CPUs
        "mem=8M nr_cpus=2 page_poison=1", // free-page poisoning checks (boot poisons all RAM: kept
                                          // small)
        "mem=32M nr_cpus=2 cma=8M",       // a CMA area: cma_alloc, movable pages borrowing it
        "mem=32M nr_cpus=2 kasan=on",     // every scenario access checked against the shadow
    };
  }();
  return machines;
}

namespace {

// Alphabets for folded characters.
const std::string& name_alphabet() {
  static const std::string a = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";
  return a;
}
const std::string& text_alphabet() {
  static const std::string a = [] {
    std::string s;
    for (int c = 0x20; c < 0x7f; c++)
      if (text_char_ok(static_cast<char>(c))) s += static_cast<char>(c);
    return s;
  }();
  return a;
}

unsigned width_for(uint64_t span) { // bytes to hold values 0..span-1
  unsigned w = 1;
  while (w < 8 && (span - 1) >> (8 * w)) w++;
  return w;
}

uint64_t uint_span(const Field& f) {
  return uint64_t(f.max - f.min) + 1 + (f.need == Need::Optional ? 1 : 0);
}

// A UInt field of more than 256 values (sizes, counts, page indexes) is read on a log scale: a
// first byte picks the bit length e of the offset from min (0 to the span's bit width), the next
// width_for(span) bytes the bits below its top one. Every magnitude is as likely as any other,
// as in kernel traffic, where most requests are small. Folded uniformly instead, a kmalloc size
// was above 8 KiB 99.8% of the time and a kvzalloc zeroed 2 MiB on average.
bool log_scaled(uint64_t span) { return span > 256 && width_for(span) < 8; }

unsigned uint_width(uint64_t span) { return width_for(span) + (log_scaled(span) ? 1 : 0); }

// The offset (0..span-1) that the field's raw bytes stand for.
uint64_t uint_offset(uint64_t raw, uint64_t span) {
  if (!log_scaled(span)) return raw % span;
  const unsigned e = unsigned(raw & 0xff) % (unsigned(std::bit_width(span - 1)) + 1);
  if (e == 0) return 0;
  const uint64_t top = uint64_t(1) << (e - 1);
  return (top | ((raw >> 8) & (top - 1))) % span;
}

// A skewed field's byte -> offset, for spans up to kMaxSkewedSpan: offset v has a share of the 256
// byte values proportional to 2^(-v/2) (at least one). alloc_pages' order: of the 256 values, 76
// mean order 0, 54 order 1, 38 order 2 ... 2 order 10 and 2 order 11. Drawn uniformly, a third of
// the blocks were order 7 or more (512 KiB to 4 MiB to zero, fill and check), and the common
// small orders, where the per-CPU lists and fragmentation are, had no more weight than they.
constexpr unsigned kMaxSkewedSpan = 32; // a wider field is read as a plain UInt

const std::array<uint8_t, 256>& skew_table(uint64_t span) {
  static const auto tables = [] {
    std::array<std::array<uint8_t, 256>, kMaxSkewedSpan + 1> t{};
    for (unsigned n = 1; n <= kMaxSkewedSpan; n++) {
      std::array<unsigned, 256> share{};
      double total = 0;
      for (unsigned v = 0; v < n; v++) total += std::exp2(-0.5 * v);
      unsigned used = 0;
      for (unsigned v = 0; v < n; v++) {
        share[v] = std::max(1u, unsigned(std::lround(256 * std::exp2(-0.5 * v) / total)));
        used += share[v];
      }
      share[0] = share[0] + 256 - used; // rounding: order 0 takes up the difference
      for (unsigned v = 0, at = 0; v < n; v++)
        for (unsigned i = 0; i < share[v]; i++) t[n][at++] = uint8_t(v);
    }
    return t;
  }();
  return tables[span];
}

bool is_skewed(const Field& f) { return f.skewed && uint_span(f) <= kMaxSkewedSpan; }

uint64_t skewed_offset(uint64_t raw, uint64_t span) { return skew_table(span)[raw & 0xff]; }

uint64_t skewed_raw(uint64_t x, uint64_t span) {
  const auto& t = skew_table(span);
  return uint64_t(std::find(t.begin(), t.end(), uint8_t(x)) - t.begin());
}

// The raw bytes of offset x < span: uint_offset(uint_raw(x, span), span) == x.
uint64_t uint_raw(uint64_t x, uint64_t span) {
  if (!log_scaled(span)) return x;
  const unsigned e = unsigned(std::bit_width(x));
  return e == 0 ? 0 : ((x - (uint64_t(1) << (e - 1))) << 8) | e;
}

class Reader {
public:
  Reader(const uint8_t* d, size_t n) : d_(d), n_(n) {}
  bool get(unsigned width, uint64_t* out) {
    if (n_ - pos_ < width) {
      pos_ = n_;
      return false;
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < width; i++) v |= uint64_t(d_[pos_ + i]) << (8 * i);
    pos_ += width;
    *out = v;
    return true;
  }
  bool done() const { return pos_ >= n_; }

private:
  const uint8_t* d_;
  size_t n_;
  size_t pos_ = 0;
};

void put(std::vector<uint8_t>& out, uint64_t v, unsigned width) {
  for (unsigned i = 0; i < width; i++) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// Raw field bytes, read before references can be resolved.
struct Raw {
  uint64_t a = 0, b = 0, c = 0;
  std::string s;
};

bool read_field(Reader& in, const Field& f, Raw* r) {
  switch (f.type) {
  case FieldType::Ref: return in.get(1, &r->a);
  case FieldType::Access: return in.get(1, &r->a) && in.get(3, &r->b) && in.get(2, &r->c);
  case FieldType::UInt: return in.get(uint_width(uint_span(f)), &r->a);
  case FieldType::Byte:
  case FieldType::Ctor:
  case FieldType::PathRead:
  case FieldType::PathWrite: return in.get(1, &r->a);
  case FieldType::Gfp: return in.get(3, &r->a);
  case FieldType::SlabFlags: return in.get(4, &r->a);
  case FieldType::Name:
  case FieldType::Text: {
    uint64_t len;
    if (!in.get(1, &len)) return false;
    const std::string& alpha = f.type == FieldType::Name ? name_alphabet() : text_alphabet();
    len = f.type == FieldType::Name ? 1 + len % kMaxName : len % (kMaxText + 1);
    for (uint64_t i = 0; i < len; i++) {
      uint64_t c;
      if (!in.get(1, &c)) return false;
      r->s += alpha[c % alpha.size()];
    }
    return true;
  }
  }
  return false;
}

// The storage recycle_ops keeps for the next decode on this thread (bounded).
struct OpStorage {
  std::vector<std::vector<Value>> args;
  std::vector<std::vector<Op>> op_vectors;
};
OpStorage& op_storage() {
  static thread_local OpStorage st;
  return st;
}
constexpr size_t kMaxSpareArgs = 4096, kMaxSpareOpVectors = 4;

void recycle_args(std::vector<Value>&& v) {
  auto& spare = op_storage().args;
  if (v.capacity() && spare.size() < kMaxSpareArgs) {
    v.clear();
    spare.push_back(std::move(v));
  }
}

// The last vector kept in `spare`, or a new one.
template <class T>
T take_spare(std::vector<T>& spare) {
  if (spare.empty()) return T();
  T v = std::move(spare.back());
  spare.pop_back();
  return v;
}

std::vector<Value> take_args(size_t n) {
  std::vector<Value> v = take_spare(op_storage().args);
  v.resize(n);
  return v;
}

} // namespace

void scn::recycle_ops(std::vector<Op>&& ops) {
  OpStorage& st = op_storage();
  for (Op& op : ops) recycle_args(std::move(op.args));
  ops.clear();
  if (ops.capacity() && st.op_vectors.size() < kMaxSpareOpVectors)
    st.op_vectors.push_back(std::move(ops));
}

void scn::reserve_op_storage(size_t ops) {
  OpStorage& st = op_storage();
  size_t fields = 0;
  for (const OpSpec& spec : op_table()) fields = std::max(fields, spec.fields.size());
  st.args.reserve(kMaxSpareArgs);
  while (st.args.size() < std::min(ops, kMaxSpareArgs)) {
    st.args.emplace_back();
    st.args.back().reserve(fields);
  }
  st.op_vectors.reserve(kMaxSpareOpVectors);
  while (st.op_vectors.size() < kMaxSpareOpVectors) {
    st.op_vectors.emplace_back();
    st.op_vectors.back().reserve(ops);
  }
}

std::vector<Op> scn::take_ops(size_t n) {
  std::vector<Op> v = take_spare(op_storage().op_vectors);
  v.reserve(n);
  return v;
}

Scenario decode_scenario(const uint8_t* data, size_t size) {
  // Decoding runs once per fuzz input: what does not depend on the input is worked out once.
  static const std::vector<unsigned> machine_cpus = [] {
    std::vector<unsigned> v;
    for (const std::string& line : fuzz_machines()) v.push_back(boot_nr_cpus(line));
    return v;
  }();
  static const unsigned default_cpus = boot_nr_cpus("");
  static const int cpu_op = find_op("cpu");
  Scenario s;
  s.filename = "<binary>";
  Reader in(data, size);
  uint64_t m = 0;
  unsigned cpus = default_cpus;
  if (in.get(1, &m)) {
    s.boot = fuzz_machines()[m % fuzz_machines().size()];
    cpus = machine_cpus[m % fuzz_machines().size()];
  }
  const auto& table = op_table();
  s.ops = take_ops(std::min<size_t>(size / 2 + 1, 128)); // most operations take 2 bytes or more
  // The working storage is this thread's, kept from input to input (so a decode must not start
  // another on its thread: none does, the operation table's hooks do not decode).
  static thread_local SymTab syms;
  static thread_local std::vector<Raw> raw; // per op
  static thread_local std::vector<size_t> cand;
  syms.defs.clear();
  std::array<int, kNumKinds> counters{};
  while (!in.done()) {
    uint64_t code;
    if (!in.get(1, &code)) break;
    const OpSpec& spec = table[code % table.size()];
    const bool is_cpu = int(code % table.size()) == cpu_op;
    raw.resize(spec.fields.size());
    for (Raw& r : raw) {
      r.a = r.b = r.c = 0;
      r.s.clear();
    }
    bool complete = true;
    for (size_t i = 0; i < spec.fields.size() && complete; i++)
      complete = read_field(in, spec.fields[i], &raw[i]);
    if (!complete) break;

    Op op;
    op.code = static_cast<unsigned>(code % table.size());
    op.line = static_cast<int>(s.ops.size()) + 1;
    op.args = take_args(spec.fields.size());
    bool ok = true;
    for (size_t i = 0; i < spec.fields.size() && ok; i++) {
      const Field& f = spec.fields[i];
      const Raw& r = raw[i];
      Value& v = op.args[i];
      switch (f.type) {
      case FieldType::Ref:
      case FieldType::Access: {
        syms.candidates(f.refs, cand);
        if (cand.empty()) {
          ok = false;
          break;
        }
        const Def& d = syms.defs[cand[r.a % cand.size()]];
        v.str = d.name;
        if (f.type == FieldType::Access) {
          Window w = access_window(d, f.corrupt);
          v.num = w.lo + static_cast<int64_t>(r.b % uint64_t(w.hi - w.lo));
          int64_t room = std::min(w.hi - v.num, kMaxAccessLen);
          v.len = 1 + static_cast<int64_t>(r.c % uint64_t(room));
        }
        break;
      }
      case FieldType::UInt: {
        uint64_t span = uint_span(f);
        uint64_t x = is_skewed(f) ? skewed_offset(r.a, span) : uint_offset(r.a, span);
        if (f.need == Need::Optional && x == span - 1) v.present = false;
        else v.num = f.min + static_cast<int64_t>(x);
        if (is_cpu) v.num %= cpus;
        break;
      }
      case FieldType::Byte: v.num = static_cast<int64_t>(r.a & 0xff); break;
      case FieldType::Ctor: v.num = static_cast<int64_t>(r.a % 2); break;
      case FieldType::Gfp: v.num = static_cast<int64_t>(r.a & __GFP_BITS_MASK); break;
      case FieldType::SlabFlags: v.num = static_cast<int64_t>(r.a & slab_flags_mask()); break;
      case FieldType::PathRead: v.str = read_paths()[r.a % read_paths().size()]; break;
      case FieldType::PathWrite: v.str = write_paths()[r.a % write_paths().size()]; break;
      case FieldType::Name:
      case FieldType::Text: v.str = r.s; break;
      }
    }
    if (!ok) {
      recycle_args(std::move(op.args));
      continue;
    }
    if (spec.result != Kind::None) {
      int& n = counters[static_cast<int>(spec.result)];
      op.result = kind_prefix(spec.result) + std::to_string(n++);
    }
    syms.define(op);
    s.ops.push_back(std::move(op));
  }
  return s;
}

std::vector<uint8_t> encode_scenario(const Scenario& s) {
  std::vector<uint8_t> out;
  const auto& machines = fuzz_machines();
  auto mi = std::find(machines.begin(), machines.end(), s.boot);
  if (mi == machines.end())
    throw ScenarioError(s.filename + ": boot line '" + s.boot +
                        "' is not one of the fuzz machines; the binary form cannot express it");
  out.push_back(static_cast<uint8_t>(mi - machines.begin()));
  const auto& table = op_table();
  SymTab syms;
  std::vector<size_t> cand;
  for (const Op& op : s.ops) {
    const OpSpec& spec = table[op.code];
    auto fail = [&](const std::string& msg) {
      throw ScenarioError(s.filename + ":" + std::to_string(op.line) + ": " + msg +
                          "; the binary form cannot express it");
    };
    out.push_back(static_cast<uint8_t>(op.code));
    for (size_t i = 0; i < spec.fields.size(); i++) {
      const Field& f = spec.fields[i];
      const Value& v = op.args[i];
      switch (f.type) {
      case FieldType::Ref:
      case FieldType::Access: {
        syms.candidates(f.refs, cand);
        size_t idx = 0;
        while (idx < cand.size() && syms.defs[cand[idx]].name != v.str) idx++;
        if (idx == cand.size()) fail("reference '" + v.str + "' names nothing");
        if (idx > 255) fail("reference '" + v.str + "' is beyond the 256th candidate");
        put(out, idx, 1);
        if (f.type == FieldType::Access) {
          Window w = access_window(syms.defs[cand[idx]], f.corrupt);
          int64_t room = std::min(w.hi - v.num, kMaxAccessLen);
          if (v.num < w.lo || v.num >= w.hi || v.len < 1 || v.len > room)
            fail("access " + v.str + " out of range");
          put(out, static_cast<uint64_t>(v.num - w.lo), 3);
          put(out, static_cast<uint64_t>(v.len - 1), 2);
        }
        break;
      }
      case FieldType::UInt: {
        uint64_t span = uint_span(f);
        uint64_t x = 0; // fail() throws; clang cannot see that
        if (!v.present) x = span - 1;
        else if (v.num < f.min || v.num > f.max) fail("value out of range");
        else x = static_cast<uint64_t>(v.num - f.min);
        put(out, is_skewed(f) ? skewed_raw(x, span) : uint_raw(x, span), uint_width(span));
        break;
      }
      case FieldType::Byte: put(out, static_cast<uint64_t>(v.num) & 0xff, 1); break;
      case FieldType::Ctor: put(out, v.num ? 1 : 0, 1); break;
      case FieldType::Gfp:
        if (static_cast<uint64_t>(v.num) & ~uint64_t(__GFP_BITS_MASK)) fail("gfp out of range");
        put(out, static_cast<uint64_t>(v.num), 3);
        break;
      case FieldType::SlabFlags: put(out, static_cast<uint64_t>(v.num), 4); break;
      case FieldType::PathRead:
      case FieldType::PathWrite: {
        const auto& paths = f.type == FieldType::PathRead ? read_paths() : write_paths();
        auto it = std::find(paths.begin(), paths.end(), v.str);
        if (it == paths.end()) fail("path '" + v.str + "' is not in the path table");
        put(out, static_cast<uint64_t>(it - paths.begin()), 1);
        break;
      }
      case FieldType::Name:
      case FieldType::Text: {
        const std::string& alpha = f.type == FieldType::Name ? name_alphabet() : text_alphabet();
        if (f.type == FieldType::Name) {
          if (v.str.empty() || v.str.size() > kMaxName) fail("name length out of range");
          put(out, v.str.size() - 1, 1);
        } else {
          if (v.str.size() > kMaxText) fail("string too long");
          put(out, v.str.size(), 1);
        }
        for (char c : v.str) {
          size_t p = alpha.find(c);
          if (p == std::string::npos) fail("character out of range");
          put(out, p, 1);
        }
        break;
      }
      }
    }
    syms.define(op);
  }
  return out;
}

} // namespace kmm
