// slub_debug (mm/slub.c, CONFIG_SLUB_DEBUG): red zones, poisoning, alloc/free tracking, the
// consistency checks on alloc and free, and validate_slab_cache behind
// /sys/kernel/slab/<cache>/validate. Every check that finds damage reports it (slub_report.cpp)
// and repairs it the kernel's way (restore the pattern, clear or cut the freelist, fix counters).
//
// All of this runs under the cache's node list_lock (debug caches have no cpu slabs).
// A quiet variant of the same checks (no reports, no repairs) serves kmm::validate.
#include <cstring>

#include "bug.h"
#include "kasan_asan.h"
#include "kernel.h"
#include "slub.h"

namespace kmm {

// How a check behaves: report and repair (slub_debug), or only describe (kmm::validate).
struct DebugCtx {
  Kernel& k;
  std::vector<std::string>* quiet = nullptr; // non-null: record here, report and repair nothing
};

// ---- object layout helpers ----------------------------------------------------------------------

static track* get_track(const kmem_cache* s, void* obj, track_item t) {
  return reinterpret_cast<track*>(static_cast<char*>(obj) + get_info_end(s)) + t;
}

static unsigned orig_size_offset(const kmem_cache* s) {
  return get_info_end(s) + 2 * sizeof(track);
}

void set_orig_size(const kmem_cache* s, void* obj, unsigned orig) {
  if (!slub_debug_orig_size(s)) return;
  unsigned long v = orig;
  KasanMetadataAccess scope(static_cast<char*>(obj) + orig_size_offset(s), sizeof v);
  std::memcpy(static_cast<char*>(obj) + orig_size_offset(s), &v, sizeof v);
}

unsigned get_orig_size(const kmem_cache* s, void* obj) {
  if (!slub_debug_orig_size(s)) return s->object_size;
  unsigned long v;
  KasanMetadataAccess scope(static_cast<char*>(obj) + orig_size_offset(s), sizeof v);
  std::memcpy(&v, static_cast<char*>(obj) + orig_size_offset(s), sizeof v);
  return unsigned(v);
}

void init_tracking(const kmem_cache* s, void* obj) {
  if (!(s->flags & SLAB_STORE_USER)) return;
  KasanMetadataAccess scope(get_track(s, obj, TRACK_ALLOC), 2 * sizeof(track));
  std::memset(get_track(s, obj, TRACK_ALLOC), 0, 2 * sizeof(track));
}

void set_track(Kernel& k, const kmem_cache* s, void* obj, track_item t, uintptr_t addr) {
  track* p = get_track(s, obj, t);
  KasanMetadataAccess scope(p, sizeof *p);
  p->addr = addr;
  p->handle = 0;
  p->cpu = int32_t(k.cpu_id());
  p->pid = k.cpu().current.pid;
  p->when = k.slab->jiffies.fetch_add(1, std::memory_order_relaxed) + 1;
}

// init_object(): red zones to `val`, body poisoned (0x6b..., 0xa5) when __OBJECT_POISON. For an
// allocated kmalloc object with a tracked size the bytes after it get 0xcc: the kmalloc red zone.
void init_object(const kmem_cache* s, void* obj, uint8_t val) {
  uint8_t* p = static_cast<uint8_t*>(obj);
  KasanMetadataAccess scope(p - s->red_left_pad, s->red_left_pad + s->inuse);
  unsigned poison_size = s->object_size;
  if (s->flags & SLAB_RED_ZONE) {
    std::memset(p - s->red_left_pad, val, s->red_left_pad);
    if (slub_debug_orig_size(s) && val == SLUB_RED_ACTIVE) poison_size = get_orig_size(s, obj);
  }
  if (s->flags & __OBJECT_POISON) {
    std::memset(p, POISON_FREE, poison_size - 1);
    p[poison_size - 1] = POISON_END;
  }
  if (s->flags & SLAB_RED_ZONE) std::memset(p + poison_size, val, s->inuse - poison_size);
}

// setup_slab_debug(): a fresh poisoned slab is all POISON_INUSE (padding keeps it).
void setup_slab_debug(Kernel& k, kmem_cache* s, struct page* slab) {
  if (!(s->flags & SLAB_POISON)) return;
  unsigned order = (slab->flags & PG_head) ? slab->compound_order : 0;
  KasanMetadataAccess scope(slab_address(k, slab), PAGE_SIZE_ << order);
  std::memset(slab_address(k, slab), POISON_INUSE, PAGE_SIZE_ << order);
}

void trace(Kernel& k, const kmem_cache* s, struct page* slab, void* obj, bool alloc) {
  if (!(s->flags & SLAB_TRACE)) return;
  k.log.printk(
      strprintf("TRACE %s %s 0x%llx inuse=%d fp=0x%llx", s->name.c_str(), alloc ? "alloc" : "free",
                (unsigned long long)k.mem.kva(obj), slab->slab.inuse,
                slab->slab.freelist ? (unsigned long long)k.mem.kva(slab->slab.freelist) : 0ull));
}

// ---- checks
// ---------------------------------------------------------------------------------------

static std::string where(Kernel& k, const kmem_cache* s, const void* obj) {
  return strprintf("slub: %s: object 0x%llx", s->name.c_str(), (unsigned long long)k.mem.kva(obj));
}

// check_bytes_and_report(): [start, start+bytes) must all be `value`.
static bool check_bytes_and_report(DebugCtx& d, kmem_cache* s, struct page* slab, void* obj,
                                   const char* what, uint8_t* start, uint8_t value, size_t bytes) {
  uint8_t* fault = nullptr;
  KasanMetadataAccess scope(start, bytes); // red zones and free objects are KASAN-poisoned
  for (size_t i = 0; i < bytes; i++)
    if (start[i] != value) {
      fault = start + i;
      break;
    }
  if (!fault) return true;
  uint8_t* end = start + bytes;
  while (end > fault && end[-1] == value) end--;
  if (d.quiet) {
    d.quiet->push_back(where(d.k, s, obj) +
                       strprintf(": %s overwritten at offset %td (0x%x instead of 0x%x)", what,
                                 fault - static_cast<uint8_t*>(obj), fault[0], value));
    return false;
  }
  report_slab_bytes_overwritten(d.k, s, slab, obj, what, fault, end, value);
  std::memset(fault, value, size_t(end - fault)); // restore_bytes()
  return false;
}

// check_pad_bytes(): after the metadata up to the end of the slot, POISON_INUSE.
static bool check_pad_bytes(DebugCtx& d, kmem_cache* s, struct page* slab, uint8_t* p) {
  unsigned off = get_info_end(s);
  if (s->flags & SLAB_STORE_USER) off += 2 * sizeof(track);
  if (slub_debug_orig_size(s)) off += sizeof(unsigned long);
  unsigned size_from_object = s->size - s->red_left_pad;
  if (size_from_object == off) return true;
  return check_bytes_and_report(d, s, slab, p, "Object padding", p + off, POISON_INUSE,
                                size_from_object - off);
}

// slab_pad_check(): the bytes after the last slot, POISON_INUSE in a poisoned cache.
static void slab_pad_check(DebugCtx& d, kmem_cache* s, struct page* slab) {
  if (!(s->flags & SLAB_POISON)) return;
  unsigned order = (slab->flags & PG_head) ? slab->compound_order : 0;
  uint8_t* start = static_cast<uint8_t*>(slab_address(d.k, slab));
  size_t length = PAGE_SIZE_ << order;
  size_t remainder = length % s->size;
  if (!remainder) return;
  uint8_t* pad = start + length - remainder;
  KasanMetadataAccess scope(pad, remainder);
  uint8_t* fault = nullptr;
  for (size_t i = 0; i < remainder; i++)
    if (pad[i] != POISON_INUSE) {
      fault = pad + i;
      break;
    }
  if (!fault) return;
  uint8_t* end = start + length;
  while (end > fault && end[-1] == POISON_INUSE) end--;
  if (d.quiet) {
    d.quiet->push_back(strprintf("slub: %s: slab padding overwritten at offset %td",
                                 s->name.c_str(), fault - start));
    return;
  }
  report_slab_padding(d.k, s, slab, fault, end);
  std::memset(fault, POISON_INUSE, size_t(end - fault));
}

// check_object(): one object against the patterns for its state (val = 0xcc allocated, 0xbb free).
static bool check_object(DebugCtx& d, kmem_cache* s, struct page* slab, void* obj, uint8_t val) {
  uint8_t* p = static_cast<uint8_t*>(obj);
  uint8_t* endobject = p + s->object_size;
  bool ret = true;
  if (s->flags & SLAB_RED_ZONE) {
    if (!check_bytes_and_report(d, s, slab, obj, "Left Redzone", p - s->red_left_pad, val,
                                s->red_left_pad))
      ret = false;
    if (!check_bytes_and_report(d, s, slab, obj, "Right Redzone", endobject, val,
                                s->inuse - s->object_size))
      ret = false;
    if (slub_debug_orig_size(s) && val == SLUB_RED_ACTIVE) {
      unsigned orig = get_orig_size(s, obj);
      if (s->object_size > orig && !check_bytes_and_report(d, s, slab, obj, "kmalloc Redzone",
                                                           p + orig, val, s->object_size - orig))
        ret = false;
    }
  } else if ((s->flags & SLAB_POISON) && s->object_size < s->inuse) {
    if (!check_bytes_and_report(d, s, slab, obj, "Alignment padding", endobject, POISON_INUSE,
                                s->inuse - s->object_size))
      ret = false;
  }
  if (s->flags & SLAB_POISON) {
    if (val != SLUB_RED_ACTIVE && (s->flags & __OBJECT_POISON)) {
      if (!check_bytes_and_report(d, s, slab, obj, "Poison", p, POISON_FREE, s->object_size - 1))
        ret = false;
      if (!check_bytes_and_report(d, s, slab, obj, "End Poison", p + s->object_size - 1, POISON_END,
                                  1))
        ret = false;
    }
    if (!check_pad_bytes(d, s, slab, p)) ret = false;
  }
  // A free pointer inside an allocated object is user data: nothing to check.
  if (!freeptr_outside_object(s) && val == SLUB_RED_ACTIVE) return ret;
  if (!check_valid_pointer(d.k, s, slab, get_freepointer(s, obj))) {
    if (d.quiet) {
      d.quiet->push_back(where(d.k, s, obj) + ": free pointer corrupt");
      return false;
    }
    report_slab_object_err(d.k, s, slab, obj, "Freepointer corrupt");
    set_freepointer(s, obj, nullptr); // cut the chain here: the rest is lost, not followed
    ret = false;
  }
  return ret;
}

static bool check_slab(DebugCtx& d, kmem_cache* s, struct page* slab) {
  unsigned order = (slab->flags & PG_head) ? slab->compound_order : 0;
  unsigned maxobj =
      std::min<unsigned>(unsigned((PAGE_SIZE_ << order) / s->size), MAX_OBJS_PER_PAGE);
  std::string err;
  if (!(slab->flags & PG_slab)) err = "Not a valid slab page";
  else if (slab->slab.objects > maxobj)
    err = strprintf("objects %u > max %u", slab->slab.objects, maxobj);
  else if (slab->slab.inuse > slab->slab.objects)
    err = strprintf("inuse %u > max %u", slab->slab.inuse, slab->slab.objects);
  if (!err.empty()) {
    if (d.quiet) d.quiet->push_back("slub: " + s->name + ": " + err);
    else report_slab_err(d.k, s, slab, err);
    return false;
  }
  slab_pad_check(d, s, slab);
  return true;
}

// on_freelist(): walks slab->freelist; true if `search` is on it (or search is null and the walk
// finished). Repairs a broken chain, the object count and the inuse counter, as the kernel does.
// `is_free`, if given, receives the free objects' indexes.
static bool on_freelist(DebugCtx& d, kmem_cache* s, struct page* slab, void* search,
                        std::vector<bool>* is_free = nullptr) {
  unsigned nr = 0;
  void* fp = slab->slab.freelist;
  void* object = nullptr;
  while (fp && nr <= slab->slab.objects) {
    if (fp == search) return true;
    if (!check_valid_pointer(d.k, s, slab, fp)) {
      if (object) {
        if (d.quiet) {
          d.quiet->push_back(where(d.k, s, object) + ": freechain corrupt");
        } else {
          report_slab_object_err(d.k, s, slab, object, "Freechain corrupt");
          set_freepointer(s, object, nullptr);
        }
      } else {
        if (d.quiet) {
          d.quiet->push_back("slub: " + s->name + ": slab freelist head corrupt");
          return false;
        }
        report_slab_err(d.k, s, slab, "Freepointer corrupt", "Freelist cleared");
        slab->slab.freelist = nullptr;
        slab->slab.inuse = slab->slab.objects;
        return false;
      }
      break;
    }
    if (is_free) {
      unsigned idx = obj_to_index(s, slab, d.k, fp);
      if ((*is_free)[idx]) { // a cycle: the chain came back to an object already seen
        if (d.quiet) {
          d.quiet->push_back("slub: " + s->name + ": freelist cycle");
          return false;
        }
        report_slab_err(d.k, s, slab, "Freelist cycle detected", "Freelist cleared");
        slab->slab.freelist = nullptr;
        slab->slab.inuse = slab->slab.objects;
        return false;
      }
      (*is_free)[idx] = true;
    }
    object = fp;
    fp = get_freepointer(s, object);
    nr++;
  }
  unsigned order = (slab->flags & PG_head) ? slab->compound_order : 0;
  unsigned max_objects =
      std::min<unsigned>(unsigned((PAGE_SIZE_ << order) / s->size), MAX_OBJS_PER_PAGE);
  if (slab->slab.objects != max_objects) {
    std::string msg = strprintf("Wrong number of objects. Found %d but should be %d",
                                slab->slab.objects, max_objects);
    if (d.quiet) {
      d.quiet->push_back("slub: " + s->name + ": " + msg);
    } else {
      report_slab_err(d.k, s, slab, msg, "Number of objects adjusted");
      slab->slab.objects = uint16_t(max_objects);
    }
  }
  if (slab->slab.inuse != slab->slab.objects - nr) {
    std::string msg = strprintf("Wrong object count. Counter is %d but counted were %d",
                                slab->slab.inuse, slab->slab.objects - nr);
    if (d.quiet) {
      d.quiet->push_back("slub: " + s->name + ": " + msg);
    } else {
      report_slab_err(d.k, s, slab, msg, "Object count adjusted");
      slab->slab.inuse = uint16_t(slab->slab.objects - nr);
    }
  }
  return search == nullptr;
}

// ---- alloc and free
// -------------------------------------------------------------------------------

bool alloc_debug_processing(Kernel& k, kmem_cache* s, struct page* slab, void* obj,
                            unsigned orig_size, uintptr_t caller) {
  DebugCtx d{k};
  if (s->flags & SLAB_CONSISTENCY_CHECKS) {
    bool ok = check_slab(d, s, slab);
    if (ok && !check_valid_pointer(k, s, slab, obj)) {
      report_slab_object_err(k, s, slab, obj, "Freelist Pointer check fails");
      ok = false;
    }
    if (ok && !check_object(d, s, slab, obj, SLUB_RED_INACTIVE)) ok = false;
    if (!ok) {
      report_slab_fix_only(k, s, "Marking all objects used");
      return false;
    }
  }
  if (s->flags & SLAB_STORE_USER) set_track(k, s, obj, TRACK_ALLOC, caller);
  trace(k, s, slab, obj, true);
  set_orig_size(s, obj, orig_size ? orig_size : s->object_size);
  init_object(s, obj, SLUB_RED_ACTIVE);
  return true;
}

static bool free_consistency_checks(DebugCtx& d, kmem_cache* s, struct page* slab, void* obj) {
  Kernel& k = d.k;
  if (!check_valid_pointer(k, s, slab, obj)) {
    report_slab_err(k, s, slab,
                    strprintf("Invalid object pointer 0x%llx", (unsigned long long)k.mem.kva(obj)));
    return false;
  }
  if (on_freelist(d, s, slab, obj)) {
    report_slab_object_err(k, s, slab, obj, "Object already free");
    return false;
  }
  if (!check_object(d, s, slab, obj, SLUB_RED_ACTIVE)) return false;
  if (slab->slab.slab_cache != s) {
    report_slab_object_err(k, s, slab, obj, "page slab pointer corrupt.");
    return false;
  }
  return true;
}

bool free_debug_processing(Kernel& k, kmem_cache* s, struct page* slab, void* obj,
                           uintptr_t caller) {
  DebugCtx d{k};
  if (s->flags & SLAB_CONSISTENCY_CHECKS) {
    if (!free_consistency_checks(d, s, slab, obj)) {
      report_slab_fix_only(
          k, s, strprintf("Object at 0x%llx not freed", (unsigned long long)k.mem.kva(obj)));
      return false;
    }
  }
  if (s->flags & SLAB_STORE_USER) set_track(k, s, obj, TRACK_FREE, caller);
  trace(k, s, slab, obj, false);
  init_object(s, obj, SLUB_RED_INACTIVE);
  return true;
}

// ---- validation ---------------------------------------------------------------------------------

// validate_slab(): slab header, freelist, then every object against its state's patterns
// (stopping at the first bad object, as the kernel does).
static void validate_slab(DebugCtx& d, kmem_cache* s, struct page* slab) {
  if (!check_slab(d, s, slab)) return;
  std::vector<bool> is_free(slab->slab.objects);
  if (!on_freelist(d, s, slab, nullptr, &is_free)) return;
  if (!kmem_cache_debug(s)) return; // no patterns to check without debugging
  char* base = static_cast<char*>(slab_address(d.k, slab));
  for (unsigned i = 0; i < slab->slab.objects; i++) {
    void* obj = fixup_red_left(s, base + size_t(i) * s->size);
    if (!check_object(d, s, slab, obj, is_free[i] ? SLUB_RED_INACTIVE : SLUB_RED_ACTIVE)) break;
  }
}

long validate_slab_cache(Kernel& k, kmem_cache* s) {
  long before = k.slab->slab_errors.load();
  flush_all(k, s);
  DebugCtx d{k};
  kmem_cache_node& n = s->node;
  n.list_lock.lock();
  unsigned long count = 0, partial = 0;
  for (uint32_t pfn = n.partial.head; pfn != PFN_NIL; pfn = k.mem.pfn_to_page(pfn)->lru_next) {
    validate_slab(d, s, k.mem.pfn_to_page(pfn));
    count++;
    partial++;
  }
  if (partial != n.nr_partial) {
    k.slab->slab_errors.fetch_add(1);
    k.log.printk(strprintf("SLUB %s: %lu partial slabs counted but counter=%lu", s->name.c_str(),
                           partial, n.nr_partial));
  }
  for (uint32_t pfn = n.full.head; pfn != PFN_NIL; pfn = k.mem.pfn_to_page(pfn)->lru_next) {
    validate_slab(d, s, k.mem.pfn_to_page(pfn));
    count++;
  }
  if (count != n.nr_slabs.load()) {
    k.slab->slab_errors.fetch_add(1);
    k.log.printk(strprintf("SLUB: %s %lu slabs counted but counter=%lu", s->name.c_str(), count,
                           n.nr_slabs.load()));
  }
  n.list_lock.unlock();
  return k.slab->slab_errors.load() - before;
}

void slab_check_quiet(Kernel& k, kmem_cache* s, struct page* slab,
                      std::vector<std::string>& errors) {
  DebugCtx d{k, &errors};
  if (!check_slab(d, s, slab)) return;
  std::vector<bool> is_free(slab->slab.objects);
  if (!on_freelist(d, s, slab, nullptr, &is_free)) return;
  if (!kmem_cache_debug(s) || slab->slab.frozen) return;
  char* base = static_cast<char*>(slab_address(k, slab));
  for (unsigned i = 0; i < slab->slab.objects; i++) {
    void* obj = fixup_red_left(s, base + size_t(i) * s->size);
    check_object(d, s, slab, obj, is_free[i] ? SLUB_RED_INACTIVE : SLUB_RED_ACTIVE);
  }
}

} // namespace kmm
