// CMA: rc::state commands task_spawn / task_touch / cma_alloc / cma_release against a model of
// the CMA area's bitmap and the tasks' anonymous pages.
//
//   CmaProp.MatchesRangeModel  a cma_alloc range lies inside the area, is aligned to 2^align
//                              pages, never overlaps a live range, and is owned by CMA; every
//                              anonymous page keeps its contents (a signature of pid and index
//                              written before) when cma_alloc migrates it out; the anon page
//                              count does not change; cma_release gives the range back; validate.
//                              The model pins anonymous pages of the area (get_page) and puts
//                              unmovable pages in it (a kernel page allocated __GFP_MOVABLE, as a
//                              broken driver does), and predicts cma_alloc exactly: the aligned
//                              candidates of the bitmap in order, one holding an unmovable page
//                              refused before any migration, one holding a pinned page migrated
//                              (5 rounds of pgmigrate_fail per pinned page) and given up, the first
//                              with neither handed out. Pinned pages never move; an anonymous page
//                              outside the migrated candidates never moves.
//
// cma and tasks have no scenario operations yet: show() prints the lines the language will use.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cstring>

#include "kmm/pressure.h"
#include "model_machine.h"

#include "cma.h"

namespace kmm::prop {
namespace {

struct CmaGen {
  std::map<std::string, unsigned long> ranges; // name -> count
  std::vector<std::string> tasks;
  unsigned next = 0;
  unsigned pins = 0, stuck = 0; // pinned pages, unmovable pages asked for (each may find none)
};

struct Range {
  struct page* page = nullptr;
  unsigned long pfn = 0, count = 0;
};

struct CmaSut : Sut {
  std::map<std::string, Range> ranges;
  std::map<std::string, int> pids;
  std::vector<unsigned long> pinned; // anonymous pages of the area we hold a reference on
  std::vector<struct page*> stuck;   // unmovable pages inside the area
  explicit CmaSut(const std::string& boot) : Sut(boot) {}
  struct cma* area() {
    return k().cma->default_area;
  }
  bool in_area(unsigned long pfn) {
    return pfn >= area()->base_pfn && pfn < area()->base_pfn + area()->count;
  }
  long vmstat(const std::string& key) {
    std::istringstream in(m->proc_read("/proc/vmstat"));
    std::string name;
    long v = 0;
    while (in >> name >> v)
      if (name == key) return v;
    return -1;
  }
};

using Cmd = rc::state::Command<CmaGen, CmaSut>;

uint64_t signature(uint32_t pid, uint64_t index) { return (uint64_t(pid) << 40) ^ index ^ 0x5eed; }

// Every Anon page: (re)write its signature. Returns the number of anon pages.
long stamp_anon(CmaSut& s, bool check) {
  Kernel& k = s.k();
  long n = 0;
  for (auto& z : k.zones) {
    if (!z.managed_pages) continue;
    for (unsigned long pfn = z.zone_start_pfn; pfn < z.end_pfn(); pfn++) {
      struct page* p = pfn_to_page(pfn);
      if (!p || !(p->flags & PG_alloc) || p->owner != PageOwner::Anon) continue;
      n++;
      uint64_t sig = signature(p->owner_data, p->mapped.index);
      auto* a = static_cast<uint8_t*>(page_address(p));
      if (check) {
        uint64_t x, y;
        std::memcpy(&x, a, 8);
        std::memcpy(&y, a + PAGE_SIZE - 8, 8);
        if (x != sig || y != sig)
          RC_LOG() << "anon page pid " << p->owner_data << " index " << p->mapped.index
                   << " at pfn " << hex(pfn) << " lost its contents\n";
        RC_ASSERT(x == sig);
        RC_ASSERT(y == sig);
      } else {
        std::memcpy(a, &sig, 8);
        std::memcpy(a + PAGE_SIZE - 8, &sig, 8);
      }
    }
  }
  return n;
}

struct Spawn : Cmd {
  std::string name;
  explicit Spawn(const CmaGen& g) : name("t" + std::to_string(g.next)) {}
  void checkPreconditions(const CmaGen& g) const override {
    RC_PRE(std::find(g.tasks.begin(), g.tasks.end(), name) == g.tasks.end());
    RC_PRE(g.tasks.size() < 4u);
  }
  void apply(CmaGen& g) const override {
    g.tasks.push_back(name);
    g.next = std::max(g.next, unsigned(std::stoul(name.substr(1))) + 1);
  }
  void run(const CmaGen&, CmaSut& s) const override {
    s.step(*this);
    int pid = task_spawn(*s.m, name, 0);
    RC_ASSERT(pid > 0);
    s.pids[name] = pid;
  }
  void show(std::ostream& os) const override { os << name << " = task_spawn comm=" << name; }
};

struct Touch : Cmd {
  std::string name;
  unsigned long pages = *rc::gen::inRange(1ul, 600ul);
  explicit Touch(const CmaGen& g) {
    RC_PRE(!g.tasks.empty());
    name = *rc::gen::elementOf(g.tasks);
  }
  void checkPreconditions(const CmaGen& g) const override {
    RC_PRE(std::find(g.tasks.begin(), g.tasks.end(), name) != g.tasks.end());
  }
  void run(const CmaGen&, CmaSut& s) const override {
    s.step(*this);
    task_touch(*s.m, s.pids.at(name), pages);
    stamp_anon(s, false);
  }
  void show(std::ostream& os) const override { os << "task_touch " << name << " pages=" << pages; }
};

// get_page on an anonymous page of the area (the pick-th such page not pinned yet).
struct Pin : Cmd {
  unsigned pick = *rc::gen::inRange(0u, 1u << 16);
  explicit Pin(const CmaGen& g) { RC_PRE(!g.tasks.empty()); }
  void checkPreconditions(const CmaGen& g) const override { RC_PRE(g.pins < 4u); }
  void apply(CmaGen& g) const override { g.pins++; }
  void run(const CmaGen&, CmaSut& s) const override {
    s.step(*this);
    std::vector<unsigned long> v;
    struct cma* c = s.area();
    for (unsigned long pfn = c->base_pfn; pfn < c->base_pfn + c->count; pfn++) {
      struct page* p = pfn_to_page(pfn);
      if ((p->flags & PG_alloc) && p->owner == PageOwner::Anon && page_count(p) == 1)
        v.push_back(pfn);
    }
    if (v.empty()) return s.note("# no anonymous page in the area: nothing pinned");
    unsigned long pfn = v[pick % v.size()];
    get_page(pfn_to_page(pfn));
    s.pinned.push_back(pfn);
    s.note("# pinned pfn " + hex(pfn));
  }
  void show(std::ostream& os) const override {
    os << "# get_page: pin an anonymous page of the CMA area (pick " << pick << ")";
  }
};

struct Unpin : Cmd {
  unsigned pick = *rc::gen::inRange(0u, 1u << 16);
  explicit Unpin(const CmaGen& g) { RC_PRE(g.pins > 0u); }
  void checkPreconditions(const CmaGen& g) const override { RC_PRE(g.pins > 0u); }
  void apply(CmaGen& g) const override { g.pins--; }
  void run(const CmaGen&, CmaSut& s) const override {
    s.step(*this);
    if (s.pinned.empty()) return;
    auto it = s.pinned.begin() + static_cast<long>(pick % s.pinned.size());
    s.note("# put_page pfn " + hex(*it));
    put_page(pfn_to_page(*it));
    s.pinned.erase(it);
  }
  void show(std::ostream& os) const override {
    os << "# put_page: unpin a pinned page (pick " << pick << ")";
  }
};

// An unmovable page inside the area: a kernel page allocated with __GFP_MOVABLE (not on an LRU,
// no owner to update), which movable allocations place in CMA pageblocks.
struct Stuck : Cmd {
  explicit Stuck(const CmaGen&) {}
  void checkPreconditions(const CmaGen& g) const override { RC_PRE(g.stuck < 3u); }
  void apply(CmaGen& g) const override { g.stuck++; }
  void run(const CmaGen&, CmaSut& s) const override {
    s.step(*this);
    std::vector<struct page*> outside;
    for (int i = 0; i < 512; i++) {
      struct page* p = alloc_pages(GFP_HIGHUSER_MOVABLE | __GFP_NOWARN | __GFP_NORETRY, 0);
      if (!p) break;
      if (s.in_area(page_to_pfn(p))) {
        s.stuck.push_back(p);
        s.note("# unmovable page at pfn " + hex(page_to_pfn(p)));
        break;
      }
      outside.push_back(p);
    }
    for (struct page* p : outside) __free_pages(p, 0);
  }
  void show(std::ostream& os) const override {
    os << "# alloc_pages order=0 gfp=GFP_HIGHUSER_MOVABLE until one lands in the CMA area";
  }
};

// bitmap_find_next_zero_area_off(): the first index >= start with (index + offset) aligned to
// mask + 1 whose nr bits are clear, or bm.size().
unsigned long model_zero_area(const std::vector<bool>& bm, unsigned long start, unsigned long nr,
                              unsigned long mask, unsigned long offset) {
  for (unsigned long idx = start;;) {
    idx = ((idx + offset + mask) & ~mask) - offset;
    if (idx + nr > bm.size()) return bm.size();
    unsigned long i = 0;
    while (i < nr && !bm[idx + i]) i++;
    if (i == nr) return idx;
    idx += i + 1;
  }
}

// What cma_alloc must do, from the model's ranges, pinned and unmovable pages.
struct CmaPlan {
  unsigned long pfn = 0; // the range handed out (when ok)
  bool ok = false;
  long migrate_fails = 0;                                        // pgmigrate_fail events
  std::vector<std::pair<unsigned long, unsigned long>> migrated; // candidates whose pages move
};

CmaPlan plan_cma_alloc(CmaSut& s, unsigned long count, unsigned align) {
  CmaPlan plan;
  struct cma* c = s.area();
  if (count > c->count || align > MAX_PAGE_ORDER) return plan;
  std::vector<bool> bm(c->count, false);
  for (auto& [n, r] : s.ranges)
    if (r.page)
      for (unsigned long i = 0; i < r.count; i++) bm[r.pfn - c->base_pfn + i] = true;
  auto inside = [](unsigned long pfn, unsigned long a, unsigned long b) {
    return pfn >= a && pfn < b;
  };
  const unsigned long mask = align ? (1ul << align) - 1 : 0;
  const unsigned long offset = c->base_pfn & mask;
  for (unsigned long start = 0;;) {
    unsigned long bit = model_zero_area(bm, start, count, mask, offset);
    if (bit >= c->count) return plan;
    unsigned long a = c->base_pfn + bit, b = a + count;
    start = bit + mask + 1;
    bool unmovable = false;
    for (struct page* p : s.stuck) unmovable |= inside(page_to_pfn(p), a, b);
    if (unmovable) continue; // has_unmovable_pages(): refused, nothing migrated
    long pins = 0;
    for (unsigned long pfn : s.pinned) pins += inside(pfn, a, b);
    plan.migrated.push_back({a, b});
    if (pins) {
      plan.migrate_fails += 5 * pins; // 5 rounds without progress, each fails every pinned page
      continue;
    }
    plan.ok = true;
    plan.pfn = a;
    return plan;
  }
}

// (pid, index) -> pfn of every anonymous page.
std::map<std::pair<uint32_t, uint64_t>, unsigned long> anon_map(CmaSut& s) {
  std::map<std::pair<uint32_t, uint64_t>, unsigned long> m;
  for (auto& z : s.k().zones) {
    if (!z.managed_pages) continue;
    for (unsigned long pfn = z.zone_start_pfn; pfn < z.end_pfn(); pfn++) {
      struct page* p = pfn_to_page(pfn);
      if (p && (p->flags & PG_alloc) && p->owner == PageOwner::Anon)
        m[{p->owner_data, p->mapped.index}] = pfn;
    }
  }
  return m;
}

struct CmaAlloc : Cmd {
  std::string name;
  unsigned long count = *rc::gen::weightedOneOf<unsigned long>(
      {{3, rc::gen::inRange(1ul, 64ul)}, {1, rc::gen::inRange(64ul, 1025ul)}});
  unsigned align = *rc::gen::inRange(0u, 9u);
  explicit CmaAlloc(const CmaGen& g) : name("r" + std::to_string(g.next)) {}
  void checkPreconditions(const CmaGen& g) const override { RC_PRE(!g.ranges.count(name)); }
  void apply(CmaGen& g) const override {
    g.ranges[name] = count;
    g.next = std::max(g.next, unsigned(std::stoul(name.substr(1))) + 1);
  }
  void run(const CmaGen&, CmaSut& s) const override {
    s.step(*this);
    long anon0 = stamp_anon(s, true);
    struct cma* c = s.area();
    CmaPlan plan = plan_cma_alloc(s, count, align);
    auto where0 = anon_map(s);
    long fails0 = s.vmstat("pgmigrate_fail");
    struct page* p = cma_alloc(c, count, align, true);
    Range r{p, 0, count};
    s.ranges[name] = r;
    // Migration moved anonymous pages out of the range: every one still holds its signature.
    RC_ASSERT(stamp_anon(s, true) == anon0);
    if (p && (!plan.ok || page_to_pfn(p) != plan.pfn))
      RC_LOG() << "# got pfn " << hex(page_to_pfn(p)) << "\n";
    if (plan.ok) RC_LOG() << "# model: the first free candidate is pfn " << hex(plan.pfn) << "\n";
    else RC_LOG() << "# model: every candidate holds a pinned or unmovable page\n";
    RC_ASSERT((p != nullptr) == plan.ok);
    if (p) RC_ASSERT(page_to_pfn(p) == plan.pfn);
    // Pinned pages stay where they are, still the task's, still pinned.
    for (unsigned long pfn : s.pinned) {
      struct page* q = pfn_to_page(pfn);
      if (q->owner != PageOwner::Anon || page_count(q) != 2)
        RC_LOG() << "# pinned pfn " << hex(pfn) << " migrated or freed under its pinner\n";
      RC_ASSERT(q->owner == PageOwner::Anon);
      RC_ASSERT(page_count(q) == 2);
    }
    // Only the candidates that were migrated moved anonymous pages.
    auto where1 = anon_map(s);
    for (auto& [key, pfn] : where0) {
      bool may_move = false;
      for (auto [a, b] : plan.migrated) may_move |= pfn >= a && pfn < b;
      if (may_move) continue;
      if (where1[key] != pfn)
        RC_LOG() << "# anon page pid " << key.first << " index " << key.second << " moved from pfn "
                 << hex(pfn) << ", outside every candidate cma_alloc may migrate\n";
      RC_ASSERT(where1[key] == pfn);
    }
    long fails = s.vmstat("pgmigrate_fail") - fails0;
    RC_LOG() << (fails == plan.migrate_fails
                     ? ""
                     : "# pgmigrate_fail +" + std::to_string(fails) + ", model +" +
                           std::to_string(plan.migrate_fails) + "\n");
    RC_ASSERT(fails == plan.migrate_fails);
    if (!p) return;
    r.pfn = page_to_pfn(p);
    RC_ASSERT(r.pfn % (1ul << align) == 0u);
    RC_ASSERT(r.pfn >= c->base_pfn);
    RC_ASSERT(r.pfn + count <= c->base_pfn + c->count);
    for (auto& [n, o] : s.ranges) {
      if (n == name || !o.page) continue;
      bool overlap = r.pfn < o.pfn + o.count && o.pfn < r.pfn + count;
      if (overlap) RC_LOG() << name << " overlaps " << n << "\n";
      RC_ASSERT(!overlap);
    }
    // Contiguous: every page of the range is CMA's now, and writable through the direct map.
    for (unsigned long i = 0; i < count; i++) {
      struct page* q = pfn_to_page(r.pfn + i);
      RC_ASSERT(q == p + i);
      RC_ASSERT(q->owner == PageOwner::Cma);
    }
    std::memset(page_address(p), 0xc3, count * PAGE_SIZE);
    s.ranges[name] = r;
  }
  void show(std::ostream& os) const override {
    os << name << " = cma_alloc count=" << count << " align=" << align;
  }
};

struct CmaRelease : Cmd {
  std::string name;
  explicit CmaRelease(const CmaGen& g) {
    RC_PRE(!g.ranges.empty());
    std::vector<std::string> v;
    for (auto& [n, c] : g.ranges) v.push_back(n);
    name = *rc::gen::elementOf(v);
  }
  void checkPreconditions(const CmaGen& g) const override { RC_PRE(g.ranges.count(name) == 1u); }
  void apply(CmaGen& g) const override { g.ranges.erase(name); }
  void run(const CmaGen&, CmaSut& s) const override {
    s.step(*this);
    Range r = s.ranges.at(name);
    s.ranges.erase(name);
    if (!r.page) return;
    const auto* a = static_cast<const uint8_t*>(page_address(r.page));
    for (unsigned long i = 0; i < r.count * PAGE_SIZE; i += 509) RC_ASSERT(a[i] == 0xc3);
    RC_ASSERT(cma_release(s.area(), r.page, r.count));
  }
  void show(std::ostream& os) const override { os << "cma_release " << name; }
};

} // namespace

RC_GTEST_PROP(CmaProp, MatchesRangeModel, ()) {
  CmaSut s("mem=64M nr_cpus=2 cma=16M");
  RC_ASSERT(s.area() != nullptr);
  CmaGen g;
  auto gen = rc::state::gen::execOneOfWithArgs<Spawn, Touch, Touch, CmaAlloc, CmaAlloc, CmaRelease,
                                               Pin, Unpin, Stuck>();
  auto cmds = *rc::gen::resize(30 * scale(), rc::state::gen::commands(g, gen));
  rc::state::runAll(cmds, g, s);
  RC_CLASSIFY(!s.pinned.empty(), "pinned");
  RC_CLASSIFY(!s.stuck.empty(), "unmovable");
  // validate flags an unmovable page inside the area: give those back first.
  for (unsigned long pfn : s.pinned) put_page(pfn_to_page(pfn));
  s.pinned.clear();
  for (struct page* p : s.stuck) __free_pages(p, 0);
  s.stuck.clear();
  s.note("# pinned pages unpinned, unmovable pages freed");
  s.check_valid();
  for (auto& [n, r] : s.ranges) {
    s.note("cma_release " + n);
    if (r.page) RC_ASSERT(cma_release(s.area(), r.page, r.count));
  }
  s.ranges.clear();
  s.check_valid();
  RC_ASSERT(s.titles().empty());
}

} // namespace kmm::prop
