// CMA: rc::state commands task_spawn / task_touch / cma_alloc / cma_release against a model of
// the CMA area's bitmap and the tasks' anonymous pages.
//
//   CmaProp.MatchesRangeModel  a cma_alloc range lies inside the area, is aligned to 2^align
//                              pages, never overlaps a live range, and is owned by CMA; every
//                              anonymous page keeps its contents (a signature of pid and index
//                              written before) when cma_alloc migrates it out; the anon page
//                              count does not change; cma_release gives the range back; validate.
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
};

struct Range {
  struct page* page = nullptr;
  unsigned long pfn = 0, count = 0;
};

struct CmaSut : Sut {
  std::map<std::string, Range> ranges;
  std::map<std::string, int> pids;
  explicit CmaSut(const std::string& boot) : Sut(boot) {}
  struct cma* area() { return k().cma->default_area; }
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
    struct page* p = cma_alloc(c, count, align, true);
    Range r{p, 0, count};
    s.ranges[name] = r;
    // Migration moved anonymous pages out of the range: every one still holds its signature.
    RC_ASSERT(stamp_anon(s, true) == anon0);
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
  auto gen = rc::state::gen::execOneOfWithArgs<Spawn, Touch, Touch, CmaAlloc, CmaAlloc, CmaRelease>();
  auto cmds = *rc::gen::resize(30 * scale(), rc::state::gen::commands(g, gen));
  rc::state::runAll(cmds, g, s);
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
