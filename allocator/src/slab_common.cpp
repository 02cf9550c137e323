// Slab caches as a whole (mm/slab_common.c): boot (kmem_cache_init), slub_debug= parsing,
// kmem_cache_create with alignment and merging, kmem_cache_destroy with the leak report,
// /proc/slabinfo, /sys/kernel/slab/<cache>/..., and the slab part of kmm::validate.
#include <algorithm>
#include <cerrno>

#include "buddy.h"
#include "bug.h"
#include "kernel.h"
#include "kmalloc.h"
#include "kmm/machine.h"
#include "page_census.h"
#include "pfn_list.h"
#include "rcu.h"
#include "slub.h"

namespace kmm {

SlabState::~SlabState() { rcu_free_state(rcu); }

// ---- slub_debug= --------------------------------------------------------------------------------

static slab_flags_t parse_debug_letters(const std::string& letters) {
  if (letters.empty()) // "slub_debug=,cache": the default set
    return SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER;
  slab_flags_t f = 0;
  for (char c : letters) {
    switch (c) {
    case 'f':
    case 'F': f |= SLAB_CONSISTENCY_CHECKS; break;
    case 'z':
    case 'Z': f |= SLAB_RED_ZONE; break;
    case 'p':
    case 'P': f |= SLAB_POISON; break;
    case 'u':
    case 'U': f |= SLAB_STORE_USER; break;
    case 't':
    case 'T': f |= SLAB_TRACE; break;
    case 'a':
    case 'A': f |= SLAB_FAILSLAB; break;
    case 'o':
    case 'O': break; // "skip debug if it raises the order": kmm keeps the debug
    case '-': f = 0; break;
    default:
      throw BootError(std::string("boot parameter 'slub_debug=") + letters + "': unknown flag '" +
                      c + "' (expected F Z P U T A O or -)");
    }
  }
  return f;
}

// "FZ,kmalloc-64,dentry;P" -> FZ for those caches, P for all others.
void parse_slub_debug(Kernel& k, const std::string& arg) {
  SlabState& st = *k.slab;
  size_t start = 0;
  while (start <= arg.size() && !arg.empty()) {
    size_t semi = arg.find(';', start);
    std::string block =
        arg.substr(start, semi == std::string::npos ? std::string::npos : semi - start);
    size_t comma = block.find(',');
    slab_flags_t f = parse_debug_letters(block.substr(0, comma));
    if (comma == std::string::npos) {
      st.debug_flags = f;
    } else {
      size_t pos = comma + 1;
      while (pos <= block.size()) {
        size_t next = block.find(',', pos);
        std::string name =
            block.substr(pos, next == std::string::npos ? std::string::npos : next - pos);
        if (!name.empty()) st.debug_caches.emplace_back(name, f);
        if (next == std::string::npos) break;
        pos = next + 1;
      }
    }
    if (semi == std::string::npos) break;
    start = semi + 1;
  }
}

static bool name_matches(const std::string& pattern, const std::string& name) {
  if (!pattern.empty() && pattern.back() == '*')
    return name.compare(0, pattern.size() - 1, pattern, 0, pattern.size() - 1) == 0;
  return pattern == name;
}

// kmem_cache_flags(): the slub_debug= flags for this cache, unless it opted out.
slab_flags_t kmem_cache_flags(Kernel& k, slab_flags_t flags, const char* name) {
  if (flags & SLAB_NO_USER_FLAGS) return flags;
  SlabState& st = *k.slab;
  for (auto& [pattern, f] : st.debug_caches)
    if (name_matches(pattern, name)) return flags | f;
  return flags | st.debug_flags;
}

// ---- creation -----------------------------------------------------------------------------------

// calculate_alignment(): with SLAB_HWCACHE_ALIGN the cache line (64), halved while the object
// fits twice: a 20-byte object gets 32, a 328-byte object 64.
static unsigned calculate_alignment(slab_flags_t flags, unsigned align, unsigned size) {
  if (flags & SLAB_HWCACHE_ALIGN) {
    unsigned ralign = 64;
    while (size <= ralign / 2) ralign /= 2;
    align = std::max(align, ralign);
  }
  align = std::max(align, 8u);
  return (align + 7) & ~7u;
}

static kmem_cache* find_mergeable_locked(Kernel& k, unsigned size, unsigned align,
                                         slab_flags_t flags, void (*ctor)(void*)) {
  SlabState& st = *k.slab;
  if (st.nomerge || ctor || (flags & SLAB_NEVER_MERGE)) return nullptr;
  size = (size + 7) & ~7u;
  align = calculate_alignment(flags, align, size);
  size = (size + align - 1) / align * align;
  for (auto it = st.slab_caches.rbegin(); it != st.slab_caches.rend(); ++it) { // oldest first
    kmem_cache* s = *it;
    if ((s->flags & SLAB_NEVER_MERGE) || s->ctor || s->refcount <= 0 || s->shutdown_failed)
      continue;
    if (size > s->size) continue;
    if ((flags & SLAB_MERGE_SAME) != (s->flags & SLAB_MERGE_SAME)) continue;
    if ((s->size & ~(align - 1)) != s->size) continue;
    if (s->size - size >= sizeof(void*)) continue;
    return s;
  }
  return nullptr;
}

static void init_cache_random_seq(Kernel& k, kmem_cache* s) {
  s->random_seq.resize(s->objects);
  for (unsigned i = 0; i < s->objects; i++) s->random_seq[i] = i;
  // Fisher-Yates, drawing objects - 1 consecutive values of the slab rng in one step (every boot
  // shuffles each kmalloc cache: a read-modify-write per object was most of kmem_cache_init).
  uint64_t r = s->objects > 1 ? k.slab->rng.fetch_add(s->objects - 1) : 0;
  for (unsigned i = s->objects; i > 1; i--) std::swap(s->random_seq[i - 1], s->random_seq[r++ % i]);
}

static void* creation_error(Kernel& k, const char* name, slab_flags_t flags, int err) {
  if (flags & SLAB_PANIC)
    report_panic(k, strprintf("kmem_cache_create: Failed to create slab '%s'. Error %d",
                              name ? name : "(null)", err));
  else
    report_warn(
        k, "mm/slab_common.c", "kmem_cache_create",
        strprintf("kmem_cache_create(%s) failed with error %d", name ? name : "(null)", err));
  return nullptr;
}

kmem_cache* create_cache(Kernel& k, const char* name, unsigned size, unsigned align,
                         slab_flags_t flags, void (*ctor)(void*), uintptr_t caller) {
  (void)caller;
  SlabState& st = *k.slab;
  // The kernel does not ask for a power-of-two align: calculate_alignment() rounds it up to a
  // multiple of 8 (3 -> 8, 12 -> 16). Only a result that is still no power of two (24) is refused:
  // the kernel's mask-based ALIGN() would make nonsense of it.
  const unsigned calculated_align = calculate_alignment(flags, align, size);
  if (!name || !*name || size < 1 || size > KMALLOC_MAX_SIZE ||
      (calculated_align & (calculated_align - 1)))
    return static_cast<kmem_cache*>(creation_error(k, name, flags, -EINVAL));
  std::lock_guard<std::mutex> guard(st.slab_mutex);
  flags = kmem_cache_flags(k, flags, name);
  if (kmem_cache* s = find_mergeable_locked(k, size, align, flags, ctor)) {
    s->refcount++;
    s->object_size = std::max(s->object_size, size);
    s->inuse = std::max(s->inuse, (size + 7) & ~7u);
    s->aliases.push_back(name);
    return s;
  }
  auto owned = std::make_unique<kmem_cache>();
  kmem_cache* s = owned.get();
  s->k = &k;
  s->name = name;
  s->object_size = size;
  s->flags = flags;
  s->ctor = ctor;
  s->align = calculate_alignment(flags, align, size);
  s->is_kmalloc = flags & SLAB_KMALLOC;
  // do_kmem_cache_create() starts from err = -EINVAL, and a calculate_sizes() failure keeps it.
  if (calculate_sizes(k, s) < 0)
    return static_cast<kmem_cache*>(creation_error(k, name, flags, -EINVAL));
  s->random = k.slab->rng.fetch_add(0x9e3779b97f4a7c15ull) * 0xbf58476d1ce4e5b9ull;
  init_cache_random_seq(k, s);
  // slab_want_init_on_alloc / _on_free: not for ctor or RCU caches, whose contents must stay.
  bool keep = s->ctor || (flags & (SLAB_TYPESAFE_BY_RCU | SLAB_POISON));
  s->init_on_alloc = k.params.init_on_alloc && !keep;
  s->init_on_free = k.params.init_on_free && !keep;
  s->fastpath = slab_wants_fastpath(k, s);
  st.slab_caches.insert(st.slab_caches.begin(), s);
  st.all.push_back(std::move(owned));
  return s;
}

static bool is_cache_locked(SlabState& st, const kmem_cache* s) {
  for (auto& c : st.all)
    if (c.get() == s) return true;
  return false;
}

void destroy_cache(Kernel& k, kmem_cache* s, uintptr_t caller) {
  if (!s) return;
  SlabState& st = *k.slab;
  {
    std::lock_guard<std::mutex> guard(st.slab_mutex);
    if (!is_cache_locked(st, s)) {
      report_warn(k, "mm/slab_common.c", "kmem_cache_destroy",
                  strprintf("kmem_cache_destroy(%p): not a slab cache", static_cast<void*>(s)));
      return;
    }
    if (s->dead) {
      report_warn(k, "mm/slab_common.c", "kmem_cache_destroy",
                  "kmem_cache_destroy " + s->name + ": cache already destroyed");
      return;
    }
  }
  // kvfree_rcu_barrier(): pending kfree_rcu() of this cache's objects must land first.
  rcu_barrier_all(k);
  bool rcu = false;
  {
    std::lock_guard<std::mutex> guard(st.slab_mutex);
    if (s->dead) return; // lost a race with another destroy
    if (!s->shutdown_failed && --s->refcount > 0) {
      if (!s->aliases.empty()) s->aliases.pop_back();
      return;
    }
    if (!__kmem_cache_shutdown(k, s, caller)) {
      s->shutdown_failed = true; // leaked, still listed in /proc/slabinfo
      report_warn(k, "mm/slab_common.c", "kmem_cache_destroy",
                  strprintf("kmem_cache_destroy %s: Slab cache still has objects when called from "
                            "0x%lx",
                            s->name.c_str(), (unsigned long)caller));
      return;
    }
    st.slab_caches.erase(std::find(st.slab_caches.begin(), st.slab_caches.end(), s));
    s->dead = true;
    rcu = s->flags & SLAB_TYPESAFE_BY_RCU;
  }
  if (rcu) rcu_barrier_all(k); // the slabs discarded above go back after a grace period
}

// ---- /proc/slabinfo and sysfs -------------------------------------------------------------------

struct SlabInfo {
  unsigned long active_objs = 0, num_objs = 0, num_slabs = 0;
};

static SlabInfo get_slabinfo(Kernel& k, kmem_cache* s) {
  SlabInfo info;
  kmem_cache_node& n = s->node;
  unsigned long free = 0;
  n.list_lock.lock();
  for (uint32_t pfn = n.partial.head; pfn != PFN_NIL; pfn = k.mem.pfn_to_page(pfn)->lru_next) {
    const struct page* slab = k.mem.pfn_to_page(pfn);
    free += slab->slab.objects - slab->slab.inuse;
  }
  info.num_slabs = n.nr_slabs.load();
  info.num_objs = n.total_objects.load();
  n.list_lock.unlock();
  info.active_objs = info.num_objs - free;
  return info;
}

static std::string slabinfo_show(Kernel& k) {
  SlabState& st = *k.slab;
  std::string out = "slabinfo - version: 2.1\n"
                    "# name            <active_objs> <num_objs> <objsize> <objperslab> "
                    "<pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata "
                    "<active_slabs> <num_slabs> <sharedavail>\n";
  std::lock_guard<std::mutex> guard(st.slab_mutex);
  for (kmem_cache* s : st.slab_caches) {
    SlabInfo i = get_slabinfo(k, s);
    out += strprintf("%-17s %6lu %6lu %6u %4u %4d : tunables %4u %4u %4u : slabdata %6lu %6lu "
                     "%6lu\n",
                     s->name.c_str(), i.active_objs, i.num_objs, s->size, s->objects, 1 << s->order,
                     0u, 0u, 0u, i.num_slabs, i.num_slabs, 0ul);
  }
  return out;
}

static kmem_cache* find_cache_by_name_locked(SlabState& st, const std::string& name) {
  for (kmem_cache* s : st.slab_caches) {
    if (s->name == name) return s;
    for (auto& a : s->aliases)
      if (a == name) return s;
  }
  return nullptr;
}

// /sys/kernel/slab/<cache>/<attribute>
static bool slab_sysfs_resolve(Kernel& k, const std::string& path, ProcFile* out) {
  static const std::string prefix = "/sys/kernel/slab/";
  if (path.compare(0, prefix.size(), prefix) != 0) return false;
  std::string rest = path.substr(prefix.size());
  size_t slash = rest.rfind('/');
  if (slash == std::string::npos) return false;
  std::string name = rest.substr(0, slash), attr = rest.substr(slash + 1);
  kmem_cache* s;
  {
    std::lock_guard<std::mutex> guard(k.slab->slab_mutex);
    s = find_cache_by_name_locked(*k.slab, name);
  }
  if (!s) return false;
  auto num = [s](auto get) {
    return ProcFile{[s, get](Kernel&) { return std::to_string(get(s)) + "\n"; }, {}};
  };
  auto flag = [s](slab_flags_t f) {
    return ProcFile{[s, f](Kernel&) { return std::string((s->flags & f) ? "1\n" : "0\n"); }, {}};
  };
  if (attr == "object_size") *out = num([](kmem_cache* c) { return c->object_size; });
  else if (attr == "slab_size") *out = num([](kmem_cache* c) { return c->size; });
  else if (attr == "objs_per_slab") *out = num([](kmem_cache* c) { return c->objects; });
  else if (attr == "order") *out = num([](kmem_cache* c) { return c->order; });
  else if (attr == "align") *out = num([](kmem_cache* c) { return c->align; });
  else if (attr == "min_partial") *out = num([](kmem_cache* c) { return c->min_partial; });
  else if (attr == "aliases") *out = num([](kmem_cache* c) { return c->aliases.size(); });
  else if (attr == "slabs") *out = num([](kmem_cache* c) { return c->node.nr_slabs.load(); });
  else if (attr == "total_objects")
    *out = num([](kmem_cache* c) { return c->node.total_objects.load(); });
  else if (attr == "partial") *out = num([](kmem_cache* c) { return c->node.nr_partial; });
  else if (attr == "objects")
    *out = ProcFile{
        [s](Kernel& kk) { return std::to_string(get_slabinfo(kk, s).active_objs) + "\n"; }, {}};
  else if (attr == "red_zone") *out = flag(SLAB_RED_ZONE);
  else if (attr == "poison") *out = flag(SLAB_POISON);
  else if (attr == "store_user") *out = flag(SLAB_STORE_USER);
  else if (attr == "sanity_checks") *out = flag(SLAB_CONSISTENCY_CHECKS);
  else if (attr == "trace") *out = flag(SLAB_TRACE);
  else if (attr == "hwcache_align") *out = flag(SLAB_HWCACHE_ALIGN);
  else if (attr == "reclaim_account") *out = flag(SLAB_RECLAIM_ACCOUNT);
  else if (attr == "cache_dma") *out = flag(SLAB_CACHE_DMA);
  else if (attr == "destroy_by_rcu") *out = flag(SLAB_TYPESAFE_BY_RCU);
  else if (attr == "ctor")
    *out = ProcFile{[s](Kernel&) { return std::string(s->ctor ? "ctor\n" : ""); }, {}};
  else if (attr == "validate")
    // validate_store(): only "1", only for debug caches, as the kernel.
    *out = ProcFile{[](Kernel&) { return std::string(); },
                    [s](Kernel& kk, const std::string& text) {
                      if (text.empty() || text[0] != '1' || !kmem_cache_debug(s)) return -EINVAL;
                      validate_slab_cache(kk, s);
                      return 0;
                    }};
  else if (attr == "shrink")
    *out = ProcFile{[](Kernel&) { return std::string(); },
                    [s](Kernel& kk, const std::string& text) {
                      if (text.empty() || text[0] != '1') return -EINVAL;
                      __kmem_cache_shrink(kk, s);
                      return 0;
                    }};
  else return false;
  return true;
}

void register_slab_procfs(Kernel& k) {
  k.procfs.add("/proc/slabinfo", {slabinfo_show, {}});
  k.procfs.add_resolver(slab_sysfs_resolve);
}

// ---- boot
// -----------------------------------------------------------------------------------------

void kmem_cache_init(Kernel& k) {
  k.slab.reset(new SlabState());
  SlabState& st = *k.slab;
  st.rng = k.random();
  st.min_objects = unsigned(k.params.slub_min_objects);
  st.min_order = unsigned(std::min<uint64_t>(k.params.slub_min_order, MAX_PAGE_ORDER_));
  st.max_order = unsigned(std::min<uint64_t>(k.params.slub_max_order, MAX_PAGE_ORDER_));
  st.max_order = std::max(st.max_order, st.min_order);
  st.nomerge = k.params.slab_nomerge;
  rcu_init(k);
  parse_slub_debug(k, k.params.slub_debug);
  create_kmalloc_caches(k);
  register_slab_procfs(k);
}

bool slab_wants_fastpath(const Kernel& k, const kmem_cache* s) {
  return !kmem_cache_debug(s) && !s->init_on_alloc && !s->init_on_free && !k.kasan && !k.kfence;
}

void kmem_cache_init_late(Kernel& k) {
  std::lock_guard<std::mutex> guard(k.slab->slab_mutex);
  for (kmem_cache* s : k.slab->slab_caches) s->fastpath = slab_wants_fastpath(k, s);
}

// ---- kmm::validate
// --------------------------------------------------------------------------------

void slab_validate(Kernel& k, std::vector<std::string>& errors, const PageCensus& census) {
  if (!k.slab) return;
  SlabState& st = *k.slab;
  std::lock_guard<std::mutex> guard(st.slab_mutex);
  // Their storage is kept from call to call: a fuzz input validates every few operations.
  thread_local std::vector<const kmem_cache*> live;
  live.assign(st.slab_caches.begin(), st.slab_caches.end());
  std::sort(live.begin(), live.end());
  thread_local std::vector<uint64_t> reached; // by pfn: reached from a cache
  reached.assign((k.mem.nr_pages + 63) / 64, 0);
  auto reach = [&](uint32_t pfn) { // false if reached before
    uint64_t& w = reached[pfn >> 6];
    const uint64_t bit = uint64_t(1) << (pfn & 63);
    const bool first = !(w & bit);
    w |= bit;
    return first;
  };
  for (kmem_cache* s : st.slab_caches) {
    if (s->fastpath != slab_wants_fastpath(k, s))
      errors.push_back(strprintf(
          "slub: %s: fastpath is %d, but debug flags 0x%x, init_on_alloc %d, "
          "init_on_free %d, kasan %d, kfence %d ask for %d",
          s->name.c_str(), s->fastpath, unsigned(s->flags & SLAB_DEBUG_FLAGS), s->init_on_alloc,
          s->init_on_free, k.kasan != nullptr, k.kfence != nullptr, !s->fastpath));
    kmem_cache_node& n = s->node;
    n.list_lock.lock();
    unsigned long count = 0, partial = 0;
    auto visit = [&](uint32_t pfn, const char* list) {
      if (pfn >= k.mem.nr_pages) {
        errors.push_back(strprintf("slub: %s: pfn 0x%x on the %s list is outside memory",
                                   s->name.c_str(), pfn, list));
        return false;
      }
      struct page* slab = k.mem.pfn_to_page(pfn);
      count++;
      if (!reach(pfn))
        errors.push_back(
            strprintf("slub: %s: slab pfn 0x%x is on two lists", s->name.c_str(), pfn));
      if (!(slab->flags & PG_slab) || slab->slab.slab_cache != s) {
        errors.push_back(strprintf("slub: %s: pfn 0x%x on the %s list is not a slab of this cache",
                                   s->name.c_str(), pfn, list));
        return false;
      }
      slab_check_quiet(k, s, slab, errors);
      return true;
    };
    for (uint32_t pfn = n.partial.head; pfn != PFN_NIL && count <= k.mem.nr_pages;
         pfn = k.mem.pfn_to_page(pfn)->lru_next) {
      partial++;
      if (!visit(pfn, "partial")) break;
      struct page* slab = k.mem.pfn_to_page(pfn);
      if (slab->slab.frozen)
        errors.push_back(
            strprintf("slub: %s: partial slab pfn 0x%x is frozen", s->name.c_str(), pfn));
      if (!slab->slab.freelist)
        errors.push_back(
            strprintf("slub: %s: partial slab pfn 0x%x has no free object", s->name.c_str(), pfn));
    }
    if (partial != n.nr_partial)
      errors.push_back(strprintf("slub: %s: %lu partial slabs but nr_partial=%lu", s->name.c_str(),
                                 partial, n.nr_partial));
    for (uint32_t pfn = n.full.head; pfn != PFN_NIL && count <= k.mem.nr_pages;
         pfn = k.mem.pfn_to_page(pfn)->lru_next) {
      if (!visit(pfn, "full")) break;
      struct page* slab = k.mem.pfn_to_page(pfn);
      bool disabled = slab->slab.frozen && slab->slab.slab_cpu == 0xffff;
      if (slab->slab.freelist && !disabled)
        errors.push_back(
            strprintf("slub: %s: full slab pfn 0x%x has free objects", s->name.c_str(), pfn));
    }
    for (unsigned cpu = 0; cpu < k.nr_cpu_slots(); cpu++) {
      kmem_cache_cpu& c = s->cpu_slab[cpu];
      if (!c.slab) {
        if (c.freelist)
          errors.push_back(
              strprintf("slub: %s: cpu %u has a freelist but no slab", s->name.c_str(), cpu));
        continue;
      }
      uint32_t pfn = uint32_t(k.mem.page_to_pfn(c.slab));
      if (!visit(pfn, "cpu")) continue;
      if (!c.slab->slab.frozen || c.slab->slab.slab_cpu != cpu)
        errors.push_back(strprintf("slub: %s: cpu %u slab pfn 0x%x is not frozen to it",
                                   s->name.c_str(), cpu, pfn));
      unsigned steps = 0;
      for (void* p = c.freelist; p; p = get_freepointer(s, p)) {
        if (!check_valid_pointer(k, s, c.slab, p)) {
          errors.push_back(
              strprintf("slub: %s: cpu %u freelist leaves its slab", s->name.c_str(), cpu));
          break;
        }
        if (++steps > c.slab->slab.objects) {
          errors.push_back(strprintf("slub: %s: cpu %u freelist is cyclic", s->name.c_str(), cpu));
          break;
        }
      }
    }
    if (count != n.nr_slabs.load())
      errors.push_back(strprintf("slub: %s: %lu slabs on lists and cpus but nr_slabs=%lu",
                                 s->name.c_str(), count, n.nr_slabs.load()));
    n.list_lock.unlock();
  }
  // Every PG_slab page belongs to a live cache and was reached from it (or waits for RCU). The
  // census has the PG_slab pages of mem_map but for tails of blocks: a slab inside a block is
  // validate()'s flagged tail.
  for (const unsigned long pfn : census.slabs) {
    const struct page& p = k.mem.mem_map[pfn];
    if (!std::binary_search(live.begin(), live.end(), p.slab.slab_cache))
      errors.push_back(strprintf("slub: pfn 0x%lx is a slab of no live cache", pfn));
    else if (!(reached[pfn >> 6] & (uint64_t(1) << (pfn & 63))) && p.slab.slab_cpu != 0xfffe)
      errors.push_back(strprintf("slub: pfn 0x%lx (cache %s) is on no list and no cpu", pfn,
                                 p.slab.slab_cache->name.c_str()));
  }
}

} // namespace kmm

void kmm::SlabStateDeleter::operator()(SlabState* s) const { delete s; }
