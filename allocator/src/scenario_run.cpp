// The scenario interpreter: boots the scenario's machine, runs each operation's executor (from
// the table in scenario_ops.cpp) as the current CPU, writes one trace line per operation with
// results given by pfn / physical address / cache name (never host addresses), lists new
// reports under the operation that caused them, checks expectations and validates at `check`
// and at the end.
#include "scenario_run.h"

#include <cinttypes>
#include <cstdio>

#include <algorithm>

#include "buddy.h"
#include "kernel.h"
#include "kmm/validate.h"
#include "node_pool.h"
#include "task.h"
#include "vmalloc.h"
#include "vmscan.h"

namespace kmm::scn {

// The nodes of finished Runners' results go to the next one on this thread (node_pool.h).
static NodePool<decltype(Runner::results)>& result_nodes() {
  return NodePool<decltype(Runner::results)>::of_thread();
}

// So does the storage of their kernel_pages, grown once (node_pool.h says why it matters).
static std::vector<std::pair<unsigned long, unsigned long>>& spare_kernel_pages() {
  static thread_local std::vector<std::pair<unsigned long, unsigned long>> v = [] {
    std::vector<std::pair<unsigned long, unsigned long>> r;
    r.reserve(1024);
    return r;
  }();
  return v;
}

Runner::Runner(const Scenario& s_, Machine& m_, RunResult& out_)
    : s(s_), m(m_), k(m_.kernel()), out(out_) {
  spin_lock_init(&lock);
  k.kernel_page_writes_marked.store(true, std::memory_order_relaxed);
  kernel_pages.swap(spare_kernel_pages());
}

Runner::~Runner() {
  end_marking();
  result_nodes().clear(results);
  kernel_pages.clear();
  if (kernel_pages.capacity() > spare_kernel_pages().capacity())
    spare_kernel_pages().swap(kernel_pages);
}

void Runner::end_marking() {
  if (!k.kernel_page_writes_marked.exchange(false, std::memory_order_relaxed)) return;
  for (auto [pfn, n] : kernel_pages)
    for (unsigned long i = pfn; i < pfn + n; i++) {
      const struct page* p = k.mem.pfn_to_page(i);
      if ((p->flags & PG_alloc) && p->owner == PageOwner::Kernel) {
        k.mem.mark_written(pfn, n);
        break;
      }
    }
}

std::pair<unsigned long, unsigned long> Runner::pages_of(const void* p, uint64_t len) const {
  const uint64_t phys = k.mem.virt_to_phys(p);
  const unsigned long first = phys >> PAGE_SHIFT_;
  return {first, ((phys + len - 1) >> PAGE_SHIFT_) - first + 1};
}

void Runner::wrote(const uint8_t* p, size_t len) {
  if (!len || !k.mem.is_direct(p)) return; // vmalloc memory: its pages are marked (physmem.h)
  const auto [first, n] = pages_of(p, len);
  k.mem.mark_written(first, n);
}

Result& Runner::ref(const Op& op, size_t field) { return results.at(op.args[field].str); }

void Runner::define(const Op& op, const Result& r) {
  if ((r.kind == Kind::Page || r.kind == Kind::Virt) && r.ptr && r.size > 0 &&
      k.mem.is_direct(r.ptr))
    kernel_pages.push_back(pages_of(r.ptr, uint64_t(r.size)));
  result_nodes()(results, op.result) = r;
}

void Runner::fail(const Op& op, const std::string& msg) {
  out.failures.push_back(s.filename + ":" + std::to_string(op.line) + ": " + msg);
  if (out.first_failure_key.empty()) out.first_failure_key = msg;
}

bool Runner::skip_null(const Op& op, size_t field) {
  if (!ref(op, field).null()) return false;
  detail = "skipped: " + op.args[field].str + " is NULL";
  return true;
}

uint8_t* Runner::host(const Result& r, int64_t off, int64_t len, std::string* why) {
  if (r.null()) {
    *why = "NULL";
    return nullptr;
  }
  if (k.vmalloc && k.vmalloc->contains(reinterpret_cast<uintptr_t>(r.ptr))) {
    // The area's pages and its guard page (a touch there faults, and the fault handler reports
    // it); nothing below the area.
    int64_t room =
        ((r.size + int64_t(PAGE_SIZE) - 1) & ~int64_t(PAGE_SIZE - 1)) + int64_t(PAGE_SIZE);
    if (off < 0 || len < 0 || off + len > room) {
      *why = "outside the vmalloc area and its guard page";
      return nullptr;
    }
    return static_cast<uint8_t*>(r.ptr) + off;
  }
  if (!k.mem.is_direct(r.ptr)) {
    *why = "not in the direct map";
    return nullptr;
  }
  int64_t phys = static_cast<int64_t>(k.mem.virt_to_phys(r.ptr)) + off;
  if (phys < 0 || len < 0 || phys + len > static_cast<int64_t>(k.mem.bytes)) {
    *why = "outside RAM";
    return nullptr;
  }
  return k.mem.direct_map + phys;
}

int64_t Runner::task_bytes(const Result& r) {
  if (r.id <= 0) return 0;
  std::lock_guard<std::mutex> guard(k.reclaim->lru_lock);
  Task* t = find_task_Locked(k, r.id);
  return t ? static_cast<int64_t>(t->anon.size()) * int64_t(PAGE_SIZE) : 0;
}

bool Runner::span(const Result& r, int64_t off, int64_t len, std::vector<Chunk>* out,
                  std::string* why) {
  out->clear();
  if (r.kind != Kind::Task) {
    uint8_t* mem = host(r, off, len, why);
    if (!mem) return false;
    out->push_back({mem, static_cast<size_t>(len)});
    return true;
  }
  if (r.id <= 0) {
    *why = "no task";
    return false;
  }
  std::lock_guard<std::mutex> guard(k.reclaim->lru_lock);
  Task* t = find_task_Locked(k, r.id);
  if (!t) {
    *why = "task " + std::to_string(r.id) + " is gone";
    return false;
  }
  int64_t have = static_cast<int64_t>(t->anon.size()) * int64_t(PAGE_SIZE);
  if (off < 0 || len < 0 || off + len > have) {
    *why = "beyond the " + std::to_string(t->anon.size()) + " pages task " + std::to_string(r.id) +
           " has touched";
    return false;
  }
  for (int64_t pos = off; pos < off + len;) {
    int64_t idx = pos / int64_t(PAGE_SIZE), in = pos % int64_t(PAGE_SIZE);
    int64_t n = std::min(int64_t(PAGE_SIZE) - in, off + len - pos);
    uint8_t* page =
        static_cast<uint8_t*>(k.mem.phys_to_virt(uint64_t(t->anon[size_t(idx)]) << PAGE_SHIFT));
    out->push_back({page + in, static_cast<size_t>(n)});
    pos += n;
  }
  return true;
}

device* Runner::dma_device(unsigned bits) {
  auto& d = devices[bits];
  if (!d) d = std::make_unique<device>(m, "scenario-dma" + std::to_string(bits), bits);
  return d.get();
}

std::string Runner::describe(const Result& r) {
  if (r.null()) return "NULL";
  char buf[128];
  switch (r.kind) {
  case Kind::Page: {
    unsigned long pfn = k.mem.page_to_pfn(r.page);
    std::snprintf(buf, sizeof buf, "pfn 0x%lx (zone %s)", pfn, page_zone(k, pfn).name);
    return buf;
  }
  case Kind::Cma: {
    unsigned long pfn = k.mem.page_to_pfn(r.page);
    std::snprintf(buf, sizeof buf, "pfn 0x%lx..0x%lx (zone %s)", pfn,
                  pfn + static_cast<unsigned long>(r.size / int64_t(PAGE_SIZE)) - 1,
                  page_zone(k, pfn).name);
    return buf;
  }
  case Kind::Dma:
    std::snprintf(buf, sizeof buf, "dma 0x%" PRIx64 " (zone %s)", r.dma,
                  page_zone(k, static_cast<unsigned long>(r.dma >> PAGE_SHIFT)).name);
    return buf;
  case Kind::Task: return "pid " + std::to_string(r.id);
  case Kind::File: return "ino " + std::to_string(r.id);
  case Kind::Vmalloc:
  case Kind::Kvmalloc:
    if (k.vmalloc && k.vmalloc->contains(reinterpret_cast<uintptr_t>(r.ptr))) {
      std::snprintf(buf, sizeof buf, "vmalloc 0x%" PRIx64 " (%" PRId64 " pages)",
                    k.vmalloc->kva(reinterpret_cast<uintptr_t>(r.ptr)),
                    (r.size + int64_t(PAGE_SIZE) - 1) / int64_t(PAGE_SIZE));
      return buf;
    }
    [[fallthrough]];
  case Kind::Virt:
  case Kind::Obj: {
    if (!k.mem.is_direct(r.ptr)) return "not in the direct map";
    uint64_t phys = k.mem.virt_to_phys(r.ptr);
    std::string cache = r.kind == Kind::Obj || r.kind == Kind::Kvmalloc ? slab_cache_of(r.ptr) : "";
    std::snprintf(buf, sizeof buf, "phys 0x%" PRIx64 " (%s%s)", phys, cache.empty() ? "zone " : "",
                  cache.empty() ? page_zone(k, static_cast<unsigned long>(phys >> PAGE_SHIFT)).name
                                : cache.c_str());
    return buf;
  }
  default: return "";
  }
}

} // namespace kmm::scn

namespace kmm {

using namespace scn;

RunResult run_scenario(const Scenario& s, const RunOptions& opts) {
  RunResult out;
  std::unique_ptr<Machine> m;
  try {
    m = Machine::boot(s.boot);
  } catch (const std::exception& e) {
    out.failures.push_back(s.filename + ": boot " + s.boot + ": " + e.what());
    out.first_failure_key = std::string("boot: ") + e.what();
    out.exit_status = 2;
    return out;
  }
  return run_scenario_on(*m, s, opts);
}

RunResult run_scenario_on(Machine& machine, const Scenario& s, const RunOptions& opts) {
  RunResult out;
  Machine* m = &machine;
  {
    MachineScope scope(*m);
    Runner r(s, *m, out);
    size_t reports_seen = 0;
    for (const Op& op : s.ops) {
      r.detail.clear();
      r.extra.clear();
      try {
        op_table()[op.code].exec(r, op);
      } catch (const std::exception& e) {
        r.fail(op, std::string("internal error: ") + e.what());
      }
      std::string line = print_op(s, op);
      if (!r.detail.empty()) line += " -> " + r.detail;
      out.trace.push_back(line);
      for (auto& x : r.extra) out.trace.push_back(x);
      const auto& reports = m->reports();
      for (; reports_seen < reports.size(); reports_seen++)
        out.trace.push_back("  ! " + reports[reports_seen].title);
    }
    if (opts.validate_at_end) {
      Op end;
      end.line = s.ops.empty() ? 0 : s.ops.back().line;
      auto errors = validate(*m);
      for (const auto& e : errors) r.fail(end, "at end: " + e);
    }
    r.cpu_scope.reset();
    r.end_marking();
    if (opts.at_end) opts.at_end(*m);
  }
  out.dmesg = m->dmesg();
  for (const auto& rep : m->reports()) out.reports.push_back(rep.title);
  if (!out.reports.empty()) out.first_failure_key = out.reports.front();
  out.exit_status = out.failures.empty() ? 0 : 1;
  return out;
}

std::string format_run(const RunResult& r, bool show_dmesg) {
  std::string out;
  for (const auto& line : r.trace) out += line + "\n";
  if (show_dmesg) out += "--- dmesg ---\n" + r.dmesg;
  out += "--- reports: " + std::to_string(r.reports.size()) + " ---\n";
  for (const auto& t : r.reports) out += t + "\n";
  out += r.failures.empty() ? "--- ok ---\n" : "--- FAILED ---\n";
  for (const auto& f : r.failures) out += f + "\n";
  return out;
}

} // namespace kmm
