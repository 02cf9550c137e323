// Fuzz target: detection. On a machine with KASAN and SLUB debugging (slub_debug=FZPU), a clean
// run must produce no report at all (no false positive), and one injected fault per run must
// produce the matching report (no false negative):
//   - a second kfree / kfree_sensitive / kmem_cache_free of an object: "double-free" (KASAN) or
//     "Object already free" / "invalid-free", at that very operation (for a large kmalloc, whose
//     pages are back in the buddy allocator, free_large_kmalloc's warning);
//   - `corrupt O+SIZE len=1` (the first byte after a live object, in its red zone, with a byte
//     other than the red-zone pattern 0xcc): nothing until the object is freed, then
//     "Redzone overwritten" at that free - or, as in the kernel, later: KASAN's quarantine holds
//     the object and SLUB checks it only when it leaves, so at the end validate() must name the
//     overwritten red zone. (U is needed for the kmalloc red zone between the requested size
//     and the cache's object size, as slub_debug_orig_size() requires SLAB_STORE_USER.)
//   - a `write` or `read` starting in the first 8 bytes past a live kmalloc object (its kmalloc
//     red zone, the partial granule at its end, or SLUB's red zone after it): KASAN's
//     "out-of-bounds" report at that very access.
// The run ends at the detection: what follows a corrupted heap is the kernel's undefined state.
//
// And on a clean run, vmalloc's slack (kasan_unpoison_vmalloc): a vmalloc / vzalloc (or a
// kvmalloc / kvzalloc that fell back to vmalloc) of a size that is not a multiple of the page
// maps whole pages, but only the requested bytes are accessible; the rest of the last page is
// poisoned KASAN_VMALLOC_INVALID. The scenario's accesses stay within a vmalloc result's size
// (only `corrupt`, which is not checked, reaches past it), so the oracle makes the access an
// instrumented overrun would: kasan_check_read() of the first byte past the object (inside a
// partial granule that is a plain "out-of-bounds"), of the first granule past it and of the
// last byte of the page - the last two must get "BUG: KASAN: vmalloc-out-of-bounds", all three
// a report at that check. The check only reads the shadow; its reports are the oracle's own.
//
// And on a clean run, the quarantine (mm/kasan/quarantine.c): a freed slab object waits there
// until the objects freed after it push the quarantine past its budget (1/32 of RAM,
// quarantine_budget() in kasan_slab.cpp). The object at the head leaves only while the
// quarantine holds more than the budget, and it then holds at most the slots freed since that
// object, itself included. So while those add up to no more than the budget the object is
// still quarantined, and no kmalloc / krealloc / kmem_cache_alloc may hand out its address.
// (Nothing in this target empties the quarantine early: no kmem_cache_shrink or _destroy, and
// no shrinker drains it.)
#include <map>

#include "harness.h"
#include "kernel.h"
#include "kmm/linux.h"
#include "kmm/slab.h"
#include "scenario_ops.h"
#include "scenario_run.h"
#include "slub.h"

namespace {

using namespace kmm;

// What a clean run may report (an allocation failure, a WARN for a bad GFP mask, the OOM
// killer's "no killable processes" once vmalloc has taken the memory - this target spawns no
// task - and the panic that follows, which ends the run): never a sign of the corrupted red
// zone, and allowed while it waits to be found.
constexpr uint32_t target_allows = fuzz::report_bit(ReportKind::AllocFail) |
                                   fuzz::report_bit(ReportKind::Warn) |
                                   fuzz::report_bit(ReportKind::Oom);

// The quarantine oracle: each freed slab object's place in the stream of quarantined bytes.
struct QuarantineModel {
  size_t budget = 0;                        // quarantine_budget(): RAM / 32
  uint64_t freed = 0;                       // slot bytes (s->size) quarantined so far
  std::map<uintptr_t, uint32_t> live;       // live slab object -> its slot size
  std::map<uintptr_t, uint64_t> quarantine; // freed object -> `freed` before it

  // A result that came back: a slab object is tracked until freed; one the quarantine must
  // still hold is a failure.
  void allocated(fuzz::Ctx& c, const std::string& name) {
    const fuzz::Live& l = c.res.at(name);
    if (!l.live || ZERO_OR_NULL_PTR(reinterpret_cast<void*>(l.addr))) return;
    auto q = quarantine.find(l.addr);
    if (q != quarantine.end()) {
      uint64_t since = freed - q->second; // the object's slot and every one freed after it
      if (since <= budget)
        fuzz::fail(c, name + " reuses an object freed " + std::to_string(since) +
                          " quarantined bytes ago: the quarantine (budget " +
                          std::to_string(budget) + " bytes) must still hold it");
      quarantine.erase(q);
    }
    struct page* slab = virt_to_slab(c.m->kernel(), reinterpret_cast<void*>(l.addr));
    if (slab && !(slab->slab.slab_cache->flags & SLAB_TYPESAFE_BY_RCU))
      live[l.addr] = slab->slab.slab_cache->size;
  }

  void freed_object(uintptr_t addr) {
    auto it = live.find(addr);
    if (it == live.end()) return; // a large kmalloc or an RCU-typesafe object: not quarantined
    quarantine[addr] = freed;
    freed += it->second;
    live.erase(it);
  }

  void after(fuzz::Ctx& c, const Op& op) {
    const std::string_view n = fuzz::op_name(op);
    if (n == "kmalloc" || n == "kzalloc" || n == "kmem_cache_alloc" || n == "kvmalloc" ||
        n == "kvzalloc") { // kvmalloc: a slab object unless it fell back to vmalloc
      allocated(c, op.result);
    } else if (n == "kfree" || n == "kfree_sensitive" || n == "kvfree") {
      freed_object(c.res.at(op.args[0].str).addr);
    } else if (n == "kmem_cache_free") {
      freed_object(c.res.at(op.args[1].str).addr);
    } else if (n == "krealloc") {
      // A new object is allocated before the old one is freed; in place, nothing moves.
      uintptr_t old = c.res.at(op.args[0].str).addr, now = c.res.at(op.result).addr;
      bool gone = now || op.args[1].num == 0;
      if (gone && now != old) {
        allocated(c, op.result);
        freed_object(old);
      }
    }
  }
};

struct KasanOracle : fuzz::Oracle {
  QuarantineModel quarantine;

  void at_boot(fuzz::Ctx& c) override { quarantine.budget = c.m->kernel().mem.bytes / 32; }

  enum class Fault { None, DoubleFree, Redzone, OutOfBounds } fault = Fault::None;
  std::string victim; // the object the fault is about
  size_t cursor = 0;  // reports before this were looked at
  bool victim_freed = false;
  bool in_bucket = false; // the corrupted byte is in the kmalloc red zone (size < object_size)

  bool inject(fuzz::Ctx& c, const Op& op, const std::string& why) override {
    if (fault != Fault::None) return false; // one fault per run
    const std::string_view n = fuzz::op_name(op);
    if ((n == "kfree" || n == "kfree_sensitive" || n == "kmem_cache_free") &&
        why.find(" of freed ") != std::string::npos) {
      fault = Fault::DoubleFree;
      victim = op.args[n == "kmem_cache_free" ? 1 : 0].str;
    } else if ((n == "write" || n == "read") && why.rfind("access outside ", 0) == 0) {
      const fuzz::Live& l = c.res.at(op.args[0].str);
      const Value& a = op.args[0];
      if (l.kind != uint8_t(scn::Kind::Obj) || !l.cache.empty() || !l.live || l.size <= 0 ||
          a.num < l.size || a.num >= l.size + 8)
        return false;
      fault = Fault::OutOfBounds;
      victim = op.args[0].str;
    } else if (n == "corrupt") {
      const fuzz::Live& l = c.res.at(op.args[0].str);
      if (l.kind != uint8_t(scn::Kind::Obj) || !l.live || l.size <= 0 || op.args[0].num != l.size ||
          op.args[0].len != 1 || op.args[1].num == 0xcc)
        return false;
      fault = Fault::Redzone;
      victim = op.args[0].str;
      struct page* slab = virt_to_slab(c.m->kernel(), reinterpret_cast<void*>(l.addr));
      in_bucket = slab && l.size < int64_t(slab->slab.slab_cache->object_size);
    } else {
      return false;
    }
    cursor = c.m->reports().size();
    return true;
  }

  // New reports since the cursor, except those of the kinds in `ignore`; true if one's title
  // contains any of `want`.
  bool saw(fuzz::Ctx& c, std::initializer_list<const char*> want, std::string* first,
           uint32_t ignore = 0) {
    const auto& reps = c.m->reports();
    bool found = false;
    for (size_t i = cursor; i < reps.size(); i++) {
      if (ignore & fuzz::report_bit(reps[i].kind)) continue;
      if (first->empty()) *first = reps[i].title;
      for (const char* w : want)
        if (reps[i].title.find(w) != std::string::npos) found = true;
    }
    cursor = reps.size();
    return found;
  }

  // The vmalloc slack oracle (the header comment), after a vmalloc-like op of a clean run.
  static void check_vmalloc_slack(fuzz::Ctx& c, const Op& op) {
    const std::string_view n = fuzz::op_name(op);
    if (n != "vmalloc" && n != "vzalloc" && n != "kvmalloc" && n != "kvzalloc") return;
    const fuzz::Live& l = c.res.at(op.result);
    const auto* p = reinterpret_cast<const char*>(l.addr);
    if (!l.live || l.size <= 0 || !is_vmalloc_addr(p) || l.size % int64_t(PAGE_SIZE) == 0) return;
    const int64_t mapped = (l.size + int64_t(PAGE_SIZE) - 1) & ~int64_t(PAGE_SIZE - 1);
    const int64_t granule = (l.size + 7) & ~int64_t(7); // KASAN_GRANULE_SIZE
    struct Probe {
      int64_t off;
      const char* want;
    };
    std::vector<Probe> probes;
    if (granule != l.size) probes.push_back({l.size, "out-of-bounds in kasan_check_read"});
    if (granule < mapped) {
      probes.push_back({granule, "BUG: KASAN: vmalloc-out-of-bounds in kasan_check_read"});
      if (mapped - 1 > granule)
        probes.push_back({mapped - 1, "BUG: KASAN: vmalloc-out-of-bounds in kasan_check_read"});
    }
    const auto& reps = c.m->reports();
    for (const Probe& pr : probes) {
      size_t before = reps.size();
      bool allowed = kasan_check_read(p + pr.off, 1);
      std::string got = reps.size() > before ? reps[before].title : "";
      if (allowed || reps.size() != before + 1 || got.find(pr.want) == std::string::npos)
        fuzz::fail(c, "a read of " + op.result + "+" + std::to_string(pr.off) + " (size " +
                          std::to_string(l.size) + ", page end " + std::to_string(mapped) +
                          ") must get \"" + pr.want + "\"" +
                          (got.empty() ? std::string(" (no report)") : " (got \"" + got + "\")"));
    }
    c.reports_seen = reps.size(); // the probes' reports are the oracle's, not the run's
  }

  void after(fuzz::Ctx& c, const Op& op) override {
    if (!c.tainted) quarantine.after(c, op); // a misuse (double free ...) skips the quarantine
    if (fault == Fault::None) {
      check_vmalloc_slack(c, op);
      return;
    }
    std::string n = fuzz::op_name(op), first;
    bool frees_victim =
        (n == "kfree" || n == "kfree_sensitive" || n == "krealloc") && op.args[0].str == victim;
    frees_victim |= n == "kmem_cache_free" && op.args[1].str == victim;
    if (fault == Fault::OutOfBounds) {
      if (!saw(c, {"out-of-bounds"}, &first))
        fuzz::fail(c,
                   "out-of-bounds " + n + " of " + victim + " not detected" +
                       (first.empty() ? std::string(" (no report)") : " (got \"" + first + "\")"));
      c.stop = true;
    } else if (fault == Fault::DoubleFree) {
      // A large kmalloc's pages went back to the buddy allocator at the first kfree: the second
      // finds no large kmalloc there, and the kernel warns in free_large_kmalloc.
      if (!saw(c,
               {"double-free", "already free", "invalid-free", "at mm/slub.c free_large_kmalloc"},
               &first))
        fuzz::fail(c,
                   "double free of " + victim + " not detected" +
                       (first.empty() ? std::string(" (no report)") : " (got \"" + first + "\")"));
      c.stop = true;
    } else if (frees_victim && !victim_freed) {
      if (n == "krealloc") { // may reuse the object in place: no free, no check
        c.stop = true;
        return;
      }
      // kfree_sensitive() takes ksize(): the whole bucket is the caller's from then on, and it
      // zeroes it. A byte between the requested size and the bucket is no red zone any more,
      // in the kernel as here: nothing to find.
      if (n == "kfree_sensitive" && in_bucket) {
        c.stop = true;
        return;
      }
      victim_freed = true;
      if (saw(c, {"Redzone overwritten"}, &first)) c.stop = true;
      else if (!first.empty())
        fuzz::fail(c, "red-zone overwrite of " + victim + ": got \"" + first + "\" at its free");
    } else if (saw(c, {}, &first, target_allows) || !first.empty()) {
      // SLAB_PANIC: a cache that cannot be created panics, as asked (the harness's rule for
      // clean runs). The run ends there, before the corrupted red zone is looked at.
      if (n == "kmem_cache_create" && (uint64_t(op.args[3].num) & SLAB_PANIC) &&
          first.find("kmem_cache_create: Failed to create slab") != std::string::npos) {
        c.stop = true;
        return;
      }
      // The OOM killer found nobody to kill (the harness's rule for clean runs): the same end.
      if (first == "Kernel panic - not syncing: System is deadlocked on memory") {
        c.stop = true;
        return;
      }
      fuzz::fail(c, "report \"" + first + "\" before the corrupted " + victim + " was detected");
    }
  }

  void at_end(fuzz::Ctx& c) override {
    if (fault != Fault::Redzone || c.stop) return;
    std::string first;
    if (!victim_freed) kfree(c.r->results.at(victim).ptr);
    if (saw(c, {"Redzone overwritten"}, &first)) return;
    if (!first.empty())
      fuzz::fail(c, "red-zone overwrite of " + victim + ": got \"" + first + "\"");
    for (const auto& e : fuzz::validate_now(c))
      if (e.find("Redzone overwritten") != std::string::npos) return;
    fuzz::fail(c, "red-zone overwrite of " + victim +
                      " not detected: no report, and validate() "
                      "does not name it");
  }
};

const fuzz::Target target{"kasan",
                          {"kmalloc", "kzalloc", "krealloc", "kfree", "kfree_sensitive",
                           "kmem_cache_create", "kmem_cache_alloc", "kmem_cache_free", "write",
                           "read", "fill", "corrupt", "vmalloc", "vzalloc", "vfree", "kvmalloc",
                           "kvzalloc", "kvfree"},
                          "mem=16M nr_cpus=1 slub_debug=FZPU kasan=on",
                          16,
                          target_allows,
                          true,
                          [] { return std::unique_ptr<fuzz::Oracle>(new KasanOracle); }};

} // namespace

KMM_FUZZ_TARGET(target)
