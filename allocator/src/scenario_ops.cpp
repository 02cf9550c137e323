// The scenario language's operation table: every operation once, with its arguments (text key,
// range, binary width follow from the type) and its executor. The parser (scenario_parse.cpp),
// printer (scenario_print.cpp), codec (scenario_codec.cpp) and interpreter (scenario_run.cpp)
// all read op_table(). To add an operation: add an executor and one OpSpec below.
//
// The binary form numbers operations by their position here, so new operations go at the end.
#include "scenario_ops.h"

#include <cinttypes>
#include <cstring>
#include <sstream>

#include "bug.h"
#include "kasan_asan.h"
#include "kernel.h"
#include "kmm/kasan.h"
#include "kmm/linux.h"
#include "kmm/pressure.h"
#include "kmm/slab.h"
#include "kmm/validate.h"
#include "scenario_run.h"

// The slab operations need SLUB; until it is in every build they are compiled only where it is.
#if __has_include("slub.h")
#define KMM_SCENARIO_SLAB 1
#else
#define KMM_SCENARIO_SLAB 0
#endif

namespace kmm::scn {

// ---- kinds, names, tables -----------------------------------------------------------------

uint16_t kind_mask(Kind k) {
  switch (k) {
  case Kind::Page: return R_PAGE;
  case Kind::Virt: return R_VIRT;
  case Kind::Cache: return R_CACHE;
  case Kind::Obj: return R_OBJ;
  case Kind::Vmalloc: return R_VMALLOC;
  case Kind::Kvmalloc: return R_KVMALLOC;
  case Kind::Cma: return R_CMA;
  case Kind::Dma: return R_DMA;
  case Kind::Task: return R_TASK;
  case Kind::File: return R_FILE;
  default: return 0;
  }
}

const char* kind_noun(Kind k) {
  switch (k) {
  case Kind::Page: return "a page allocation";
  case Kind::Virt: return "an alloc_pages_exact allocation";
  case Kind::Cache: return "a cache";
  case Kind::Obj: return "a slab object";
  case Kind::Vmalloc: return "a vmalloc allocation";
  case Kind::Kvmalloc: return "a kvmalloc allocation";
  case Kind::Cma: return "a CMA range";
  case Kind::Dma: return "a coherent DMA buffer";
  case Kind::Task: return "a task";
  case Kind::File: return "a file";
  default: return "nothing";
  }
}

const char* mask_noun(uint16_t m) {
  switch (m) {
  case R_PAGE: return "a page allocation (alloc_pages)";
  case R_VIRT: return "an alloc_pages_exact allocation";
  case R_CACHE: return "a cache (kmem_cache_create)";
  case R_OBJ: return "a slab object (kmalloc, kmem_cache_alloc)";
  case R_VMALLOC: return "a vmalloc allocation (vmalloc, vzalloc)";
  case R_KVMALLOC: return "a kvmalloc allocation (kvmalloc, kvzalloc)";
  case R_CMA: return "a CMA range (cma_alloc)";
  case R_DMA: return "a coherent DMA buffer (dma_alloc_coherent)";
  case R_TASK: return "a task (task_spawn)";
  case R_FILE: return "a file (file_create)";
  case R_DATA: return "memory (an allocation, an object or a task)";
  default: return "a result";
  }
}

char kind_prefix(Kind k) {
  switch (k) {
  case Kind::Page: return 'p';
  case Kind::Virt: return 'x';
  case Kind::Cache: return 'c';
  case Kind::Obj: return 'o';
  case Kind::Vmalloc: return 'v';
  case Kind::Kvmalloc: return 'k';
  case Kind::Cma: return 'm';
  case Kind::Dma: return 'd';
  case Kind::Task: return 't';
  case Kind::File: return 'f';
  default: return '?';
  }
}

const std::vector<std::string>& read_paths() {
  static const std::vector<std::string> paths = [] { // op_table()'s note
    return std::vector<std::string>{
        "/proc/buddyinfo",
        "/proc/pagetypeinfo",
        "/proc/zoneinfo",
        "/proc/meminfo",
        "/proc/vmstat",
        "/proc/slabinfo",
        "/proc/vmallocinfo",
        "/proc/sys/vm/min_free_kbytes",
        "/proc/sys/vm/watermark_scale_factor",
        "/proc/cma",
    };
  }();
  return paths;
}

const std::vector<std::string>& write_paths() {
  static const std::vector<std::string> paths = [] { // op_table()'s note
    return std::vector<std::string>{
        "/proc/sys/vm/drop_caches",
        "/proc/sys/vm/min_free_kbytes",
        "/proc/sys/vm/watermark_scale_factor",
        "/proc/sys/vm/swappiness",
        "/proc/sys/vm/overcommit_memory",
        "/proc/sys/vm/compact_memory",
    };
  }();
  return paths;
}

namespace {
struct FlagName {
  uint64_t bit;
  const char* name;
};
#define F(x)                                                                                       \
  { x, #x }
const FlagName slab_flag_table[] = {
    F(SLAB_CONSISTENCY_CHECKS), F(SLAB_RED_ZONE),  F(SLAB_POISON),          F(SLAB_KMALLOC),
    F(SLAB_HWCACHE_ALIGN),      F(SLAB_CACHE_DMA), F(SLAB_CACHE_DMA32),     F(SLAB_STORE_USER),
    F(SLAB_RECLAIM_ACCOUNT),    F(SLAB_PANIC),     F(SLAB_TYPESAFE_BY_RCU), F(SLAB_TRACE),
    F(SLAB_NOLEAKTRACE),        F(SLAB_NO_MERGE),  F(SLAB_FAILSLAB),        F(SLAB_ACCOUNT),
    F(SLAB_NO_USER_FLAGS),
};
#undef F
} // namespace

uint64_t slab_flags_mask() {
  uint64_t m = 0;
  for (const auto& f : slab_flag_table) m |= f.bit;
  return m;
}

std::string slab_flags_names(uint64_t flags) {
  if (!flags) return "0";
  std::string out;
  for (const auto& f : slab_flag_table)
    if (flags & f.bit) {
      if (!out.empty()) out += '|';
      out += f.name;
    }
  return out;
}

bool parse_slab_flags(const std::string& text, uint64_t* out) {
  uint64_t flags = 0;
  if (text.empty()) return false;
  std::istringstream in(text);
  std::string word;
  while (std::getline(in, word, '|')) {
    if (word == "0") continue;
    bool found = false;
    for (const auto& f : slab_flag_table)
      if (word == f.name) {
        flags |= f.bit;
        found = true;
      }
    if (!found) return false;
  }
  *out = flags;
  return true;
}

bool text_char_ok(char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; }
bool name_char_ok(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

unsigned boot_nr_cpus(const std::string& boot) {
  std::istringstream in(boot);
  std::string w;
  unsigned n = 2; // bootparams.def default
  while (in >> w)
    if (w.rfind("nr_cpus=", 0) == 0) {
      char* end = nullptr;
      unsigned long v = std::strtoul(w.c_str() + 8, &end, 10);
      if (end && !*end && v >= 1 && v <= 64) n = static_cast<unsigned>(v);
    }
  return n;
}

// ---- symbol table and windows -------------------------------------------------------------

const Def* SymTab::find(const std::string& name) const {
  for (const Def& d : defs)
    if (d.name == name) return &d;
  return nullptr;
}

Def* SymTab::find_mut(const std::string& name) {
  for (Def& d : defs)
    if (d.name == name) return &d;
  return nullptr;
}

void SymTab::candidates(uint16_t mask, std::vector<size_t>& out) const {
  out.clear();
  for (size_t i = 0; i < defs.size(); i++)
    if (kind_mask(defs[i].kind) & mask) out.push_back(i);
}

void SymTab::define(const Op& op) {
  const OpSpec& spec = op_table()[op.code];
  if (spec.effect) spec.effect(op, *this);
  if (spec.result == Kind::None) return;
  int64_t size = spec.result_size ? spec.result_size(op, *this) : 0;
  defs.push_back({op.result, spec.result, size});
}

Window access_window(const Def& d, bool corrupt) {
  int64_t size = d.size > 0 ? d.size : 0;
  Window w;
  bool vm = d.kind == Kind::Vmalloc || d.kind == Kind::Kvmalloc;
  if (corrupt && d.kind != Kind::Task) w = {vm ? 0 : -4096, size + 4096}; // vm: into the guard
  else if (d.kind == Kind::Obj) w = {-64, size + 64}; // red zones and padding are reachable
  else w = {0, size};
  if (w.hi <= w.lo) w.hi = w.lo + 1;
  // The binary form has 3 bytes of offset.
  if (w.hi - w.lo > kMaxWindow) w.hi = w.lo + kMaxWindow;
  return w;
}

// ---- executors ------------------------------------------------------------------------------

namespace {

constexpr unsigned kMaxOrderArg = MAX_PAGE_ORDER + 1; // order 11: the WARN path

std::string hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

std::string errno_name(int rc) {
  switch (-rc) {
  case 0: return "0";
  case EINVAL: return "-EINVAL";
  case ENOENT: return "-ENOENT";
  case EPERM: return "-EPERM";
  case ENOMEM: return "-ENOMEM";
  case EBUSY: return "-EBUSY";
  default: return std::to_string(rc);
  }
}

void exec_alloc_pages(Runner& r, const Op& op) {
  auto order = static_cast<unsigned>(op.args[0].num);
  auto gfp = static_cast<gfp_t>(op.args[1].num);
  Result res;
  res.kind = Kind::Page;
  res.page = alloc_pages(gfp, order);
  res.ptr = res.page ? page_address(res.page) : nullptr;
  res.order = order;
  res.size = int64_t(PAGE_SIZE) << order;
  r.define(op, res);
  r.note(res);
}

// The page `page=N` of a page result names (0: the head), or nullptr with the trace saying why.
struct page* sub_page(Runner& r, const Op& op, const Result& res, size_t field) {
  const Value& v = op.args[field];
  int64_t idx = v.present ? v.num : 0;
  // The block's pages: res.size, not res.order, which split_page sets to 0.
  int64_t pages = res.size / int64_t(PAGE_SIZE);
  if (idx >= pages && idx != 0) {
    r.detail = "skipped: page " + std::to_string(idx) + " is outside " + op.args[0].str + " (" +
               std::to_string(pages) + " pages)";
    return nullptr;
  }
  return res.page + idx;
}

void exec_free_pages(Runner& r, const Op& op) {
  if (r.skip_null(op, 0)) return;
  Result& res = r.ref(op, 0);
  struct page* p = sub_page(r, op, res, 2);
  if (!p) return;
  unsigned order = op.args[1].present ? static_cast<unsigned>(op.args[1].num)
                   : p != res.page    ? 0 // a page of a split block
                                      : res.order;
  if (r.details) r.detail = "pfn " + hex(page_to_pfn(p)) + " order " + std::to_string(order);
  __free_pages(p, order);
}

void exec_get_page(Runner& r, const Op& op) {
  if (r.skip_null(op, 0)) return;
  Result& res = r.ref(op, 0);
  struct page* p = sub_page(r, op, res, 1);
  if (!p) return;
  get_page(p);
  if (r.details) r.detail = "refcount " + std::to_string(page_count(p));
}

void exec_put_page(Runner& r, const Op& op) {
  if (r.skip_null(op, 0)) return;
  Result& res = r.ref(op, 0);
  struct page* p = sub_page(r, op, res, 1);
  if (!p) return;
  int before = page_count(p);
  put_page(p);
  if (r.details) r.detail = before <= 1 ? "freed" : "refcount " + std::to_string(before - 1);
}

void exec_split_page(Runner& r, const Op& op) {
  if (r.skip_null(op, 0)) return;
  Result& res = r.ref(op, 0);
  split_page(res.page, res.order);
  if (r.details) r.detail = std::to_string(1u << res.order) + " order-0 pages";
  res.order = 0; // from now on free_pages p0 page=N frees one page
}

void exec_alloc_pages_exact(Runner& r, const Op& op) {
  auto size = static_cast<size_t>(op.args[0].num);
  auto gfp = static_cast<gfp_t>(op.args[1].num);
  Result res;
  res.kind = Kind::Virt;
  res.ptr = alloc_pages_exact(size, gfp);
  res.size = op.args[0].num;
  r.define(op, res);
  r.note(res);
}

void exec_free_pages_exact(Runner& r, const Op& op) {
  if (r.skip_null(op, 0)) return;
  Result& res = r.ref(op, 0);
  int64_t size = op.args[1].present ? op.args[1].num : res.size;
  r.note(res);
  free_pages_exact(res.ptr, static_cast<size_t>(size));
}

// The access executors. Every access the scenario makes on behalf of kernel code (write, read,
// fill) goes through KASAN's shadow check first (kasan=on; a no-op otherwise), as instrumented
// code would: a write past a kmalloc object reports "BUG: KASAN: slab-out-of-bounds". `corrupt`
// is the deliberate bug and is not checked; `expect value` is the observer and is not either.

// The pieces of REF+OFF len=N, or nullptr with the trace saying why it was skipped.
bool access_span(Runner& r, const Op& op, int64_t off, int64_t len, std::vector<Chunk>* out) {
  std::string why;
  if (r.span(r.ref(op, 0), off, len, out, &why)) return true;
  r.detail = "skipped: " + why;
  return false;
}

void kasan_check_span(const std::vector<Chunk>& chunks, bool write, const char* fn) {
  for (const Chunk& c : chunks) kasan_check_access(c.mem, c.len, write, fn);
}

// write / corrupt: `len` copies of `byte` at REF+OFF; both stay inside the machine's memory.
void exec_store(Runner& r, const Op& op) {
  if (r.skip_null(op, 0)) return;
  const Value& a = op.args[0];
  std::vector<Chunk> chunks;
  if (!access_span(r, op, a.num, a.len, &chunks)) return;
  if (!op_table()[op.code].fields[0].corrupt) kasan_check_span(chunks, true, "scenario_write");
  for (const Chunk& c : chunks) {
    // Checked just above (write) or the deliberate bug (corrupt): in an ASan build the store
    // itself must not be reported a second time (kasan_asan.h).
    KasanMetadataAccess raw(c.mem, c.len);
    std::memset(c.mem, static_cast<int>(op.args[1].num), c.len);
    r.wrote(c.mem, c.len);
  }
}

void exec_read(Runner& r, const Op& op) {
  if (r.skip_null(op, 0)) return;
  const Value& a = op.args[0];
  std::vector<Chunk> chunks;
  if (!access_span(r, op, a.num, a.len, &chunks)) return;
  kasan_check_span(chunks, false, "scenario_read");
  if (!r.details) return; // the bytes are read for the trace only
  std::string out;
  char buf[8];
  int64_t i = 0;
  for (const Chunk& c : chunks) {
    KasanMetadataAccess raw(c.mem, c.len); // checked just above
    for (size_t j = 0; j < c.len && i < 16; j++, i++) {
      std::snprintf(buf, sizeof buf, i ? " %02x" : "%02x", c.mem[j]);
      out += buf;
    }
  }
  if (a.len > 16) out += " ...";
  r.detail = out;
}

// The bytes an allocation has now (a task's grow with task_touch).
int64_t result_bytes(Runner& r, const Result& res) {
  return res.kind == Kind::Task ? r.task_bytes(res) : res.size;
}

void exec_fill(Runner& r, const Op& op) {
  if (r.skip_null(op, 0)) return;
  Result& res = r.ref(op, 0);
  int64_t size = result_bytes(r, res);
  std::vector<Chunk> chunks;
  if (size <= 0) {
    r.detail = "skipped: no memory";
    return;
  }
  if (!access_span(r, op, 0, size, &chunks)) return;
  kasan_check_span(chunks, true, "scenario_fill");
  for (const Chunk& c : chunks) {
    KasanMetadataAccess raw(c.mem, c.len); // checked just above, as write and read do
    std::memset(c.mem, static_cast<int>(op.args[1].num), c.len);
    r.wrote(c.mem, c.len);
  }
  if (r.details) r.detail = std::to_string(size) + " bytes";
}

void exec_cpu(Runner& r, const Op& op) {
  unsigned cpu = static_cast<unsigned>(op.args[0].num) % r.m.nr_cpus();
  r.cpu_scope.reset();
  r.cpu_scope = std::make_unique<CpuScope>(r.m, cpu);
  r.cpu = cpu;
}

void exec_spin_lock(Runner& r, const Op&) {
  if (r.lock_held) {
    r.detail = "skipped: already held (would deadlock)";
    return;
  }
  spin_lock(&r.lock);
  r.lock_held = true;
}

void exec_spin_unlock(Runner& r, const Op&) {
  spin_unlock(&r.lock);
  r.lock_held = false;
}

void exec_irq_disable(Runner&, const Op&) { local_irq_disable(); }
void exec_irq_enable(Runner&, const Op&) { local_irq_enable(); }

void exec_proc_write(Runner& r, const Op& op) {
  int rc = r.m.proc_write(op.args[0].str, std::to_string(op.args[1].num));
  r.detail = errno_name(rc);
}

void exec_proc_read(Runner& r, const Op& op) {
  try {
    std::istringstream in(r.m.proc_read(op.args[0].str));
    std::string line;
    while (std::getline(in, line)) r.extra.push_back("  | " + line);
  } catch (const std::exception& e) {
    r.detail = std::string("error: ") + e.what();
  }
}

void exec_check(Runner& r, const Op& op) {
  auto errors = validate(r.m);
  for (const auto& e : errors) r.fail(op, "check: " + e);
  r.detail = errors.empty() ? "ok" : std::to_string(errors.size()) + " invariant(s) broken";
}

void exec_expect_report(Runner& r, const Op& op) {
  const auto& reports = r.m.reports();
  const std::string& want = op.args[0].str;
  bool found = false;
  for (size_t i = r.report_cursor; i < reports.size(); i++)
    if (reports[i].title.find(want) != std::string::npos) found = true;
  if (found) r.detail = "ok";
  else if (r.report_cursor == reports.size())
    r.fail(op, "expectation failed: no report matching \"" + want + "\" (no new report)");
  else
    r.fail(op, "expectation failed: no report matching \"" + want + "\" (got \"" +
                   reports[r.report_cursor].title + "\")");
  r.report_cursor = reports.size();
}

void exec_expect_no_report(Runner& r, const Op& op) {
  const auto& reports = r.m.reports();
  if (r.report_cursor < reports.size())
    r.fail(op, "expectation failed: expected no report, got \"" + reports[r.report_cursor].title +
                   "\"");
  else r.detail = "ok";
  r.report_cursor = reports.size();
}

void exec_expect_null(Runner& r, const Op& op) {
  Result& res = r.ref(op, 0);
  if (!res.null())
    r.fail(op, "expectation failed: " + op.args[0].str + " is not NULL (" + r.describe(res) + ")");
  else r.detail = "ok";
}

void exec_expect_value(Runner& r, const Op& op) {
  const Value& a = op.args[0];
  if (r.ref(op, 0).null()) {
    r.fail(op, "expectation failed: " + a.str + " is NULL");
    return;
  }
  std::string why;
  std::vector<Chunk> chunks;
  if (!r.span(r.ref(op, 0), a.num, a.len, &chunks, &why)) {
    r.fail(op, "expectation failed: " + why);
    return;
  }
  auto want = static_cast<uint8_t>(op.args[1].num);
  int64_t i = 0;
  for (const Chunk& c : chunks)
    for (size_t j = 0; j < c.len; j++, i++)
      if (c.mem[j] != want) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "byte %" PRId64 " is 0x%02x, expected 0x%02x", i, c.mem[j],
                      want);
        r.fail(op, "expectation failed: " + a.str + (a.num < 0 ? "" : "+") + std::to_string(a.num) +
                       ": " + buf);
        return;
      }
  r.detail = "ok";
}

// ---- slab and kmalloc (SLUB) -----------------------------------------------------------------
#if KMM_SCENARIO_SLAB

// ctor=fill: fills each new object with 0x5c (the object's size comes from its slab's cache).
constexpr uint8_t kCtorPattern = 0x5c;
void ctor_fill(void* obj) {
  struct page* p = compound_head(virt_to_page(obj));
  if (p && (p->flags & PG_slab) && p->slab.slab_cache)
    std::memset(obj, kCtorPattern, kmem_cache_size(p->slab.slab_cache));
}

void exec_cache_create(Runner& r, const Op& op) {
  Result res;
  res.kind = Kind::Cache;
  res.cache = kmem_cache_create(op.args[0].str.c_str(), static_cast<unsigned>(op.args[1].num),
                                static_cast<unsigned>(op.args[2].num),
                                static_cast<slab_flags_t>(op.args[3].num),
                                op.args[4].num ? ctor_fill : nullptr);
  res.size = op.args[1].num;
  r.define(op, res);
  r.detail = res.cache ? std::string(kmem_cache_name(res.cache)) + " object size " +
                             std::to_string(kmem_cache_size(res.cache))
                       : "NULL";
}

void define_obj(Runner& r, const Op& op, void* ptr, int64_t size) {
  Result res;
  res.kind = Kind::Obj;
  res.ptr = ptr; // ZERO_SIZE_PTR is not NULL; accesses to it are skipped (not direct-mapped)
  res.size = size;
  r.define(op, res);
  r.detail = ptr == ZERO_SIZE_PTR ? "ZERO_SIZE_PTR" : r.describe(res);
}

void exec_cache_alloc(Runner& r, const Op& op, gfp_t extra) {
  Result& c = r.ref(op, 0);
  if (c.null()) {
    define_obj(r, op, nullptr, c.size);
    r.detail = "skipped: " + op.args[0].str + " is NULL";
    return;
  }
  define_obj(r, op, kmem_cache_alloc(c.cache, static_cast<gfp_t>(op.args[1].num) | extra), c.size);
}
void exec_cache_alloc0(Runner& r, const Op& op) { exec_cache_alloc(r, op, 0); }
void exec_cache_zalloc(Runner& r, const Op& op) { exec_cache_alloc(r, op, __GFP_ZERO); }

void exec_cache_free(Runner& r, const Op& op) {
  if (r.skip_null(op, 0) || r.skip_null(op, 1)) return;
  r.note(r.ref(op, 1));
  kmem_cache_free(r.ref(op, 0).cache, r.ref(op, 1).ptr);
}

void exec_cache_destroy(Runner& r, const Op& op) {
  if (r.skip_null(op, 0)) return;
  kmem_cache_destroy(r.ref(op, 0).cache);
}

void exec_cache_shrink(Runner& r, const Op& op) {
  if (r.skip_null(op, 0)) return;
  r.detail = std::to_string(kmem_cache_shrink(r.ref(op, 0).cache));
}

void exec_kmalloc(Runner& r, const Op& op) {
  define_obj(r, op,
             kmalloc(static_cast<size_t>(op.args[0].num), static_cast<gfp_t>(op.args[1].num)),
             op.args[0].num);
}
void exec_kzalloc(Runner& r, const Op& op) {
  define_obj(r, op,
             kzalloc(static_cast<size_t>(op.args[0].num), static_cast<gfp_t>(op.args[1].num)),
             op.args[0].num);
}

void exec_krealloc(Runner& r, const Op& op) {
  Result& old = r.ref(op, 0);
  define_obj(
      r, op,
      krealloc(old.ptr, static_cast<size_t>(op.args[1].num), static_cast<gfp_t>(op.args[2].num)),
      op.args[1].num);
}

void exec_kfree(Runner& r, const Op& op) {
  Result& o = r.ref(op, 0);
  r.note(o);
  kfree(o.ptr);
}
void exec_kfree_sensitive(Runner& r, const Op& op) {
  Result& o = r.ref(op, 0);
  r.note(o);
  kfree_sensitive(o.ptr);
}
void exec_ksize(Runner& r, const Op& op) {
  if (r.skip_null(op, 0)) return;
  r.detail = std::to_string(ksize(r.ref(op, 0).ptr));
}

int64_t size_of_cache_ref(const Op& op, const SymTab& syms) {
  const Def* d = syms.find(op.args[0].str);
  return d ? d->size : 0;
}
int64_t size_of_arg1(const Op& op, const SymTab&) { return op.args[1].num; }

#endif // KMM_SCENARIO_SLAB

// ---- vmalloc and kvmalloc --------------------------------------------------------------------

void define_mem(Runner& r, const Op& op, Kind kind, void* ptr, int64_t size) {
  Result res;
  res.kind = kind;
  res.ptr = ptr;
  res.size = size;
  r.define(op, res);
  r.detail = ptr == ZERO_SIZE_PTR ? "ZERO_SIZE_PTR" : r.describe(res);
}

void exec_vmalloc(Runner& r, const Op& op) {
  define_mem(r, op, Kind::Vmalloc, vmalloc(static_cast<unsigned long>(op.args[0].num)),
             op.args[0].num);
}
void exec_vzalloc(Runner& r, const Op& op) {
  define_mem(r, op, Kind::Vmalloc, vzalloc(static_cast<unsigned long>(op.args[0].num)),
             op.args[0].num);
}
void exec_vfree(Runner& r, const Op& op) {
  Result& v = r.ref(op, 0);
  r.note(v);
  vfree(v.ptr);
}

void exec_kvmalloc(Runner& r, const Op& op) {
  define_mem(r, op, Kind::Kvmalloc,
             kvmalloc(static_cast<size_t>(op.args[0].num), static_cast<gfp_t>(op.args[1].num)),
             op.args[0].num);
}
void exec_kvzalloc(Runner& r, const Op& op) {
  define_mem(r, op, Kind::Kvmalloc,
             kvzalloc(static_cast<size_t>(op.args[0].num), static_cast<gfp_t>(op.args[1].num)),
             op.args[0].num);
}
void exec_kvfree(Runner& r, const Op& op) {
  Result& v = r.ref(op, 0);
  r.note(v);
  kvfree(v.ptr);
}

// ---- CMA and DMA -----------------------------------------------------------------------------

// cma_alloc on the default area (dev_get_cma_area(NULL)); NULL when the machine has no cma=.
void exec_cma_alloc(Runner& r, const Op& op) {
  Result res;
  res.kind = Kind::Cma;
  auto count = static_cast<unsigned long>(op.args[0].num);
  res.page =
      cma_alloc(dev_get_cma_area(nullptr), count, static_cast<unsigned>(op.args[1].num), false);
  res.ptr = res.page ? page_address(res.page) : nullptr;
  res.size = op.args[0].num * int64_t(PAGE_SIZE);
  r.define(op, res);
  r.detail = dev_get_cma_area(nullptr) ? r.describe(res) : "NULL (no cma= area)";
}

void exec_cma_release(Runner& r, const Op& op) {
  if (r.skip_null(op, 0)) return;
  Result& res = r.ref(op, 0);
  bool ok = cma_release(dev_get_cma_area(nullptr), res.page,
                        static_cast<unsigned long>(res.size / int64_t(PAGE_SIZE)));
  r.detail = ok ? "released" : "false";
}

void exec_dma_alloc(Runner& r, const Op& op) {
  Result res;
  res.kind = Kind::Dma;
  res.size = op.args[0].num;
  res.mask_bits = static_cast<unsigned>(op.args[1].num);
  dma_addr_t handle = 0;
  res.ptr = dma_alloc_coherent(r.dma_device(res.mask_bits), static_cast<size_t>(res.size), &handle,
                               static_cast<gfp_t>(op.args[2].num));
  res.dma = handle;
  r.define(op, res);
  r.note(res);
}

void exec_dma_free(Runner& r, const Op& op) {
  if (r.skip_null(op, 0)) return;
  Result& res = r.ref(op, 0);
  r.note(res);
  dma_free_coherent(r.dma_device(res.mask_bits), static_cast<size_t>(res.size), res.ptr, res.dma);
}

// ---- tasks, page cache, reclaim, OOM ---------------------------------------------------------

void exec_task_spawn(Runner& r, const Op& op) {
  Result res;
  res.kind = Kind::Task;
  res.id = task_spawn(r.m, op.args[0].str, static_cast<int>(op.args[1].num));
  r.define(op, res);
  r.detail = res.id > 0 ? r.describe(res) : errno_name(res.id);
}

// The task's pid, or 0 with the trace saying it is gone (exited or OOM-killed).
int live_pid(Runner& r, const Op& op) {
  if (r.skip_null(op, 0)) return 0;
  int pid = r.ref(op, 0).id;
  if (task_alive(r.m, pid)) return pid;
  r.detail = "skipped: pid " + std::to_string(pid) + " is gone";
  return 0;
}

void exec_task_touch(Runner& r, const Op& op) {
  int pid = live_pid(r, op);
  if (!pid) return;
  long n = task_touch(r.m, pid, static_cast<unsigned long>(op.args[1].num));
  r.detail = n < 0 ? errno_name(static_cast<int>(n)) : std::to_string(n) + " pages";
  if (!task_alive(r.m, pid)) r.detail += ", then killed";
}

// task_touch grows the task's memory: accesses may reach the pages it asks for (the binary
// form's windows are static; an access beyond what was really touched is skipped at run time).
void effect_task_touch(const Op& op, SymTab& syms) {
  Def* d = syms.find_mut(op.args[0].str);
  if (d) d->size = std::min(d->size + op.args[1].num * int64_t(PAGE_SIZE), kMaxWindow);
}

void exec_task_exit(Runner& r, const Op& op) {
  int pid = live_pid(r, op);
  if (!pid) return;
  r.detail = errno_name(task_exit(r.m, pid));
}

void exec_oom_score_adj(Runner& r, const Op& op) {
  int pid = live_pid(r, op);
  if (!pid) return;
  r.detail = errno_name(r.m.proc_write("/proc/" + std::to_string(pid) + "/oom_score_adj",
                                       std::to_string(op.args[1].num)));
}

void exec_oom_score(Runner& r, const Op& op) {
  int pid = live_pid(r, op);
  if (!pid) return;
  std::string v = r.m.proc_read("/proc/" + std::to_string(pid) + "/oom_score");
  r.detail = v.substr(0, v.find('\n'));
}

void exec_out_of_memory(Runner& r, const Op&) {
  r.detail = errno_name(r.m.proc_write("/proc/sysrq-trigger", "f"));
}

void exec_file_create(Runner& r, const Op& op) {
  Result res;
  res.kind = Kind::File;
  res.id = file_create(r.m, op.args[0].str);
  r.define(op, res);
  r.detail = res.id > 0 ? r.describe(res) : errno_name(res.id);
}

void exec_file_io(Runner& r, const Op& op, bool write) {
  if (r.skip_null(op, 0)) return;
  int ino = r.ref(op, 0).id;
  auto index = static_cast<unsigned long>(op.args[1].num);
  auto pages = static_cast<unsigned long>(op.args[2].num);
  long n = write ? file_write(r.m, ino, index, pages) : file_read(r.m, ino, index, pages);
  r.detail = n < 0 ? errno_name(static_cast<int>(n)) : std::to_string(n) + " pages cached";
}
void exec_file_read(Runner& r, const Op& op) { exec_file_io(r, op, false); }
void exec_file_write(Runner& r, const Op& op) { exec_file_io(r, op, true); }

void exec_writeback(Runner& r, const Op& op) {
  if (r.skip_null(op, 0)) return;
  long n = writeback(r.m, r.ref(op, 0).id);
  r.detail = n < 0 ? errno_name(static_cast<int>(n)) : std::to_string(n) + " pages written";
}

void exec_file_delete(Runner& r, const Op& op) {
  if (r.skip_null(op, 0)) return;
  r.detail = errno_name(file_delete(r.m, r.ref(op, 0).id));
}

void exec_kswapd_run(Runner& r, const Op&) {
  r.detail = std::to_string(kswapd_run(r.m)) + " pages reclaimed";
}

// expect vmalloc / expect kmalloc: where kvmalloc (or any allocation) put its memory.
void exec_expect_where(Runner& r, const Op& op, bool want_vmalloc) {
  Result& res = r.ref(op, 0);
  if (res.null() || res.ptr == ZERO_SIZE_PTR) {
    r.fail(op, "expectation failed: " + op.args[0].str + " is NULL");
    return;
  }
  bool vm = is_vmalloc_addr(res.ptr);
  if (vm == want_vmalloc) r.detail = "ok";
  else
    r.fail(op, "expectation failed: " + op.args[0].str + " is " +
                   (vm ? "a vmalloc address" : "not a vmalloc address") + " (" + r.describe(res) +
                   ")");
}
void exec_expect_vmalloc(Runner& r, const Op& op) { exec_expect_where(r, op, true); }
void exec_expect_kmalloc(Runner& r, const Op& op) { exec_expect_where(r, op, false); }

void exec_reclaim(Runner& r, const Op& op) {
  r.detail =
      std::to_string(reclaim(r.m, static_cast<unsigned long>(op.args[0].num))) + " pages reclaimed";
}

} // namespace

std::string slab_cache_of(const void* ptr) {
#if KMM_SCENARIO_SLAB
  struct page* p = compound_head(virt_to_page(ptr));
  if (p && (p->flags & PG_slab) && p->slab.slab_cache) return kmem_cache_name(p->slab.slab_cache);
#endif
  (void)ptr;
  return "";
}

namespace {

int64_t size_of_order(const Op& op, const SymTab&) { return int64_t(PAGE_SIZE) << op.args[0].num; }
int64_t size_of_arg0(const Op& op, const SymTab&) { return op.args[0].num; }
int64_t size_of_pages(const Op& op, const SymTab&) { return op.args[0].num * int64_t(PAGE_SIZE); }
int64_t size_none(const Op&, const SymTab&) { return 0; }

// Limits of the new subsystems' arguments. Sizes stay below 16 MiB so every offset of an
// allocation fits the binary form's 3 bytes (kMaxWindow).
// They are also kept small enough for fuzzing speed: a vmalloc maps its pages one mmap per
// physically contiguous run, and a task_touch faults pages one by one.
constexpr int64_t kMaxVmallocSize = int64_t(1) << 20;  // 256 pages
constexpr int64_t kMaxKvmallocSize = int64_t(4) << 20; // above MAX_PAGE_ORDER's 4 MiB block
constexpr int64_t kMaxCmaCount = 4096;                 // pages; more than any fuzz machine's area
constexpr int64_t kMaxTouch = 4096; // pages per task_touch: 16 MiB; a few OOM any machine
constexpr int64_t kMaxFilePages = 1024;

// Field shorthands for the table.
Field ref(uint16_t mask) { return {nullptr, FieldType::Ref, Need::Required, 0, 0, 0, mask}; }
Field access(uint16_t mask, bool corrupt = false) {
  return {"len", FieldType::Access, Need::Required, 0, 0, 0, mask, corrupt};
}
Field uint_(const char* key, int64_t min, int64_t max) {
  return {key, FieldType::UInt, Need::Required, min, max};
}
Field opt_uint(const char* key, int64_t min, int64_t max) {
  return {key, FieldType::UInt, Need::Optional, min, max};
}
// An allocation order, 0 to max: in the binary form, small orders are drawn more often.
Field order_(int64_t max) {
  Field f = uint_("order", 0, max);
  f.skewed = true;
  return f;
}
Field gfp(gfp_t def = GFP_KERNEL) {
  return {"gfp", FieldType::Gfp, Need::Default, 0, __GFP_BITS_MASK, def};
}
Field byte_() { return {"byte", FieldType::Byte, Need::Required, 0, 255}; }

// The table, built once. A function of its own: the hundreds of temporaries of its initializer
// would otherwise be op_table()'s stack frame, which ASan poisons and unpoisons at every call
// (several per operation), long after the table was built.
std::vector<OpSpec> make_op_table() {
  // clang-format off
  return {
    {"alloc_pages", Kind::Page, {order_(kMaxOrderArg), gfp()},
     exec_alloc_pages, size_of_order, "P = alloc_pages order=N [gfp=FLAGS]"},
    {"free_pages", Kind::None, {ref(R_PAGE), opt_uint("order", 0, kMaxOrderArg), opt_uint("page", 0, 1023)},
     exec_free_pages, nullptr, "free_pages P [order=N] [page=I]   (__free_pages; order defaults to P's)"},
    {"get_page", Kind::None, {ref(R_PAGE), opt_uint("page", 0, 1023)},
     exec_get_page, nullptr, "get_page P [page=I]"},
    {"put_page", Kind::None, {ref(R_PAGE), opt_uint("page", 0, 1023)},
     exec_put_page, nullptr, "put_page P [page=I]"},
    {"split_page", Kind::None, {ref(R_PAGE)},
     exec_split_page, nullptr, "split_page P   (then free_pages P page=I frees page I)"},
    {"alloc_pages_exact", Kind::Virt, {uint_("size", 1, int64_t(PAGE_SIZE) << MAX_PAGE_ORDER), gfp()},
     exec_alloc_pages_exact, size_of_arg0, "X = alloc_pages_exact size=BYTES [gfp=FLAGS]"},
    {"free_pages_exact", Kind::None, {ref(R_VIRT), opt_uint("size", 1, int64_t(PAGE_SIZE) << MAX_PAGE_ORDER)},
     exec_free_pages_exact, nullptr, "free_pages_exact X [size=BYTES]"},
    {"write", Kind::None, {access(R_DATA), byte_()},
     exec_store, nullptr, "write R+OFF len=N byte=B   (inside a page allocation; objects: +-64 bytes)"},
    {"read", Kind::None, {access(R_DATA)},
     exec_read, nullptr, "read R+OFF len=N   (the bytes go to the trace)"},
    {"fill", Kind::None, {ref(R_DATA), byte_()},
     exec_fill, nullptr, "fill R byte=B   (the whole allocation)"},
    {"corrupt", Kind::None, {access(R_DATA, true), byte_()},
     exec_store, nullptr, "corrupt R+OFF len=N byte=B   (deliberately anywhere within a page of R)"},
    {"cpu", Kind::None, {{nullptr, FieldType::UInt, Need::Required, 0, 63}},
     exec_cpu, nullptr, "cpu N   (the next operations run as CPU N)"},
    {"spin_lock", Kind::None, {}, exec_spin_lock, nullptr, "spin_lock   (the scenario's lock)"},
    {"spin_unlock", Kind::None, {}, exec_spin_unlock, nullptr, "spin_unlock"},
    {"local_irq_disable", Kind::None, {}, exec_irq_disable, nullptr, "local_irq_disable"},
    {"local_irq_enable", Kind::None, {}, exec_irq_enable, nullptr, "local_irq_enable"},
    {"proc_write", Kind::None, {{nullptr, FieldType::PathWrite}, {nullptr, FieldType::UInt, Need::Required, 0, 0xffffff}},
     exec_proc_write, nullptr, "proc_write PATH VALUE"},
    {"proc_read", Kind::None, {{nullptr, FieldType::PathRead}},
     exec_proc_read, nullptr, "proc_read PATH   (the file goes to the trace)"},
    {"check", Kind::None, {}, exec_check, nullptr, "check   (kmm::validate now)"},
    {"expect report", Kind::None, {{nullptr, FieldType::Text}},
     exec_expect_report, nullptr, "expect report \"TITLE SUBSTRING\"   (a report since the last expect)"},
    {"expect no-report", Kind::None, {},
     exec_expect_no_report, nullptr, "expect no-report   (no report since the last expect)"},
    {"expect null", Kind::None, {ref(R_ANY)},
     exec_expect_null, nullptr, "expect null R   (the allocation returned NULL)"},
    {"expect value", Kind::None, {access(R_DATA), byte_()},
     exec_expect_value, nullptr, "expect value R+OFF len=N byte=B"},
#if KMM_SCENARIO_SLAB
    {"kmem_cache_create", Kind::Cache,
     {{"name", FieldType::Name}, uint_("size", 1, 65536),
      {"align", FieldType::UInt, Need::Default, 0, 4096, 0},
      {"flags", FieldType::SlabFlags, Need::Default}, {"ctor", FieldType::Ctor, Need::Default}},
     exec_cache_create, size_of_arg1, "C = kmem_cache_create name=NAME size=N [align=N] [flags=SLAB_...] [ctor=none|fill]"},
    {"kmem_cache_alloc", Kind::Obj, {ref(R_CACHE), gfp()},
     exec_cache_alloc0, size_of_cache_ref, "O = kmem_cache_alloc C [gfp=FLAGS]"},
    {"kmem_cache_zalloc", Kind::Obj, {ref(R_CACHE), gfp()},
     exec_cache_zalloc, size_of_cache_ref, "O = kmem_cache_zalloc C [gfp=FLAGS]"},
    {"kmem_cache_free", Kind::None, {ref(R_CACHE), ref(R_OBJ)},
     exec_cache_free, nullptr, "kmem_cache_free C O"},
    {"kmem_cache_destroy", Kind::None, {ref(R_CACHE)},
     exec_cache_destroy, nullptr, "kmem_cache_destroy C"},
    {"kmem_cache_shrink", Kind::None, {ref(R_CACHE)},
     exec_cache_shrink, nullptr, "kmem_cache_shrink C"},
    {"kmalloc", Kind::Obj, {uint_("size", 0, int64_t(KMALLOC_MAX_SIZE) + 1), gfp()},
     exec_kmalloc, size_of_arg0, "O = kmalloc size=N [gfp=FLAGS]"},
    {"kzalloc", Kind::Obj, {uint_("size", 0, int64_t(KMALLOC_MAX_SIZE) + 1), gfp()},
     exec_kzalloc, size_of_arg0, "O = kzalloc size=N [gfp=FLAGS]"},
    {"krealloc", Kind::Obj, {ref(R_OBJ), uint_("size", 0, int64_t(KMALLOC_MAX_SIZE) + 1), gfp()},
     exec_krealloc, size_of_arg1, "O2 = krealloc O size=N [gfp=FLAGS]"},
    {"kfree", Kind::None, {ref(R_OBJ)}, exec_kfree, nullptr, "kfree O"},
    {"kfree_sensitive", Kind::None, {ref(R_OBJ)}, exec_kfree_sensitive, nullptr, "kfree_sensitive O"},
    {"ksize", Kind::None, {ref(R_OBJ)}, exec_ksize, nullptr, "ksize O   (the usable size goes to the trace)"},
#endif
    {"vmalloc", Kind::Vmalloc, {uint_("size", 0, kMaxVmallocSize)},
     exec_vmalloc, size_of_arg0, "V = vmalloc size=N"},
    {"vzalloc", Kind::Vmalloc, {uint_("size", 0, kMaxVmallocSize)},
     exec_vzalloc, size_of_arg0, "V = vzalloc size=N"},
    {"vfree", Kind::None, {ref(R_VMALLOC)}, exec_vfree, nullptr, "vfree V"},
    {"kvmalloc", Kind::Kvmalloc, {uint_("size", 0, kMaxKvmallocSize), gfp()},
     exec_kvmalloc, size_of_arg0, "K = kvmalloc size=N [gfp=FLAGS]   (kmalloc, or vmalloc when that fails)"},
    {"kvzalloc", Kind::Kvmalloc, {uint_("size", 0, kMaxKvmallocSize), gfp()},
     exec_kvzalloc, size_of_arg0, "K = kvzalloc size=N [gfp=FLAGS]"},
    {"kvfree", Kind::None, {ref(R_KVMALLOC)}, exec_kvfree, nullptr, "kvfree K"},
    {"cma_alloc", Kind::Cma, {uint_("count", 1, kMaxCmaCount), {"align", FieldType::UInt, Need::Default, 0, kMaxOrderArg, 0}},
     exec_cma_alloc, size_of_pages, "M = cma_alloc count=PAGES [align=ORDER]   (the cma= area; migrates movable pages out)"},
    {"cma_release", Kind::None, {ref(R_CMA)}, exec_cma_release, nullptr, "cma_release M"},
    {"dma_alloc_coherent", Kind::Dma,
     {uint_("size", 1, int64_t(PAGE_SIZE) << MAX_PAGE_ORDER), {"mask", FieldType::UInt, Need::Default, 24, 64, 32}, gfp()},
     exec_dma_alloc, size_of_arg0, "D = dma_alloc_coherent size=N [mask=BITS] [gfp=FLAGS]   (a device with that DMA mask)"},
    {"dma_free_coherent", Kind::None, {ref(R_DMA)}, exec_dma_free, nullptr, "dma_free_coherent D"},
    {"task_spawn", Kind::Task,
     {{"comm", FieldType::Name}, {"adj", FieldType::UInt, Need::Default, -1000, 1000, 0}},
     exec_task_spawn, size_none, "T = task_spawn comm=NAME [adj=OOM_SCORE_ADJ]   (memory: T+OFF, its touched pages)"},
    {"task_touch", Kind::None, {ref(R_TASK), uint_("pages", 1, kMaxTouch)},
     exec_task_touch, nullptr, "task_touch T pages=N   (N more anonymous pages, each 512-byte block stamped pid<<32|index)", effect_task_touch},
    {"task_exit", Kind::None, {ref(R_TASK)}, exec_task_exit, nullptr, "task_exit T"},
    {"oom_score_adj", Kind::None, {ref(R_TASK), uint_("adj", -1000, 1000)},
     exec_oom_score_adj, nullptr, "oom_score_adj T adj=N   (writes /proc/<pid>/oom_score_adj)"},
    {"oom_score", Kind::None, {ref(R_TASK)},
     exec_oom_score, nullptr, "oom_score T   (/proc/<pid>/oom_score goes to the trace)"},
    {"out_of_memory", Kind::None, {},
     exec_out_of_memory, nullptr, "out_of_memory   (echo f > /proc/sysrq-trigger: the OOM killer now)"},
    {"file_create", Kind::File, {{"name", FieldType::Name}},
     exec_file_create, size_none, "F = file_create name=NAME   (an empty page-cache file)"},
    {"file_read", Kind::None, {ref(R_FILE), {"index", FieldType::UInt, Need::Default, 0, 65535, 0}, uint_("pages", 1, kMaxFilePages)},
     exec_file_read, nullptr, "file_read F [index=I] pages=N   (clean page-cache pages)"},
    {"file_write", Kind::None, {ref(R_FILE), {"index", FieldType::UInt, Need::Default, 0, 65535, 0}, uint_("pages", 1, kMaxFilePages)},
     exec_file_write, nullptr, "file_write F [index=I] pages=N   (dirty page-cache pages)"},
    {"writeback", Kind::None, {ref(R_FILE)}, exec_writeback, nullptr, "writeback F"},
    {"file_delete", Kind::None, {ref(R_FILE)}, exec_file_delete, nullptr, "file_delete F   (truncate and unlink)"},
    {"kswapd_run", Kind::None, {}, exec_kswapd_run, nullptr, "kswapd_run   (kswapd's step, if it was woken)"},
    {"reclaim", Kind::None, {uint_("pages", 1, kMaxTouch)},
     exec_reclaim, nullptr, "reclaim pages=N   (direct reclaim)"},
    {"expect vmalloc", Kind::None, {ref(R_VMALLOC | R_KVMALLOC)},
     exec_expect_vmalloc, nullptr, "expect vmalloc K   (K is a vmalloc address: kvmalloc fell back)"},
    {"expect kmalloc", Kind::None, {ref(R_VMALLOC | R_KVMALLOC)},
     exec_expect_kmalloc, nullptr, "expect kmalloc K   (K is not NULL and not a vmalloc address)"},
  };
  // clang-format on
}

} // namespace

const std::vector<OpSpec>& op_table() {
  static const std::vector<OpSpec> table = make_op_table();
  return table;
}

int find_op(const std::string& name) {
  const auto& t = op_table();
  for (size_t i = 0; i < t.size(); i++)
    if (name == t[i].name) return static_cast<int>(i);
  return -1;
}

} // namespace kmm::scn

namespace kmm {

std::vector<std::string> scenario_op_names() {
  std::vector<std::string> out;
  for (const auto& s : scn::op_table()) out.push_back(s.name);
  return out;
}

std::string scenario_op_usage() {
  std::string out;
  for (const auto& s : scn::op_table()) out += std::string("  ") + s.help + "\n";
  return out;
}

} // namespace kmm
