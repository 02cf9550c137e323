// Fuzz target: the buddy page allocator (alloc_pages, __free_pages, split_page,
// alloc_pages_exact) on the input's machine, against a page-bitmap reference.
//
// Oracles, beyond the harness's (liveness, no overlap, content, no report, validate every 16
// operations):
//   - free-page accounting: free pages + pages on pcp lists + our live pages == the boot value,
//     after every operation;
//   - maximal coalescing: at the end, after drain_all_pages, the free lists hold exactly the
//     maximal aligned blocks of the free-frame bitmap (boot free frames minus our live ones);
//   - back to boot: after freeing everything and draining, the free lists equal the boot state.
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
// deterministic, so a line's first input computes them and checks them against the maximal
// coalescing of their own frames; the inputs after it only compare the free-page total (a
// machine restored between inputs is compared with a fresh boot under KMM_FUZZ_RECYCLE_CHECK).
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
  static std::vector<Block> free_blocks(Kernel& k) {
    std::vector<Block> out;
    for (unsigned long pfn = 0; pfn < k.mem.nr_pages;) {
      struct page* p = k.mem.pfn_to_page(pfn);
      if (PageBuddy(*p)) {
        out.push_back({pfn, p->private_});
        pfn += 1ul << p->private_;
      } else {
        pfn++;
      }
    }
    return out;
  }
  long ours(fuzz::Ctx& c) const {
    long n = 0;
    for (const auto& [a, r] : c.ranges)
      n += static_cast<long>((r.first - a + PAGE_SIZE - 1) / PAGE_SIZE);
    return n;
  }

  // The maximal aligned blocks of a free-frame bitmap, zone by zone: at each free pfn, the
  // largest order-aligned all-free block inside the zone (e.g. frames 8..15 free, 16 used:
  // order 3 at 8).
  static std::vector<Block> maximal_blocks(Kernel& k, const std::vector<uint8_t>& free) {
    std::vector<Block> out;
    for (auto& z : k.zones) {
      if (!z.managed_pages) continue;
      for (unsigned long pfn = z.zone_start_pfn; pfn < z.end_pfn();) {
        if (!free[pfn]) {
          pfn++;
          continue;
        }
        unsigned o = 0;
        while (o < MAX_PAGE_ORDER) {
          unsigned long n = 1ul << (o + 1);
          if (pfn % n || pfn + n > z.end_pfn()) break;
          bool all = true;
          for (unsigned long i = 1ul << o; i < n && all; i++) all = free[pfn + i];
          if (!all) break;
          o++;
        }
        out.push_back({pfn, o});
        pfn += 1ul << o;
      }
    }
    return out;
  }

  void at_boot(fuzz::Ctx& c) override {
    static std::map<std::string, BootFree> by_line;
    Kernel& k = c.m->kernel();
    drain_all_pages(k, nullptr);
    auto it = by_line.find(c.executed.boot);
    if (it == by_line.end()) {
      BootFree b{free_blocks(k), free_total(k)};
      std::vector<uint8_t> free(k.mem.nr_pages, 0);
      for (const Block& blk : b.blocks)
        for (unsigned long i = 0; i < (1ul << blk.order); i++) free[blk.pfn + i] = 1;
      auto want = maximal_blocks(k, free);
      if (want != b.blocks)
        fuzz::fail(c, "not maximally coalesced at boot: " + diff(want, b.blocks));
      it = by_line.emplace(c.executed.boot, std::move(b)).first;
    }
    boot = &it->second;
    if (free_total(k) != boot->total)
      fuzz::fail(c, "free+pcp at boot " + std::to_string(free_total(k)) +
                        ", the line's first boot had " + std::to_string(boot->total));
  }

  void after(fuzz::Ctx& c, const Op& op) override {
    long now = free_total(c.m->kernel()), mine = ours(c);
    if (now + mine != boot->total)
      fuzz::fail(c, "accounting after " + fuzz::op_text(c, op) + ": free+pcp " +
                        std::to_string(now) + " + live " + std::to_string(mine) + " != boot free " +
                        std::to_string(boot->total));
  }

  // The maximal aligned blocks of the boot free frames minus our live ones. A boot block (maximal
  // at boot, at_boot checked) with none of ours stays whole: taking frames away cannot let it
  // merge. One holding some of ours splits into halves until each is all free or all ours,
  // which is the greedy decomposition above, block by block.
  std::vector<Block> reference(fuzz::Ctx& c) const {
    Kernel& k = c.m->kernel();
    std::vector<std::pair<unsigned long, unsigned long>> live; // [first, last) pfns, sorted
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
    std::vector<Block> out;
    auto split = [&](auto& self, unsigned long pfn, unsigned o) -> void {
      const unsigned long n = ours_in(pfn, pfn + (1ul << o));
      if (n == 0) return out.push_back({pfn, o});
      if (n == (1ul << o)) return;
      self(self, pfn, o - 1);
      self(self, pfn + (1ul << (o - 1)), o - 1);
    };
    for (const Block& b : boot->blocks) split(split, b.pfn, b.order);
    return out;
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

  void at_end(fuzz::Ctx& c) override {
    Kernel& k = c.m->kernel();
    drain_all_pages(k, nullptr);
    auto want = reference(c), got = free_blocks(k);
    if (want != got)
      fuzz::fail(c, "not maximally coalesced after drain_all_pages: " + diff(want, got));
  }

  void after_free_all(fuzz::Ctx& c) override {
    Kernel& k = c.m->kernel();
    drain_all_pages(k, nullptr);
    auto got = free_blocks(k);
    if (got != boot->blocks)
      fuzz::fail(c, "free lists differ from boot after freeing everything: " +
                        diff(boot->blocks, got));
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
