// The fuzz harness (harness.h): the loop that runs a decoded scenario one operation at a time
// under the generic model (liveness, no overlap, content, reports, validate) and a target's
// oracle. The model is updated from what the machine answered, as properties/ do.
#include "harness.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>

#include "cma.h"
#include "kasan.h"
#include "kasan_asan.h"
#include "kernel.h"
#include "kmm/linux.h"
#include "kmm/pressure.h"
#include "kmm/slab.h"
#include "kmm/validate.h"
#include "node_pool.h"
#include "pcp.h"
#include "recycle.h"
#include "scenario_ops.h"
#include "scenario_run.h"

#if KMM_ASAN && !defined(KMM_ASAN_RECOVER)
// The fuzz preset's ASan (the asan preset has its own defaults in kasan_asan.cpp). A smaller
// quarantine for kmm's own host heap than ASan's 256 MiB: an input that boots a machine frees
// its structures (struct Kernel alone is 64 KiB) at its end, and with the default window
// each boot touched fresh host pages, a page fault each (about 10 us on this host): 60% of
// fuzz_machine's faults. 16 MiB still holds many inputs' worth of freed objects for ASan's
// use-after-free checks. ASAN_OPTIONS overrides it.
extern "C" const char* __asan_default_options() { return "quarantine_size_mb=16"; }
#endif

namespace kmm::fuzz {

using scn::Kind;

const char* op_name(const Op& op) { return scn::op_table()[op.code].name; }

std::string op_text(Ctx& c, const Op& op) { return print_op(c.executed, op); }

[[noreturn]] void fail(Ctx& c, const std::string& msg) {
  for (size_t i = 0; i < c.executed.ops.size(); i++)
    c.executed.ops[i].line = static_cast<int>(i) + 1;
  std::fprintf(stderr, "\n==== kmm-fuzz %s: oracle failed: %s\n", c.t.name, msg.c_str());
  std::fprintf(stderr,
               "==== the scenario that ran (save as FILE.kmm; `kmm run FILE.kmm` replays it):\n");
  std::fprintf(stderr, "# fuzz target %s: %s\n%s", c.t.name, msg.c_str(),
               print_scenario(c.executed).c_str());
  if (c.m) {
    std::fprintf(stderr, "==== reports:\n");
    for (const auto& rep : c.m->reports()) std::fprintf(stderr, "%s", rep.text.c_str());
  }
  std::fflush(stderr);
  std::abort();
}

std::vector<std::string> validate_now(Ctx& c) { return validate(*c.m); }

::page* block_page(Ctx& c, const std::string& name) {
  auto it = c.r->results.find(name);
  return it == c.r->results.end() ? nullptr : it->second.page;
}

namespace {

// ---- the live-range map (no two live allocations overlap) ------------------------------------

using RangeIt = decltype(Ctx::ranges)::const_iterator;

// The nodes of the Ctx maps of finished inputs, for the next ones (node_pool.h).
NodePool<decltype(Ctx::ranges)>& range_nodes() {
  return NodePool<decltype(Ctx::ranges)>::of_thread();
}
NodePool<decltype(Ctx::res)>& result_nodes() { return NodePool<decltype(Ctx::res)>::of_thread(); }

// The neighbours of address a in the live-range map: *before, the last range starting at or
// below a (the only one that can contain a), and *after, the first starting above it; end()
// where there is none. E.g. ranges at 0x1000 and 0x3000, a = 0x2000: before 0x1000, after 0x3000.
void range_neighbours(const Ctx& c, uintptr_t a, RangeIt* before, RangeIt* after) {
  *after = c.ranges.upper_bound(a);
  *before = *after == c.ranges.begin() ? c.ranges.end() : std::prev(*after);
}

// "p3", or "p3 page 5" for a page of a split block: what starts at address a in result `name`.
std::string range_name(const Ctx& c, uintptr_t a, const std::string& name) {
  auto it = c.res.find(name);
  if (it == c.res.end() || !it->second.split) return name;
  return name + " page " + std::to_string((a - it->second.addr) / PAGE_SIZE);
}

void add_range(Ctx& c, uintptr_t a, int64_t size, const std::string& owner) {
  if (!a || size <= 0) return;
  uintptr_t e = a + static_cast<uintptr_t>(size);
  RangeIt before, after;
  range_neighbours(c, a, &before, &after);
  auto overlap = [&](RangeIt live) {
    fail(c, range_name(c, a, owner) + " overlaps live " +
                range_name(c, live->first, live->second.second));
  };
  if (after != c.ranges.end() && after->first < e) overlap(after);
  if (before != c.ranges.end() && before->second.first > a) overlap(before);
  range_nodes()(c.ranges, a) = {e, owner};
}

void del_range(Ctx& c, uintptr_t a) { range_nodes().erase(c.ranges, a); }

// Whether address a lies inside a live allocation.
bool in_live_range(const Ctx& c, uintptr_t a) {
  RangeIt before, after;
  range_neighbours(c, a, &before, &after);
  return before != c.ranges.end() && before->first <= a && a < before->second.first;
}

// ---- content ---------------------------------------------------------------------------------
//
// The checks look at the machine's memory where it is, piece by piece (scenario_run's span):
// copying an allocation out first cost a fresh host buffer per check (ASan maps large ones, so
// every page of it faulted in) and most of a buddy input's time.

// The host pieces of [off, off+len) of a result as the machine has them now.
bool result_chunks(Ctx& c, const std::string& name, int64_t off, int64_t len,
                   std::vector<scn::Chunk>* chunks) {
  auto it = c.r->results.find(name);
  chunks->clear();
  if (it == c.r->results.end() || len < 0) return false;
  if (len == 0) return true;
  std::string why;
  return c.r->span(it->second, off, len, chunks, &why);
}

// The content checks compare whole allocations, up to 4 MiB each, so they are word loops: not
// memcmp against a buffer of zeros or of the fill byte, which reads two buffers, has ASan check
// both ranges' shadow and libFuzzer's memcmp hook look at each call. They are not instrumented
// either: the callers read live allocations (unpoisoned) and their own shadow copies.

// The offset of the first byte of [p, p+n) that is not b, or n.
KMM_NO_SANITIZE size_t first_not(const uint8_t* p, size_t n, uint8_t b) {
  const uint64_t pattern = 0x0101010101010101ull * b;
  size_t i = 0;
  for (; i < n && (reinterpret_cast<uintptr_t>(p + i) & 7); i++)
    if (p[i] != b) return i;
  for (; i + 64 <= n; i += 64) {
    uint64_t any = 0;
    for (size_t j = 0; j < 64; j += 8) {
      uint64_t w;
      std::memcpy(&w, p + i + j, sizeof w);
      any |= w ^ pattern;
    }
    if (any) break;
  }
  for (; i < n; i++)
    if (p[i] != b) return i;
  return n;
}

// The offset of the first byte where [a, a+n) and [b, b+n) differ, or n.
KMM_NO_SANITIZE size_t first_difference(const uint8_t* a, const uint8_t* b, size_t n) {
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    uint64_t any = 0;
    for (size_t j = 0; j < 64; j += 8) {
      uint64_t wa, wb;
      std::memcpy(&wa, a + i + j, sizeof wa);
      std::memcpy(&wb, b + i + j, sizeof wb);
      any |= wa ^ wb;
    }
    if (any) break;
  }
  for (; i < n; i++)
    if (a[i] != b[i]) return i;
  return n;
}

// Whether [p, p+n) reads as zero: the oracle of every __GFP_ZERO page block, kzalloc, vzalloc
// and DMA buffer (a tenth of fuzz_machine's time when it was a memcmp).
bool all_zero(const uint8_t* p, size_t n) { return first_not(p, n, 0) == n; }

// Appends [p, p+n) to v with memcpy: vector::insert copied with memmove, which ASan carries out
// with its own byte-wise internal_memmove, not libc's (a shadow snapshot of a 4 MiB block).
void append_bytes(std::vector<uint8_t>& v, const uint8_t* p, size_t n) {
  const size_t at = v.size();
  v.resize(at + n);
  std::memcpy(v.data() + at, p, n);
}

// Shadows of finished inputs, kept for the next ones (a shadow of an order-9 block would
// otherwise be a new 2 MiB host mapping every time). Bounded: at most 64 buffers, 64 MiB.
std::vector<std::vector<uint8_t>> spare_shadows;
size_t spare_bytes = 0;
constexpr size_t kMaxSpares = 64, kMaxSpareBytes = size_t(64) << 20;

void keep_spare(std::vector<uint8_t>&& v) {
  if (v.capacity() < 4096 || spare_shadows.size() >= kMaxSpares ||
      spare_bytes + v.capacity() > kMaxSpareBytes)
    return;
  spare_bytes += v.capacity();
  v.clear();
  spare_shadows.push_back(std::move(v));
}

// Gives l.shadow room for n bytes, from a spare if it has none; what it holds is kept (a growing
// task's shadow is reserved again with its old bytes in it).
void reserve_shadow(std::vector<uint8_t>& shadow, size_t n) {
  if (shadow.capacity() >= n) return;
  for (size_t i = 0; i < spare_shadows.size(); i++)
    if (spare_shadows[i].capacity() >= n) {
      std::vector<uint8_t> taken = std::move(spare_shadows[i]);
      spare_bytes -= taken.capacity();
      spare_shadows.erase(spare_shadows.begin() + std::ptrdiff_t(i));
      taken.assign(shadow.begin(), shadow.end());
      shadow.swap(taken);
      return;
    }
  shadow.reserve(n);
}

} // namespace

bool read_result(Ctx& c, const std::string& name, int64_t off, int64_t len,
                 std::vector<uint8_t>* out) {
  std::vector<scn::Chunk> chunks;
  out->clear();
  if (!result_chunks(c, name, off, len, &chunks)) return false;
  for (const auto& ch : chunks) out->insert(out->end(), ch.mem, ch.mem + ch.len);
  return true;
}

namespace {

// Snapshots the allocation's bytes on its first write, so later reads have something to match.
// One read back all zero at birth and not written since needs no copy: it is all zero.
// A split block's freed pages are not read (KASAN has them poisoned, and under ASan the harness's
// own read would be the report): their shadow is zeros that nothing checks (check_content looks
// at live pages only).
void shadow_init(Ctx& c, const std::string& name, Live& l) {
  if (l.written() || !l.live || l.size <= 0) return;
  if (l.zeroed) {
    l.uniform = 0;
    return;
  }
  std::vector<scn::Chunk> chunks;
  if (!l.split) {
    if (!result_chunks(c, name, 0, l.size, &chunks)) return;
    reserve_shadow(l.shadow, size_t(l.size));
    for (const auto& ch : chunks) append_bytes(l.shadow, ch.mem, ch.len);
    return;
  }
  reserve_shadow(l.shadow, size_t(l.size));
  for (size_t i = 0; i < l.page_live.size(); i++) {
    const size_t at = l.shadow.size();
    if (l.page_live[i] && result_chunks(c, name, int64_t(i * PAGE_SIZE), PAGE_SIZE, &chunks))
      for (const auto& ch : chunks) append_bytes(l.shadow, ch.mem, ch.len);
    l.shadow.resize(at + PAGE_SIZE); // a freed page (or one that could not be read): zeros
  }
}

// The expectation as bytes: a uniform one becomes a copy (a write to part of a filled block).
void materialize(Live& l) {
  if (l.uniform < 0) return;
  reserve_shadow(l.shadow, size_t(l.size));
  l.shadow.assign(size_t(l.size), uint8_t(l.uniform));
  l.uniform = -1;
}

// The allocation is gone (or a task is): nothing to expect of its bytes any more.
void forget_content(Live& l) {
  l.shadow.clear();
  l.uniform = -1;
  l.zeroed = false;
}

void check_bytes(Ctx& c, const std::string& name, const Live& l, int64_t off, int64_t len,
                 const char* when) {
  if (!l.written() || !l.live) return;
  std::vector<scn::Chunk> chunks;
  if (!result_chunks(c, name, off, len, &chunks))
    fail(c, "content: " + name + " cannot be read back (checked " + when + ")");
  int64_t at = off;
  for (const auto& ch : chunks) {
    const size_t i = first_unexpected(l, at, ch.mem, ch.len);
    if (i != ch.len) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "content: %s+%lld is 0x%02x, written 0x%02x (checked %s)",
                    name.c_str(), static_cast<long long>(at) + static_cast<long long>(i), ch.mem[i],
                    l.expected(at + int64_t(i)), when);
      fail(c, buf);
    }
    at += int64_t(ch.len);
  }
}

void check_content(Ctx& c, const std::string& name, const Live& l, const char* when) {
  if (!l.written()) return;
  if (!l.split) return check_bytes(c, name, l, 0, l.size, when);
  for (size_t i = 0; i < l.page_live.size(); i++)
    if (l.page_live[i]) check_bytes(c, name, l, int64_t(i) * PAGE_SIZE, PAGE_SIZE, when);
}

// The allocation must read all zero now (__GFP_ZERO, *zalloc, coherent DMA): fails with
// name + what if it does not. Then it is known zeroed, and its first write needs no snapshot.
void expect_zero(Ctx& c, const std::string& name, Live& l, const std::string& what) {
  std::vector<scn::Chunk> chunks;
  if (!result_chunks(c, name, 0, l.size, &chunks)) return; // not readable: nothing to say
  for (const auto& ch : chunks)
    if (!all_zero(ch.mem, ch.len)) fail(c, name + what);
  l.zeroed = true;
}

bool is_task(const Live& l) { return l.kind == uint8_t(Kind::Task); }

// ---- misuse: what a clean run never does -----------------------------------------------------

enum class Verdict { Ok, Skip, Misuse };

const std::string& name_of(const Op& op, size_t i) { return op.args[i].str; }

// The page index a free_pages/get_page/put_page names, and whether the executor would skip it.
int64_t page_idx(const Op& op, size_t field) {
  return op.args[field].present ? op.args[field].num : 0;
}

// The get_page references page idx of a block holds beyond the allocation's.
int extra_refs(const Live& l, int64_t idx) {
  return size_t(idx) < l.extra_refs.size() ? l.extra_refs[size_t(idx)] : 0;
}

Verdict classify(Ctx& c, const Op& op, std::string* why) {
  const scn::OpSpec& spec = scn::op_table()[op.code];
  for (size_t i = 0; i < spec.fields.size(); i++) {
    auto t = spec.fields[i].type;
    if ((t == scn::FieldType::Ref || t == scn::FieldType::Access) && !c.res.count(op.args[i].str))
      return Verdict::Skip; // names a result whose operation was dropped
  }
  const std::string_view n = spec.name;
  auto misuse = [&](const std::string& w) {
    *why = w;
    return Verdict::Misuse;
  };
  auto ref = [&](size_t i) -> Live& { return c.res.at(op.args[i].str); };
  // A freed result whose address a live allocation now holds (krealloc in place returns the same
  // pointer; a freed object's slot may be handed out again): the operation would act on that
  // live object, and neither the kernel nor KASAN can tell the two apart. Not a detectable misuse.
  for (size_t i = 0; i < spec.fields.size(); i++) {
    auto t = spec.fields[i].type;
    if (t != scn::FieldType::Ref && t != scn::FieldType::Access) continue;
    const Live& l = ref(i);
    if (!l.live && l.kind != uint8_t(Kind::Cache) && l.addr && in_live_range(c, l.addr))
      return Verdict::Skip;
  }

  if (n == "corrupt") return misuse("deliberate corruption");
  // Kernel memory asked for with __GFP_MOVABLE may land in CMA pageblocks, where nothing can
  // migrate it: cma_alloc would fail and validate() names the unmovable page. A caller bug.
  if (c.r->k.cma && c.r->k.cma->default_area)
    for (size_t i = 0; i < spec.fields.size(); i++)
      if (spec.fields[i].type == scn::FieldType::Gfp && (op.args[i].num & __GFP_MOVABLE))
        return misuse("__GFP_MOVABLE kernel memory on a machine with CMA");
  if (n == "spin_unlock")
    return c.r->lock_held ? Verdict::Ok : misuse("spin_unlock of a free lock");
  if (n == "local_irq_enable")
    return c.r->k.cpus[c.r->cpu].irq_disable_depth > 0 ? Verdict::Ok
                                                       : misuse("local_irq_enable without disable");
  if (n == "cpu") return c.atomic ? misuse("CPU switch in atomic context") : Verdict::Ok;
  if (n == "free_pages" || n == "get_page" || n == "put_page") {
    Live& l = ref(0);
    if (!l.addr) return Verdict::Ok; // skipped by the executor
    int64_t idx = page_idx(op, n == "free_pages" ? 2 : 1);
    if (idx != 0 && idx >= (int64_t(1) << l.order)) return Verdict::Skip; // the executor skips
    if (!l.live) return misuse("use of freed block " + name_of(op, 0));
    bool page_ok = l.split ? l.page_live[size_t(idx)] != 0 : true;
    if (!page_ok)
      return misuse("use of freed page " + std::to_string(idx) + " of " + name_of(op, 0));
    if (n == "get_page")
      return (l.split || idx == 0) ? Verdict::Ok : misuse("get_page of a tail page");
    if (n == "put_page") {
      if (!l.split && idx != 0) return misuse("put_page of a tail page");
      return extra_refs(l, idx) > 0 ? Verdict::Ok : misuse("put_page of the last reference");
    }
    int64_t order = op.args[1].present ? op.args[1].num : idx != 0 ? 0 : l.order;
    if (extra_refs(l, idx) > 0) return misuse("free_pages of a page with get_page references");
    if (l.split) return order == 0 ? Verdict::Ok : misuse("free of a split page with order > 0");
    if (idx != 0) return misuse("free of a tail page of an unsplit block");
    return order == l.order ? Verdict::Ok : misuse("free_pages with the wrong order");
  }
  if (n == "split_page") {
    Live& l = ref(0);
    if (!l.addr) return Verdict::Ok;
    if (!l.live) return misuse("split_page of a freed block");
    // Splitting again: the kernel's set_page_refcounted() finds the tails already referenced
    // (and a freed head unreferenced). A caller bug.
    if (l.split) return misuse("split_page of an already split block");
    if (l.gfp & __GFP_COMP) return misuse("split_page of a compound page");
    for (int r : l.extra_refs)
      if (r) return misuse("split_page with get_page references");
    return Verdict::Ok;
  }
  if (n == "free_pages_exact") {
    Live& l = ref(0);
    if (!l.addr) return Verdict::Ok;
    if (!l.live) return misuse("free_pages_exact of freed " + name_of(op, 0));
    return (!op.args[1].present || op.args[1].num == l.size)
               ? Verdict::Ok
               : misuse("free_pages_exact with the wrong size");
  }
  if (n == "write" || n == "read" || n == "fill") {
    Live& l = ref(0);
    if (is_task(l)) { // a task's memory is what it has touched; the executor skips the rest
      if (!l.live) return Verdict::Ok;
      if (n == "fill") return Verdict::Ok;
      const Value& a = op.args[0];
      return a.num >= 0 && a.num + a.len <= l.size ? Verdict::Ok : Verdict::Skip;
    }
    if (!l.addr) return Verdict::Ok;
    if (!l.live) return misuse("access to freed " + name_of(op, 0));
    if (reinterpret_cast<void*>(l.addr) == ZERO_SIZE_PTR) return Verdict::Ok;
    if (n == "fill") return l.split ? misuse("fill of a split block") : Verdict::Ok;
    const Value& a = op.args[0];
    if (a.num < 0 || a.num + a.len > l.size) return misuse("access outside " + name_of(op, 0));
    if (l.split)
      for (int64_t pg = a.num / int64_t(PAGE_SIZE); pg <= (a.num + a.len - 1) / int64_t(PAGE_SIZE);
           pg++)
        if (!l.page_live[size_t(pg)]) return misuse("access to a freed page of " + name_of(op, 0));
    return Verdict::Ok;
  }
  if (n == "kfree" || n == "kfree_sensitive" || n == "ksize" || n == "krealloc") {
    Live& l = ref(0);
    if (ZERO_OR_NULL_PTR(reinterpret_cast<void*>(l.addr))) return Verdict::Ok;
    if (!l.live) return misuse(std::string(n) + " of freed " + name_of(op, 0));
    if (n != "kfree" && !l.cache.empty())
      return misuse(std::string(n) + " of a kmem_cache_alloc object");
    return Verdict::Ok;
  }
  if (n == "kmem_cache_free") {
    Live& cl = ref(0);
    Live& o = ref(1);
    if (!o.addr) return Verdict::Ok;
    if (!cl.addr) return misuse("kmem_cache_free into a cache that was never created");
    if (!cl.live) return misuse("kmem_cache_free into a destroyed cache");
    // The wrong cache first: SLUB warns and leaks the object without looking at its state, so
    // a wrong-cache free of a freed object is a wrong-cache free, not a double free.
    if (o.cache != name_of(op, 0)) return misuse("kmem_cache_free into the wrong cache");
    if (!o.live) return misuse("kmem_cache_free of freed " + name_of(op, 1));
    return Verdict::Ok;
  }
  if (n == "vfree" || n == "kvfree" || n == "cma_release" || n == "dma_free_coherent") {
    Live& l = ref(0);
    if (ZERO_OR_NULL_PTR(reinterpret_cast<void*>(l.addr))) return Verdict::Ok; // NULL: a no-op
    if (!l.live) return misuse(std::string(n) + " of freed " + name_of(op, 0));
    return Verdict::Ok;
  }
  if (n == "kmem_cache_alloc" || n == "kmem_cache_zalloc" || n == "kmem_cache_shrink" ||
      n == "kmem_cache_destroy") {
    Live& cl = ref(0);
    if (!cl.addr) return Verdict::Ok;
    if (!cl.live) return misuse(std::string(n) + " of a destroyed cache");
    if (n == "kmem_cache_destroy" && cl.objects)
      return misuse("kmem_cache_destroy with live objects");
    return Verdict::Ok;
  }
  return Verdict::Ok;
}

// ---- before and after an operation -----------------------------------------------------------

// Whether a write or fill of l writes memory the content oracle follows.
bool writable(const Live& l) {
  return l.live && l.size > 0 && (l.addr || is_task(l)) &&
         reinterpret_cast<void*>(l.addr) != ZERO_SIZE_PTR;
}

// Checks the content of what the operation frees, and snapshots what it is about to write.
void before(Ctx& c, const Op& op) {
  const std::string_view n = op_name(op);
  if (n == "free_pages" || n == "free_pages_exact" || n == "kfree" || n == "kfree_sensitive" ||
      n == "krealloc" || n == "vfree" || n == "kvfree" || n == "cma_release" ||
      n == "dma_free_coherent" || n == "task_exit") {
    Live& l = c.res.at(op.args[0].str);
    if (!l.live) return;
    if (l.split) {
      int64_t idx = page_idx(op, 2);
      check_bytes(c, op.args[0].str, l, idx * int64_t(PAGE_SIZE), PAGE_SIZE, "at free");
    } else {
      check_content(c, op.args[0].str, l, n == "krealloc" ? "at krealloc" : "at free");
    }
    if (n == "krealloc" && !l.written() && !ZERO_OR_NULL_PTR(reinterpret_cast<void*>(l.addr)))
      shadow_init(c, op.args[0].str, l); // krealloc must carry the old bytes: remember them
  } else if (n == "kmem_cache_free") {
    Live& l = c.res.at(op.args[1].str);
    if (l.live) check_content(c, op.args[1].str, l, "at free");
  } else if (n == "write") { // (a fill needs no snapshot: it overwrites all, see after())
    Live& l = c.res.at(op.args[0].str);
    if (writable(l)) shadow_init(c, op.args[0].str, l);
  }
}

void kill(Ctx& c, const std::string& name) {
  Live& l = c.res.at(name);
  if (!l.live) return;
  l.live = false;
  del_range(c, l.addr);
  forget_content(l);
  if (!l.cache.empty()) c.res.at(l.cache).objects--;
}

// A new result: record it, check it lies nowhere live.
Live& born(Ctx& c, const Op& op) {
  const scn::Result& r = c.r->results.at(op.result);
  bool fresh;
  Live& l = result_nodes()(c.res, op.result, &fresh);
  if (!fresh) l = Live{}; // a text scenario may name a new result as an old one
  l.kind = static_cast<uint8_t>(r.kind);
  if (r.kind == Kind::Cache) {
    l.live = r.cache != nullptr;
    l.addr = reinterpret_cast<uintptr_t>(r.cache);
    return l;
  }
  if (r.kind == Kind::Task || r.kind == Kind::File) {
    l.id = r.id;
    l.live = r.id > 0;
    return l;
  }
  l.addr = reinterpret_cast<uintptr_t>(r.ptr);
  l.size = r.size;
  l.order = r.order;
  bool zsp = r.ptr == ZERO_SIZE_PTR;
  l.live = r.ptr != nullptr && !zsp;
  if (!l.live) return l;
  int64_t span = l.size;
  bool whole_pages = r.kind == Kind::Virt || r.kind == Kind::Vmalloc || r.kind == Kind::Cma ||
                     r.kind == Kind::Dma || (r.kind == Kind::Kvmalloc && is_vmalloc_addr(r.ptr));
  if (whole_pages) span = (l.size + int64_t(PAGE_SIZE) - 1) & ~int64_t(PAGE_SIZE - 1);
  if (r.kind == Kind::Page) {
    unsigned long pfn = page_to_pfn(r.page);
    if (pfn & ((1ul << l.order) - 1))
      fail(c, op.result + ": pfn " + std::to_string(pfn) + " not aligned to order " +
                  std::to_string(l.order));
  }
  add_range(c, l.addr, span, op.result);
  return l;
}

// Tasks change behind the scenario's back: the OOM killer ends them, task_touch grows them.
// The model follows the machine; new anonymous pages must be zeroed and stamped.
void refresh_tasks(Ctx& c) {
  for (auto& [name, l] : c.res) {
    if (!is_task(l) || !l.live) continue;
    if (!task_alive(*c.m, l.id)) {
      l.live = false;
      forget_content(l);
      continue;
    }
    int64_t now = c.r->task_bytes(c.r->results.at(name));
    if (now == l.size) continue;
    if (now < l.size) fail(c, name + ": a live task lost anonymous pages");
    int64_t old = l.size;
    l.size = now;
    std::vector<scn::Chunk> fresh;
    if (!result_chunks(c, name, old, now - old, &fresh))
      fail(c, name + ": new anonymous pages cannot be read");
    // A new anonymous page is zeroed, then the task stamps each 512-byte block with
    // (pid << 32 | index) in its first 8 bytes (task.cpp's fill_anon_page). Checked a page at a
    // time against one page of expected bytes (a task may grow by megabytes at once).
    uint8_t want[PAGE_SIZE];
    uint64_t want_index = ~uint64_t(0);
    if (l.uniform >= 0) { // a filled task grows: its expectation becomes bytes
      l.size = old;
      materialize(l);
      l.size = now;
    }
    if (!l.shadow.empty()) reserve_shadow(l.shadow, size_t(now));
    int64_t at = old;
    for (const auto& ch : fresh) {
      for (size_t done = 0; done < ch.len;) {
        const uint64_t index = uint64_t(at) / PAGE_SIZE, in_page = uint64_t(at) % PAGE_SIZE;
        if (index != want_index) {
          std::memset(want, 0, sizeof want);
          const uint64_t stamp = (uint64_t(uint32_t(l.id)) << 32) | index;
          for (size_t off = 0; off < PAGE_SIZE; off += 512)
            std::memcpy(want + off, &stamp, sizeof stamp);
          want_index = index;
        }
        const size_t n = std::min<size_t>(ch.len - done, PAGE_SIZE - in_page);
        if (std::memcmp(ch.mem + done, want + in_page, n) != 0)
          fail(c, name + ": a new anonymous page is not zeroed and stamped");
        if (!l.shadow.empty()) append_bytes(l.shadow, want + in_page, n);
        done += n;
        at += int64_t(n);
      }
    }
  }
}

void after(Ctx& c, const Op& op) {
  refresh_tasks(c);
  const std::string_view n = op_name(op);
  if (n == "alloc_pages") {
    Live& l = born(c, op);
    l.gfp = static_cast<uint64_t>(op.args[1].num);
    if (l.live && (l.gfp & __GFP_ZERO))
      expect_zero(c, op.result, l, ": __GFP_ZERO block not zeroed");
  } else if (n == "alloc_pages_exact") {
    Live& l = born(c, op);
    if (l.live && (op.args[1].num & __GFP_ZERO))
      expect_zero(c, op.result, l, ": __GFP_ZERO memory not zeroed");
  } else if (n == "free_pages") {
    Live& l = c.res.at(op.args[0].str);
    if (!l.addr) return;
    if (l.split) {
      size_t idx = size_t(page_idx(op, 2));
      l.page_live[idx] = 0;
      del_range(c, l.addr + idx * PAGE_SIZE);
      if (std::none_of(l.page_live.begin(), l.page_live.end(), [](uint8_t b) { return b; })) {
        l.live = false;
        forget_content(l);
      }
    } else {
      kill(c, op.args[0].str);
    }
  } else if (n == "free_pages_exact") {
    if (c.res.at(op.args[0].str).addr) kill(c, op.args[0].str);
  } else if (n == "get_page" || n == "put_page") {
    Live& l = c.res.at(op.args[0].str);
    if (!l.addr) return;
    if (l.extra_refs.empty()) l.extra_refs.assign(size_t(1) << l.order, 0);
    l.extra_refs[size_t(page_idx(op, 1))] += n == "get_page" ? 1 : -1;
  } else if (n == "split_page") {
    Live& l = c.res.at(op.args[0].str);
    if (!l.addr || l.split || l.order == 0) return;
    l.split = true;
    l.page_live.assign(size_t(1) << l.order, 1);
    del_range(c, l.addr);
    for (size_t i = 0; i < l.page_live.size(); i++)
      add_range(c, l.addr + i * PAGE_SIZE, PAGE_SIZE, op.args[0].str);
  } else if (n == "fill") { // every byte is the fill byte now, whatever was expected before
    Live& l = c.res.at(op.args[0].str);
    if (!writable(l)) return;
    l.shadow.clear();
    l.uniform = static_cast<int16_t>(op.args[1].num & 0xff);
  } else if (n == "write") {
    Live& l = c.res.at(op.args[0].str);
    if (!l.live || !l.written()) return;
    materialize(l);
    // An injected write may reach outside the allocation (a detection target's misuse): only
    // the part inside it is content.
    const int64_t off = op.args[0].num, len = op.args[0].len;
    int64_t lo = std::max<int64_t>(off, 0), hi = std::min<int64_t>(off + len, l.size);
    if (lo < hi)
      std::memset(l.shadow.data() + lo, static_cast<int>(op.args[1].num),
                  static_cast<size_t>(hi - lo));
  } else if (n == "kmalloc" || n == "kzalloc") {
    Live& l = born(c, op);
    if (l.live && (n == "kzalloc" || (op.args[1].num & __GFP_ZERO)))
      expect_zero(c, op.result, l, ": " + std::string(n) + " memory not zeroed");
  } else if (n == "kmem_cache_create") {
    born(c, op);
  } else if (n == "kmem_cache_alloc" || n == "kmem_cache_zalloc") {
    Live& l = born(c, op);
    if (l.live) {
      l.cache = op.args[0].str;
      c.res.at(l.cache).objects++;
      if (n == "kmem_cache_zalloc" || (op.args[1].num & __GFP_ZERO))
        expect_zero(c, op.result, l, ": " + std::string(n) + " object not zeroed");
    }
  } else if (n == "kfree" || n == "kfree_sensitive") {
    kill(c, op.args[0].str);
  } else if (n == "kmem_cache_free") {
    kill(c, op.args[1].str);
  } else if (n == "kmem_cache_destroy") {
    c.res.at(op.args[0].str).live = false;
  } else if (n == "krealloc") {
    const std::string& old = op.args[0].str;
    void* np = c.r->results.at(op.result).ptr;
    int64_t nsize = op.args[1].num;
    Live& o = c.res.at(old);
    bool old_live = o.live, gone = np || nsize == 0; // success (or size 0): the old object is gone
    // Its expectation is needed only when a new object came back (then the old one is gone).
    Live was;
    if (gone) {
      was.shadow.swap(o.shadow);
      was.uniform = o.uniform;
      was.size = o.size;
      kill(c, old);
    }
    Live& l = born(c, op);
    if (l.live && old_live && was.written()) {
      const int64_t keep = std::min<int64_t>(nsize, was.size);
      shadow_init(c, op.result, l);
      materialize(l);
      if (first_unexpected(was, 0, l.shadow.data(), size_t(keep)) != size_t(keep))
        fail(c, op.result + ": krealloc did not carry the first " + std::to_string(keep) +
                    " bytes of " + old);
    }
    if (l.live && (op.args[2].num & __GFP_ZERO) && !was.written() && !old_live)
      expect_zero(c, op.result, l, ": krealloc(NULL, __GFP_ZERO) memory not zeroed");
    keep_spare(std::move(was.shadow));
  } else if (n == "ksize") {
    Live& l = c.res.at(op.args[0].str);
    if (l.live && !ZERO_OR_NULL_PTR(reinterpret_cast<void*>(l.addr)) &&
        ksize(reinterpret_cast<void*>(l.addr)) < static_cast<size_t>(l.size))
      fail(c, "ksize(" + op.args[0].str + ") is below the requested size");
  } else if (n == "vmalloc" || n == "vzalloc" || n == "kvmalloc" || n == "kvzalloc") {
    Live& l = born(c, op);
    bool zero =
        n == "vzalloc" || n == "kvzalloc" || (n == "kvmalloc" && (op.args[1].num & __GFP_ZERO));
    if (l.live && zero) expect_zero(c, op.result, l, ": " + std::string(n) + " memory not zeroed");
  } else if (n == "dma_alloc_coherent") {
    Live& l = born(c, op);
    if (l.live) expect_zero(c, op.result, l, ": coherent DMA buffer not zeroed");
    const scn::Result& r = c.r->results.at(op.result);
    if (l.live && r.dma + uint64_t(l.size) - 1 > DMA_BIT_MASK(r.mask_bits))
      fail(c, op.result + ": DMA buffer above its device's " + std::to_string(r.mask_bits) +
                  "-bit mask");
  } else if (n == "cma_alloc" || n == "file_create") {
    born(c, op);
  } else if (n == "vfree" || n == "kvfree" || n == "cma_release" || n == "dma_free_coherent" ||
             n == "task_exit" || n == "file_delete") {
    kill(c, op.args[0].str);
  } else if (n == "task_spawn") {
    Live& l = born(c, op);
    l.adj = static_cast<int>(op.args[1].num);
  } else if (n == "oom_score_adj") {
    Live& l = c.res.at(op.args[0].str);
    if (l.live) l.adj = static_cast<int>(op.args[1].num);
  } else if (n == "spin_lock" || n == "local_irq_disable") {
    c.atomic++;
  } else if (n == "spin_unlock" || n == "local_irq_enable") {
    c.atomic--;
  }
}

// The OOM killer's choice (an allowed Oom report): never a task with oom_score_adj -1000, and
// the victim is gone; "no killable processes" only when every task is -1000. Its panic (an
// allocation that found nobody to kill) is the kernel's end: allowed, and the run stops there.
bool check_oom(Ctx& c, const Report& rep, const Report* prev) {
  const std::string killed = "Out of memory: Killed process ";
  if (rep.kind == ReportKind::Oom && rep.title.rfind(killed, 0) == 0) {
    int pid = std::atoi(rep.title.c_str() + killed.size());
    for (const auto& [name, l] : c.res)
      if (is_task(l) && l.id == pid && l.adj == -1000)
        fail(c, "the OOM killer chose " + name + " (pid " + std::to_string(pid) +
                    "), whose oom_score_adj is -1000");
    if (task_alive(*c.m, pid)) fail(c, "OOM victim pid " + std::to_string(pid) + " is still alive");
  } else if (rep.kind == ReportKind::Oom &&
             rep.title.rfind("Out of memory and no killable processes", 0) == 0) {
    for (const auto& [name, l] : c.res)
      if (is_task(l) && l.live && l.adj != -1000 && task_alive(*c.m, l.id))
        fail(c, "\"" + rep.title + "\" while " + name + " (oom_score_adj " + std::to_string(l.adj) +
                    ") could be killed");
  } else if (rep.kind == ReportKind::Panic && prev &&
             prev->title.rfind("Out of memory and no killable processes", 0) == 0 &&
             rep.title == "Kernel panic - not syncing: System is deadlocked on memory") {
    c.stop = true;
    return true;
  }
  return false;
}

void check_reports(Ctx& c, const Op* op) {
  const auto& reps = c.m->reports();
  for (; c.reports_seen < reps.size(); c.reports_seen++) {
    if (c.tainted) continue;
    const Report& rep = reps[c.reports_seen];
    uint32_t ok = c.t.allowed_reports | c.allowed_now;
    if (c.atomic) ok |= report_bit(ReportKind::SleepInAtomic);
    if ((ok & report_bit(ReportKind::Oom)) &&
        check_oom(c, rep, c.reports_seen ? &reps[c.reports_seen - 1] : nullptr))
      continue;
    // SLAB_PANIC: a cache that cannot be created panics, as asked. The run ends there.
    if (rep.kind == ReportKind::Panic && op && std::string(op_name(*op)) == "kmem_cache_create" &&
        (static_cast<uint64_t>(op->args[3].num) & SLAB_PANIC) &&
        rep.title.find("kmem_cache_create: Failed to create slab") != std::string::npos) {
      c.stop = true;
      continue;
    }
    if (!(ok & report_bit(rep.kind)))
      fail(c, std::string("unexpected report \"") + rep.title + "\"" +
                  (op ? " after " + op_text(c, *op) : std::string(" at the end")));
  }
}

void check_valid(Ctx& c, const char* when) {
  if (c.tainted) return;
  auto errors = validate(*c.m);
  if (!errors.empty()) fail(c, std::string("validate ") + when + ": " + errors.front());
}

// Frees every live result through the kernel API, newest first (caches last).
void free_everything(Ctx& c) {
  if (c.r->lock_held) spin_unlock(&c.r->lock), c.r->lock_held = false;
  while (c.r->k.cpus[c.r->cpu].irq_disable_depth > 0) local_irq_enable();
  c.atomic = 0;
  for (int pass = 0; pass < 2; pass++)
    for (auto op = c.executed.ops.rbegin(); op != c.executed.ops.rend(); ++op) {
      if (op->result.empty()) continue;
      const std::string& name = op->result;
      Live& l = c.res.at(name);
      if (!l.live || (pass == 0) == (l.kind == uint8_t(Kind::Cache))) continue;
      check_content(c, name, l, "at the end");
      const scn::Result& r = c.r->results.at(name);
      switch (static_cast<Kind>(l.kind)) {
      case Kind::Page:
        for (size_t i = 0; i < l.extra_refs.size(); i++)
          while (l.extra_refs[i]-- > 0) put_page(r.page + i);
        if (l.split) {
          for (size_t i = 0; i < l.page_live.size(); i++)
            if (l.page_live[i]) __free_pages(r.page + i, 0);
        } else {
          __free_pages(r.page, l.order);
        }
        break;
      case Kind::Virt: free_pages_exact(r.ptr, static_cast<size_t>(l.size)); break;
      case Kind::Obj: kfree(r.ptr); break;
      case Kind::Cache: kmem_cache_destroy(r.cache); break;
      case Kind::Vmalloc: vfree(r.ptr); break;
      case Kind::Kvmalloc: kvfree(r.ptr); break;
      case Kind::Cma:
        cma_release(dev_get_cma_area(nullptr), r.page,
                    static_cast<unsigned long>(l.size / int64_t(PAGE_SIZE)));
        break;
      case Kind::Dma:
        dma_free_coherent(c.r->dma_device(r.mask_bits), static_cast<size_t>(l.size), r.ptr, r.dma);
        break;
      case Kind::Task: task_exit(*c.m, l.id); break;
      case Kind::File: file_delete(*c.m, l.id); break;
      default: break;
      }
      l.live = false;
    }
  range_nodes().clear(c.ranges);
}

const std::set<unsigned>& target_ops(const Target& t) {
  static std::map<const Target*, std::set<unsigned>> cache;
  auto it = cache.find(&t);
  if (it != cache.end()) return it->second;
  std::set<unsigned> s;
  for (const char* n : t.ops) {
    int code = scn::find_op(n);
    if (code >= 0) s.insert(static_cast<unsigned>(code));
  }
  return cache[&t] = s;
}

// Machines between inputs (recycle.h). A clean run (no misuse ran) whose machine its boot image
// can take back, which the harness's freeing everything at the end usually makes so, leaves the
// machine here restored; the next input with the same boot line takes it instead of booting.
// So does a run whose misuse the target calls harmless (Oracle::misuse_keeps_machine_sound).
// Otherwise (another misuse, a KFENCE machine, a restore refused) the machine is destroyed
// and the next input boots afresh. KMM_FUZZ_RECYCLE=0 boots every input.
struct Parked {
  std::unique_ptr<Machine> m; // null while an input runs on it (the entry stays for its return)
  BootImagePtr img;
  std::string last; // under KMM_FUZZ_RECYCLE_CHECK: the scenario that ran on it last
};
std::map<std::string, Parked>& parked() {
  static std::map<std::string, Parked> p;
  return p;
}
// The image of a machine that was not parked, whose buffers the next boot's image reuses.
BootImagePtr& spare_image() {
  static BootImagePtr img;
  return img;
}

// KMM_FUZZ_STATS=1: at exit, how many inputs took a restored machine and how many booted, and
// what a restore cost in struct pages copied back.
uint64_t inputs_booted = 0, inputs_restored = 0;
void print_stats() {
  const uint64_t restores = boot_image_restores();
  std::fprintf(stderr,
               "kmm-fuzz: %llu inputs on a restored machine, %llu booted one (%llu restores "
               "refused); %.1f struct pages copied back per restore\n",
               static_cast<unsigned long long>(inputs_restored),
               static_cast<unsigned long long>(inputs_booted),
               static_cast<unsigned long long>(boot_image_refusals()),
               restores ? double(boot_image_pages_copied()) / double(restores) : 0.0);
}

// What the environment asks of the park (docs/fuzzing.md), read once.
struct RecycleEnv {
  bool on = true;     // KMM_FUZZ_RECYCLE=0: boot every input
  bool check = false; // KMM_FUZZ_RECYCLE_CHECK=1: compare each restored machine with a boot
};
const RecycleEnv& recycle_env() {
  static const RecycleEnv env = [] {
    auto is = [](const char* name, const char* value) {
      const char* e = std::getenv(name);
      return e && std::strcmp(e, value) == 0;
    };
    if (is("KMM_FUZZ_STATS", "1")) std::atexit(print_stats);
    return RecycleEnv{!is("KMM_FUZZ_RECYCLE", "0"), is("KMM_FUZZ_RECYCLE_CHECK", "1")};
  }();
  return env;
}

// What a machine at its boot state shows: the log, /proc, the struct pages, KASAN's shadow. (Its
// RAM reads as the boot fill everywhere on both: no page is in use at boot, recycle.h.)
std::string boot_state(Machine& m) {
  std::string out = m.dmesg();
  for (const char* path : {"/proc/buddyinfo", "/proc/pagetypeinfo", "/proc/zoneinfo",
                           "/proc/vmstat", "/proc/meminfo", "/proc/slabinfo", "/proc/vmallocinfo"})
    out += std::string("--- ") + path + "\n" + m.proc_read(path);
  const Kernel& k = m.kernel();
  out.append(reinterpret_cast<const char*>(k.mem.mem_map), k.mem.mem_map_bytes);
  if (k.kasan) {
    out.append(reinterpret_cast<const char*>(k.kasan->dm_shadow), k.kasan->dm_shadow_size);
    out.append(reinterpret_cast<const char*>(k.kasan->vm_shadow), k.kasan->vm_shadow_size);
    out += "\nquarantine " + std::to_string(kasan_quarantine_bytes(m.kernel())) + "\n";
  }
  return out;
}

// KMM_FUZZ_RECYCLE_CHECK=1 (ctest's corpus replays set it): a machine taken from the park is
// first compared with a fresh boot of its line, and every page of its RAM that it takes to hold
// the boot fill (physmem.h) is read; a difference is the harness's own failure.
void check_restored(Ctx& c, const std::string& line, const std::string& last) {
  const PhysMem& mem = c.m->kernel().mem;
  if (unsigned long pfn = mem.first_unclean_pristine(); pfn != mem.nr_pages)
    fail(c, "a machine restored to its boot image has pfn " + std::to_string(pfn) +
                " taken for pristine but not holding the boot fill; the scenario that ran on it "
                "before the restore:\n" +
                last);
  std::string restored = boot_state(*c.m), fresh = boot_state(*Machine::boot(line));
  if (restored == fresh) return;
  size_t at = 0;
  while (at < restored.size() && at < fresh.size() && restored[at] == fresh[at]) at++;
  const size_t from = at > 200 ? at - 200 : 0;
  fail(c, "a machine restored to its boot image differs from a fresh boot of '" + line +
              "' at byte " + std::to_string(at) + ":\n--- restored:\n" +
              restored.substr(from, 300) + "\n--- fresh:\n" + fresh.substr(from, 300) +
              "\n--- the scenario that ran on it before the restore:\n" + last);
}

BootImagePtr take_machine(Ctx& c, const std::string& line) {
  const RecycleEnv& env = recycle_env();
  auto it = parked().find(line);
  if (it != parked().end() && it->second.m) { // (the entry stays, for the machine's return)
    c.m = std::move(it->second.m);
    BootImagePtr img = std::move(it->second.img);
    const std::string last = std::move(it->second.last);
    inputs_restored++;
    if (env.check) check_restored(c, line, last);
    return img;
  }
  inputs_booted++;
  c.m = Machine::boot(line);
  return env.on ? take_boot_image(c.m->kernel(), std::move(spare_image())) : nullptr;
}

void park_machine(Ctx& c, BootImagePtr img, bool sound) {
  if (!img) return;
  if (!sound || !restore_boot_image(c.m->kernel(), *img)) {
    spare_image() = std::move(img);
    return;
  }
  Parked& p = parked()[c.executed.boot];
  p.m = std::move(c.m);
  p.img = std::move(img);
  if (recycle_env().check) p.last = print_scenario(c.executed);
}

// The host storage the harness keeps from input to input, grown once before the first: storage
// that grows while an input runs makes libFuzzer run that input again under a full
// LeakSanitizer pass (node_pool.h). Inputs are at most a few thousand bytes, so a few hundred
// results and a thousand operations cover nearly all of them.
void reserve_storage() {
  constexpr size_t kResults = 1024, kOps = 1024;
  auto name = [](size_t i) { return "r" + std::to_string(i); };
  range_nodes().reserve(kResults, [](size_t i) { return uintptr_t(i); });
  result_nodes().reserve(kResults, name);
  NodePool<decltype(scn::Runner::results)>::of_thread().reserve(kResults, name);
  scn::reserve_op_storage(kOps);
}

// Runs `input`, whose operations it takes (moved into Ctx::executed as they run).
int run(const Target& t, Scenario& input) {
  static const bool reserved = (reserve_storage(), true);
  (void)reserved;
  Ctx c(t);
  c.executed.boot = input.boot;
  c.executed.filename = input.filename;
  BootImagePtr img;
  try {
    img = take_machine(c, input.boot);
  } catch (const std::exception& e) {
    fail(c, std::string("boot failed: ") + e.what());
  }
  const auto& ops = target_ops(t);
  std::unique_ptr<Oracle> oracle = t.make_oracle ? t.make_oracle() : std::make_unique<Oracle>();
  RunResult out;
  bool sound = true; // the machine can be restored (see Oracle::misuse_keeps_machine_sound)
  {
    MachineScope scope(*c.m);
    scn::Runner r(c.executed, *c.m, out);
    r.details = false; // no trace: a failure prints the scenario, which replays to it
    c.r = &r;
    check_reports(c, nullptr);
    oracle->at_boot(c);
    unsigned since_validate = 0;
    c.executed.ops = scn::take_ops(input.ops.size());
    for (Op& in : input.ops) {
      if (!ops.count(in.code)) continue;
      std::string why;
      Verdict v = classify(c, in, &why);
      if (v == Verdict::Skip) continue;
      if (v == Verdict::Misuse) {
        if (!oracle->inject(c, in, why)) continue;
        c.tainted = true;
      }
      c.executed.ops.push_back(std::move(in));
      const Op& op = c.executed.ops.back();
      before(c, op);
      r.detail.clear();
      r.extra.clear();
      try {
        scn::op_table()[op.code].exec(r, op);
      } catch (const std::exception& e) {
        fail(c, std::string("internal error in ") + op_text(c, op) + ": " + e.what());
      }
      if (!out.failures.empty()) fail(c, out.failures.front());
      after(c, op);
      check_reports(c, &op);
      oracle->after(c, op);
      c.allowed_now = 0;
      if (++since_validate >= t.validate_every) {
        since_validate = 0;
        check_valid(c, ("after " + op_text(c, op)).c_str());
      }
      if (c.stop) break;
    }
    if (!c.executed.ops.empty()) check_valid(c, "at the end");
    oracle->at_end(c);
    sound = !c.tainted || oracle->misuse_keeps_machine_sound();
    if (sound && t.free_at_end) {
      free_everything(c);
      check_reports(c, nullptr);
      if (!c.tainted) oracle->after_free_all(c);
    }
    r.cpu_scope.reset();
    c.r = nullptr;
  }
  for (auto& [name, l] : c.res) keep_spare(std::move(l.shadow));
  result_nodes().clear(c.res);
  range_nodes().clear(c.ranges);
  park_machine(c, std::move(img), sound);
  scn::recycle_ops(std::move(c.executed.ops));
  return 0;
}

} // namespace

size_t first_unexpected(const Live& l, int64_t off, const uint8_t* mem, size_t n) {
  return l.uniform >= 0 ? first_not(mem, n, uint8_t(l.uniform))
                        : first_difference(mem, l.shadow.data() + off, n);
}

void check_all_content(Ctx& c, const char* when) {
  for (const auto& [name, l] : c.res)
    if (l.live) check_content(c, name, l, when);
}

std::string dictionary(const Target& t) {
  std::string out = std::string("# fuzz target ") + t.name +
                    ": opcode bytes of its operations (generated: fuzz_" + t.name + " --dict)\n";
  for (unsigned code : target_ops(t)) {
    std::string name = scn::op_table()[code].name;
    for (char& ch : name)
      if (ch == ' ' || ch == '-') ch = '_';
    char buf[96];
    std::snprintf(buf, sizeof buf, "op_%s=\"\\x%02x\"\n", name.c_str(), code);
    out += buf;
  }
  return out;
}

int run_bytes(const Target& t, const uint8_t* data, size_t size) {
  Scenario s = decode_scenario(data, size);
  if (t.boot) s.boot = t.boot;
  s.filename = t.name;
  run(t, s);
  scn::recycle_ops(std::move(s.ops));
  return 0;
}

int run_text(const Target& t, const std::string& text, const std::string& filename) {
  Scenario s = parse_scenario(text, filename);
  if (t.boot && s.boot.empty()) s.boot = t.boot;
  return run(t, s);
}

} // namespace kmm::fuzz
