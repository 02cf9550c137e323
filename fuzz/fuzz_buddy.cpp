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

struct BuddyOracle : fuzz::Oracle {
  std::vector<uint8_t> boot_free; // by pfn: free at boot (after draining)
  std::vector<Block> boot_blocks;
  long boot_total = 0;

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

  void at_boot(fuzz::Ctx& c) override {
    Kernel& k = c.m->kernel();
    drain_all_pages(k, nullptr);
    boot_blocks = free_blocks(k);
    boot_free.assign(k.mem.nr_pages, 0);
    for (const Block& b : boot_blocks)
      for (unsigned long i = 0; i < (1ul << b.order); i++) boot_free[b.pfn + i] = 1;
    boot_total = free_total(k);
  }

  void after(fuzz::Ctx& c, const Op& op) override {
    long now = free_total(c.m->kernel()), mine = ours(c);
    if (now + mine != boot_total)
      fuzz::fail(c, "accounting after " + fuzz::op_text(c, op) + ": free+pcp " +
                        std::to_string(now) + " + live " + std::to_string(mine) + " != boot free " +
                        std::to_string(boot_total));
  }

  // The maximal aligned blocks of the free frames, zone by zone: at each free pfn, the largest
  // order-aligned all-free block inside the zone (e.g. frames 8..15 free, 16 used: order 3 at 8).
  std::vector<Block> reference(fuzz::Ctx& c) const {
    Kernel& k = c.m->kernel();
    std::vector<uint8_t> free = boot_free;
    for (const auto& [a, r] : c.ranges)
      for (uintptr_t x = a; x < r.first; x += PAGE_SIZE)
        free[k.mem.page_to_pfn(virt_to_page(reinterpret_cast<void*>(x)))] = 0;
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
    if (got != boot_blocks)
      fuzz::fail(c,
                 "free lists differ from boot after freeing everything: " + diff(boot_blocks, got));
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
