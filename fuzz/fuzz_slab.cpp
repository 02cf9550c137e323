// Fuzz target: SLUB caches (kmem_cache_create/alloc/zalloc/free/destroy/shrink) on the input's
// machine, against a map of live objects, and slub_debug's detection on the caches the input
// creates with debug flags.
//
// Oracles, beyond the harness's (liveness, no two live objects overlap, content read back
// unchanged, zalloc zeroed, no report, validate every 16 operations, destroy clean at the end):
//   - every object kmem_cache_alloc returns lies in a slab page of the cache it came from
//     (page->slab.slab_cache is the cache kmem_cache_create returned, merged or not);
//   - the free pointer is hardened (CONFIG_SLAB_FREELIST_HARDENED, freelist_ptr() in
//     slub_fast.h): after a kmem_cache_free that leaves the object in its slab on a machine
//     without KASAN (whose quarantine keeps the object off the freelist), the word at
//     object + s->offset is next ^ s->random ^ bswap64(its address), next being NULL or a slot
//     of that slab. Stored in the clear it would be 0 or an address inside the slab; encoded,
//     it is one of those only if the top ~40 bits of random ^ bswap64(address) vanish, a
//     chance of about 2^-40 per free;
//   - detection (one injected fault per run, on machines without KASAN or KFENCE, which would
//     see it first; fuzz_kasan covers those):
//       * kmem_cache_free into another (unmerged) cache: the "object belongs to different cache"
//         warning at that free, and the object leaks;
//       * a second kmem_cache_free of an object of a SLAB_CONSISTENCY_CHECKS cache: a report at
//         that free ("Object already free", or the slab is gone: not a slab / another cache);
//       * bytes of a live object's left or right red zone (SLAB_RED_ZONE) overwritten by a write
//         or corrupt with another byte than 0xcc: with F, "Redzone overwritten" at the object's
//         free; else, if it is never freed, the cache's validate_slab_cache() must name it at
//         the end;
//       * a write into a freed object of a poisoned cache that changes its poison: "Poison
//         overwritten" when the slot is allocated again (with F), or by the cache's validate at
//         the end.
//     A free without F repaints the red zone, a reallocation without F takes the poisoned slot
//     back, a shrink or destroy of the cache frees the slab: the evidence is gone, in the kernel
//     as here, and the run ends without an expectation.
#include <cstring>

#include "harness.h"
#include "kasan_asan.h"
#include "kernel.h"
#include "kmm/linux.h"
#include "kmm/slab.h"
#include "scenario_ops.h"
#include "scenario_run.h"
#include "slub.h"

namespace {

using namespace kmm;

struct SlabOracle : fuzz::Oracle {
  enum class Fault { None, WrongCache, DoubleFree, Redzone, Poison } fault = Fault::None;
  std::string victim;          // the object the fault is about
  kmem_cache* cache = nullptr; // the cache it lives in
  size_t cursor = 0;           // reports before this were looked at
  bool first_after = false;    // the next after() is the injected operation's

  static bool machine_debuggable(fuzz::Ctx& c) {
    Kernel& k = c.m->kernel();
    return !k.kasan && !k.kfence;
  }
  static kmem_cache* cache_of(fuzz::Ctx& c, const fuzz::Live& l) {
    struct page* slab = virt_to_slab(c.m->kernel(), reinterpret_cast<void*>(l.addr));
    return slab ? slab->slab.slab_cache : nullptr;
  }

  bool inject(fuzz::Ctx& c, const Op& op, const std::string& why) override {
    if (fault != Fault::None || !machine_debuggable(c)) return false; // one fault per run
    const std::string_view n = fuzz::op_name(op);
    if (n == "kmem_cache_free") {
      const fuzz::Live& cl = c.res.at(op.args[0].str);
      const fuzz::Live& o = c.res.at(op.args[1].str);
      if (!cl.live || !o.addr || o.cache.empty()) return false;
      if (why == "kmem_cache_free into the wrong cache") {
        kmem_cache* real = o.live ? cache_of(c, o) : nullptr;
        // A merged alias is the same cache: no wrong cache to see.
        if (!real || real == c.r->results.at(op.args[0].str).cache) return false;
        fault = Fault::WrongCache;
      } else if (why.find(" of freed ") != std::string::npos) {
        cache = c.r->results.at(op.args[0].str).cache;
        if (!(cache->flags & SLAB_CONSISTENCY_CHECKS)) return false;
        fault = Fault::DoubleFree;
      } else {
        return false;
      }
      victim = op.args[1].str;
    } else if (n == "write" || n == "corrupt" || n == "fill") {
      const fuzz::Live& l = c.res.at(op.args[0].str);
      if (l.kind != uint8_t(scn::Kind::Obj) || l.cache.empty() || !l.addr || l.size <= 0 ||
          !c.res.at(l.cache).live)
        return false;
      kmem_cache* s = c.r->results.at(l.cache).cache;
      const Value& a = op.args[0];
      // Inside the left red zone or the right one (object_size .. inuse): the free pointer,
      // tracks and padding beyond are other checks' business.
      const bool in_redzone = (a.num >= -int64_t(s->red_left_pad) && a.num + a.len <= 0) ||
                              (a.num >= l.size && a.num + a.len <= int64_t(s->inuse));
      if (l.live && n != "fill" && in_redzone && op.args[1].num != SLUB_RED_ACTIVE &&
          (s->flags & SLAB_RED_ZONE) && l.size == int64_t(s->object_size) && cache_of(c, l) == s) {
        fault = Fault::Redzone;
      } else if (!l.live && (s->flags & __OBJECT_POISON) &&
                 (n == "fill" || (a.num >= 0 && a.num + a.len <= l.size)) && cache_of(c, l) == s) {
        fault = Fault::Poison;
      } else {
        return false;
      }
      cache = s;
      victim = op.args[0].str;
    } else {
      return false;
    }
    cursor = c.m->reports().size();
    first_after = true;
    return true;
  }

  // True if a report since the cursor contains any of `want` (title or text); the first
  // report's title goes to *first.
  bool saw(fuzz::Ctx& c, std::initializer_list<const char*> want, std::string* first) {
    const auto& reps = c.m->reports();
    bool found = false;
    for (size_t i = cursor; i < reps.size(); i++) {
      if (reps[i].kind == ReportKind::AllocFail) continue;
      if (first->empty()) *first = reps[i].title;
      for (const char* w : want)
        if (reps[i].title.find(w) != std::string::npos || reps[i].text.find(w) != std::string::npos)
          found = true;
    }
    cursor = reps.size();
    return found;
  }

  // Whether the freed victim still reads as poison (POISON_FREE, POISON_END last).
  bool poison_intact(fuzz::Ctx& c) const {
    const fuzz::Live& l = c.res.at(victim);
    const auto* p = reinterpret_cast<const uint8_t*>(l.addr);
    KasanMetadataAccess meta(p, size_t(l.size));
    for (int64_t i = 0; i < l.size; i++)
      if (p[i] != (i == l.size - 1 ? POISON_END : POISON_FREE)) return false;
    return true;
  }

  [[noreturn]] void missed(fuzz::Ctx& c, const std::string& what, const std::string& first) {
    fuzz::fail(c, what + " of " + victim + " not detected" +
                      (first.empty() ? std::string(" (no report)") : " (got \"" + first + "\")"));
  }

  // The free-pointer oracle, after a clean kmem_cache_free of `name`.
  static void check_freepointer_hardened(fuzz::Ctx& c, const std::string& name) {
    Kernel& k = c.m->kernel();
    const fuzz::Live& l = c.res.at(name);
    if (k.kasan || !l.addr) return;
    struct page* slab = virt_to_slab(k, reinterpret_cast<void*>(l.addr));
    if (!slab) return; // a KFENCE object, or the slab went back to the buddy allocator
    const kmem_cache* s = slab->slab.slab_cache;
    const auto* word = reinterpret_cast<const uint8_t*>(l.addr) + s->offset;
    uintptr_t stored;
    {
      KasanMetadataAccess meta(word, sizeof stored); // a free object's metadata
      std::memcpy(&stored, word, sizeof stored);
    }
    uintptr_t base = reinterpret_cast<uintptr_t>(slab_address(k, slab));
    uintptr_t end = base + uintptr_t(slab->slab.objects) * s->size; // every slot of the slab
    if (stored == 0 || (stored >= base && stored < end))
      fuzz::fail(c, "the free pointer of freed " + name + " is stored in the clear (" +
                        (stored ? "an address in its slab" : std::string("0")) +
                        "): SLAB_FREELIST_HARDENED encodes it as next ^ s->random ^ "
                        "bswap64(&word)");
  }

  void after(fuzz::Ctx& c, const Op& op) override {
    if (fault == Fault::None) {
      const std::string_view n = fuzz::op_name(op);
      if (n == "kmem_cache_free" && !c.tainted) check_freepointer_hardened(c, op.args[1].str);
      if (n != "kmem_cache_alloc" && n != "kmem_cache_zalloc") return;
      const auto& obj = c.r->results.at(op.result);
      if (!obj.ptr) return;
      struct kmem_cache* want = c.r->results.at(op.args[0].str).cache;
      struct page* p = compound_head(virt_to_page(obj.ptr));
      if (!p || !(p->flags & PG_slab) || p->slab.slab_cache != want)
        fuzz::fail(c, op.result + " is not in a slab of " + op.args[0].str);
      return;
    }
    std::string n = fuzz::op_name(op), first;
    const bool injected_now = first_after;
    first_after = false;
    switch (fault) {
    case Fault::WrongCache:
      if (!saw(c, {"belongs to different cache"}, &first)) missed(c, "wrong-cache free", first);
      c.stop = true;
      return;
    case Fault::DoubleFree:
      if (!saw(c, {"already free", "not in a slab page", "belongs to different cache"}, &first))
        missed(c, "double free", first);
      c.stop = true;
      return;
    case Fault::Poison:
      if (injected_now) {                    // the write itself
        if (poison_intact(c)) c.stop = true; // it wrote the poison bytes: nothing to find
        return;
      }
      if (saw(c, {"Poison overwritten"}, &first)) {
        c.stop = true;
        return;
      }
      if ((n == "kmem_cache_alloc" || n == "kmem_cache_zalloc") &&
          c.r->results.at(op.result).ptr == reinterpret_cast<void*>(c.res.at(victim).addr)) {
        if (cache->flags & SLAB_CONSISTENCY_CHECKS)
          missed(c, "poison overwrite", first); // alloc_debug_processing checks the slot
        c.stop = true;                          // taken back unchecked
      }
      break;
    case Fault::Redzone: {
      bool frees = n == "kmem_cache_free" && op.args[1].str == victim;
      if (saw(c, {"Redzone overwritten"}, &first)) {
        c.stop = true;
        return;
      }
      if (frees) {
        if (cache->flags & SLAB_CONSISTENCY_CHECKS) missed(c, "red-zone overwrite", first);
        c.stop = true; // the free repainted the red zone
        return;
      }
      break;
    }
    case Fault::None: break;
    }
    // The slab may be gone: the evidence with it.
    if ((n == "kmem_cache_shrink" || n == "kmem_cache_destroy") &&
        c.r->results.at(op.args[0].str).cache == cache)
      c.stop = true;
  }

  void at_end(fuzz::Ctx& c) override {
    if ((fault != Fault::Redzone && fault != Fault::Poison) || c.stop) return;
    std::string first;
    if (saw(c, {"Redzone overwritten", "Poison overwritten"}, &first)) return;
    // What a write of 1 to /sys/kernel/slab/<cache>/validate runs: every object of every slab
    // (called directly: two caches may share a name, and the path names only one of them).
    validate_slab_cache(c.m->kernel(), cache);
    if (!saw(c, {fault == Fault::Redzone ? "Redzone overwritten" : "Poison overwritten"}, &first))
      missed(c, fault == Fault::Redzone ? "red-zone overwrite" : "poison overwrite", first);
  }
};

const fuzz::Target target{
    "slab",
    {"kmem_cache_create", "kmem_cache_alloc", "kmem_cache_zalloc", "kmem_cache_free",
     "kmem_cache_destroy", "kmem_cache_shrink", "write", "read", "fill", "corrupt", "cpu"},
    nullptr,
    16,
    fuzz::report_bit(ReportKind::AllocFail) | fuzz::report_bit(ReportKind::Warn),
    true,
    [] { return std::unique_ptr<fuzz::Oracle>(new SlabOracle); }};

} // namespace

KMM_FUZZ_TARGET(target)
