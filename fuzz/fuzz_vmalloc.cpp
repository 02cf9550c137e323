// Fuzz target: vmalloc, vzalloc, vfree, kvmalloc, kvzalloc, kvfree among page and kmalloc
// allocations (which fragment memory, so kvmalloc's kmalloc attempt can fail and fall back), on
// the machine the input's header byte chooses.
//
// Oracles, beyond the harness's (liveness, no overlap of live ranges, content through the
// address the caller holds, zeroing of vzalloc/kvzalloc, reports, validate - which checks that
// vmap areas are disjoint and each has its guard page - every 16 operations and at the end):
//   - a vmalloc area is in the vmalloc range and each of its pages (vmalloc_to_page) is a page
//     of no other live allocation and appears once;
//   - content through the direct map: bytes written through the vmalloc address read back the
//     same through page_address(vmalloc_to_page()) of each page (the two mappings alias);
//   - the kvmalloc rule (mm/util.c): at most a page, or a non-blocking gfp, never falls back
//     to vmalloc.
#include <algorithm>
#include <cstring>
#include <iterator>
#include <set>

#include "harness.h"
#include "kmm/linux.h"
#include "scenario_ops.h"
#include "scenario_run.h"

namespace {

using namespace kmm;

struct VmallocOracle : fuzz::Oracle {
  // The pages of a live vmalloc'd result, in address order (nullptr: not a vmalloc address).
  static std::vector<struct page*> area_pages(const fuzz::Live& l) {
    std::vector<struct page*> out;
    auto* a = reinterpret_cast<const uint8_t*>(l.addr);
    if (!l.live || !is_vmalloc_addr(a)) return out;
    for (int64_t off = 0; off < l.size; off += int64_t(PAGE_SIZE))
      out.push_back(vmalloc_to_page(a + off));
    return out;
  }

  // Every page of the area backs it alone: no live direct-map range holds it, no page twice.
  void check_area(fuzz::Ctx& c, const std::string& name, const fuzz::Live& l) {
    auto pages = area_pages(l);
    std::set<struct page*> seen;
    for (size_t i = 0; i < pages.size(); i++) {
      struct page* p = pages[i];
      if (!p) fuzz::fail(c, name + ": vmalloc_to_page of page " + std::to_string(i) + " is NULL");
      if (!seen.insert(p).second) fuzz::fail(c, name + ": a page is mapped twice in its area");
      auto a = reinterpret_cast<uintptr_t>(page_address(p));
      auto it = c.ranges.upper_bound(a);
      if (it != c.ranges.begin() && std::prev(it)->second.first > a)
        fuzz::fail(c, name + ": page " + std::to_string(i) + " of its area lies in live " +
                          std::prev(it)->second.second);
    }
  }

  // The shadow (bytes written through the vmalloc address) against the direct map alias.
  void check_alias(fuzz::Ctx& c, const std::string& name, const fuzz::Live& l) {
    if (!l.written()) return;
    auto pages = area_pages(l);
    for (size_t i = 0; i < pages.size(); i++) {
      const auto* direct = static_cast<const uint8_t*>(page_address(pages[i]));
      size_t off = i * PAGE_SIZE, n = std::min<size_t>(PAGE_SIZE, size_t(l.size) - off);
      if (fuzz::first_unexpected(l, int64_t(off), direct, n) != n)
        fuzz::fail(c, name + ": page " + std::to_string(i) +
                          " reads differently through the direct map than what was written");
    }
  }

  void after(fuzz::Ctx& c, const Op& op) override {
    const std::string_view n = fuzz::op_name(op);
    if (n == "vmalloc" || n == "vzalloc" || n == "kvmalloc" || n == "kvzalloc") {
      const fuzz::Live& l = c.res.at(op.result);
      if (!l.live) return;
      bool vm = is_vmalloc_addr(reinterpret_cast<void*>(l.addr));
      if ((n == "vmalloc" || n == "vzalloc") && !vm)
        fuzz::fail(c, op.result + ": not a vmalloc address");
      if (vm && (n == "kvmalloc" || n == "kvzalloc")) {
        auto gfp = static_cast<gfp_t>(op.args[1].num);
        if (l.size <= int64_t(PAGE_SIZE))
          fuzz::fail(c, op.result + ": kvmalloc of at most a page fell back to vmalloc");
        if (!(gfp & __GFP_DIRECT_RECLAIM))
          fuzz::fail(c, op.result + ": kvmalloc with a non-blocking gfp fell back to vmalloc");
      }
      check_area(c, op.result, l);
    } else if (n == "write" || n == "fill") {
      const fuzz::Live& l = c.res.at(op.args[0].str);
      check_alias(c, op.args[0].str, l);
    }
  }

  void at_end(fuzz::Ctx& c) override {
    for (const auto& [name, l] : c.res) {
      check_area(c, name, l);
      check_alias(c, name, l);
    }
  }
};

const fuzz::Target target{
    "vmalloc",
    {"vmalloc", "vzalloc", "vfree", "kvmalloc", "kvzalloc", "kvfree", "alloc_pages", "free_pages",
     "kmalloc", "kfree", "write", "read", "fill", "cpu", "proc_read"},
    nullptr,
    16,
    fuzz::report_bit(ReportKind::AllocFail) | fuzz::report_bit(ReportKind::Warn) |
        fuzz::report_bit(ReportKind::Oom),
    true,
    [] { return std::unique_ptr<fuzz::Oracle>(new VmallocOracle); }};

} // namespace

KMM_FUZZ_TARGET(target)
