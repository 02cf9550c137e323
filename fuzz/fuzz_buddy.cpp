// Fuzz target: the buddy page allocator (alloc_pages, __free_pages, split_page,
// alloc_pages_exact) on the input's machine, against a reference decomposition of its free frames.
//
// Oracles, beyond the harness's (liveness, no overlap, content, no report, validate every 16
// operations):
//   - free-page accounting: free pages + pages on pcp lists + our live pages == the boot value,
//     after every operation;
//   - maximal coalescing: at the end, after drain_all_pages, the free lists hold exactly the
//     maximal mergeable aligned blocks of the free frames (boot free frames minus our live ones;
//     blocks above a pageblock merge only as __free_one_page lets pageblock types merge);
//   - back to boot: after freeing everything and draining, the free lists equal the boot state,
//     but for boot blocks whose pageblocks no longer merge (a HighAtomic reserve stays after its
//     pages are freed): the maximal-coalescing reference with nothing live.
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "buddy.h"
#include "harness.h"
#include "kernel.h"
#include "kmm/linux.h"
#include "pcp.h"

namespace {

using namespace kmm;

struct Block {
  unsigned long pfn;
  unsigned order;
  bool operator==(const Block&) const = default;
};

// The free lists of a machine at boot (after draining the pcp lists), by boot line. Boot is
// deterministic, so a line's first input takes them; the inputs after it compare the free-page
// total (a machine restored between inputs is compared with a fresh boot under
// KMM_FUZZ_RECYCLE_CHECK). That boot coalesced maximally is validate()'s buddy check.
struct BootFree {
  std::vector<Block> blocks;
  long total = 0;
};

struct BuddyOracle : fuzz::Oracle {
  const BootFree* boot = nullptr;

  static long free_total(Kernel& k) {
    long n = 0;
    for (auto& z : k.zones)
      if (z.managed_pages) n += z.free_pages() + zone_pcp_pages(k, z);
    return n;
  }
  // The free lists' blocks in pfn order, into out (its storage kept from input to input).
  static void free_blocks(Kernel& k, std::vector<Block>& out) {
    out.clear();
    for (unsigned long pfn = 0; pfn < k.mem.nr_pages; pfn += buddy_span(k, pfn))
      if (PageBuddy(*k.mem.pfn_to_page(pfn)))
        out.push_back({pfn, k.mem.pfn_to_page(pfn)->private_});
  }
  long ours(fuzz::Ctx& c) const {
    long n = 0;
    for (const auto& [a, r] : c.ranges)
      n += static_cast<long>((r.first - a + PAGE_SIZE - 1) / PAGE_SIZE);
    return n;
  }

  void at_boot(fuzz::Ctx& c) override {
    static std::map<std::string, BootFree> by_line;
    Kernel& k = c.m->kernel();
    drain_all_pages(k, nullptr);
    const long total = free_total(k);
    auto it = by_line.find(c.executed.boot);
    if (it == by_line.end()) {
      BootFree b{{}, total};
      free_blocks(k, b.blocks);
      it = by_line.emplace(c.executed.boot, std::move(b)).first;
    }
    boot = &it->second;
    if (total != boot->total)
      fuzz::fail(c, "free+pcp at boot " + std::to_string(total) + ", the line's first boot had " +
                        std::to_string(boot->total));
  }

  void after(fuzz::Ctx& c, const Op& op) override {
    long now = free_total(c.m->kernel()), mine = ours(c);
    if (now + mine != boot->total)
      fuzz::fail(c, "accounting after " + fuzz::op_text(c, op) + ": free+pcp " +
                        std::to_string(now) + " + live " + std::to_string(mine) + " != boot free " +
                        std::to_string(boot->total));
  }

  // The maximal aligned blocks of the boot free frames minus our live ones. A boot block with
  // none of ours stays whole, unless its pageblocks no longer merge (one turned HighAtomic: the
  // kernel's __free_one_page does not merge a non-mergeable type with another type). One holding
  // some of ours splits into halves until each is all free or all ours: the greedy aligned
  // decomposition of the free frames, block by block.
  void reference(fuzz::Ctx& c, std::vector<Block>& out) const {
    Kernel& k = c.m->kernel();
    static std::vector<std::pair<unsigned long, unsigned long>> live; // [first, last) pfns
    live.clear();
    for (const auto& [a, r] : c.ranges) {
      unsigned long pfn = k.mem.page_to_pfn(virt_to_page(reinterpret_cast<void*>(a)));
      live.emplace_back(pfn, pfn + (r.first - a + PAGE_SIZE - 1) / PAGE_SIZE);
    }
    std::sort(live.begin(), live.end());
    auto ours_in = [&](unsigned long lo, unsigned long hi) { // our frames in [lo, hi)
      unsigned long n = 0;
      auto i = std::upper_bound(live.begin(), live.end(), std::make_pair(lo, ~0ul));
      if (i != live.begin()) --i;
      for (; i != live.end() && i->first < hi; ++i)
        if (i->second > lo) n += std::min(hi, i->second) - std::max(lo, i->first);
      return n;
    };
    auto merges = [&](unsigned long pfn, unsigned o) { // its pageblocks merge into one block
      const int first = k.mem.get_pageblock_migratetype(pfn);
      for (unsigned long pb = pfn; o > pageblock_order && pb < pfn + (1ul << o);
           pb += pageblock_nr_pages) {
        const int mt = k.mem.get_pageblock_migratetype(pb);
        if (mt != first && (!migratetype_is_mergeable(mt) || !migratetype_is_mergeable(first)))
          return false;
      }
      return true;
    };
    out.clear();
    auto split = [&](auto& self, unsigned long pfn, unsigned o) -> void {
      const unsigned long n = ours_in(pfn, pfn + (1ul << o));
      if (n == 0 && merges(pfn, o)) return out.push_back({pfn, o});
      if (n == (1ul << o)) return;
      self(self, pfn, o - 1);
      self(self, pfn + (1ul << (o - 1)), o - 1);
    };
    for (const Block& b : boot->blocks) split(split, b.pfn, b.order);
  }

  static std::string diff(const std::vector<Block>& want, const std::vector<Block>& got) {
    size_t i = 0;
    while (i < want.size() && i < got.size() && want[i] == got[i]) i++;
    auto show = [](const std::vector<Block>& v, size_t i) {
      return i < v.size()
                 ? "pfn " + std::to_string(v[i].pfn) + " order " + std::to_string(v[i].order)
                 : std::string("nothing");
    };
    return "expected " + show(want, i) + ", free lists have " + show(got, i);
  }

  // After drain_all_pages the free lists are the reference's blocks.
  void check_coalesced(fuzz::Ctx& c, const char* what) const {
    Kernel& k = c.m->kernel();
    drain_all_pages(k, nullptr);
    static std::vector<Block> want, got; // storage kept from input to input
    reference(c, want);
    free_blocks(k, got);
    if (want != got) fuzz::fail(c, what + diff(want, got));
  }

  void at_end(fuzz::Ctx& c) override {
    check_coalesced(c, "not maximally coalesced after drain_all_pages: ");
  }

  // Nothing is live now: the reference is boot's blocks, split where pageblocks no longer merge.
  void after_free_all(fuzz::Ctx& c) override {
    check_coalesced(c, "free lists differ from boot after freeing everything: ");
  }
};

const fuzz::Target target{"buddy",
                          {"alloc_pages", "free_pages", "get_page", "put_page", "split_page",
                           "alloc_pages_exact", "free_pages_exact", "write", "read", "fill", "cpu"},
                          nullptr,
                          16,
                          fuzz::report_bit(ReportKind::AllocFail) |
                              fuzz::report_bit(ReportKind::Warn),
                          true,
                          [] { return std::unique_ptr<fuzz::Oracle>(new BuddyOracle); }};

} // namespace

KMM_FUZZ_TARGET(target)
