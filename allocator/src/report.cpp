// The reporting path and the generic and page-allocator reports (see bug.h). The wording follows
// the kernel's printk formats; addresses are the kernel's (direct map, vmemmap), never host ones.
#include <charconv>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <unistd.h>

#include "buddy.h"
#include "bug.h"
#include "kernel.h"

namespace kmm {

const char* report_kind_name(ReportKind kind) {
  switch (kind) {
  case ReportKind::Warn: return "warn";
  case ReportKind::BadPage: return "bad-page";
  case ReportKind::PagePoison: return "page-poison";
  case ReportKind::SleepInAtomic: return "sleep-in-atomic";
  case ReportKind::AllocFail: return "alloc-fail";
  case ReportKind::SlubDebug: return "slub";
  case ReportKind::Kasan: return "kasan";
  case ReportKind::Kfence: return "kfence";
  case ReportKind::Oom: return "oom";
  case ReportKind::Panic: return "panic";
  case ReportKind::PageFault: return "page-fault";
  }
  return "?";
}

bool report_is_bug(ReportKind kind) {
  return kind != ReportKind::AllocFail && kind != ReportKind::Oom;
}

// The one formatter behind strprintf and appendf: fmt's output appended to out, through a
// stack buffer first (most pieces fit), else formatted again in place.
static void vappendf(std::string& out, const char* fmt, va_list ap) {
  char small[256];
  va_list again;
  va_copy(again, ap);
  const int n = std::vsnprintf(small, sizeof small, fmt, ap);
  if (n >= 0 && n < static_cast<int>(sizeof small)) {
    out.append(small, static_cast<size_t>(n));
  } else if (n >= 0) {
    const size_t at = out.size();
    out.resize(at + static_cast<size_t>(n) + 1);
    std::vsnprintf(out.data() + at, static_cast<size_t>(n) + 1, fmt, again);
    out.resize(at + static_cast<size_t>(n));
  }
  va_end(again);
}

std::string strprintf(const char* fmt, ...) {
  std::string out;
  va_list ap;
  va_start(ap, fmt);
  vappendf(out, fmt, ap);
  va_end(ap);
  return out;
}

void appendf(std::string& out, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vappendf(out, fmt, ap);
  va_end(ap);
}

void append_dec(std::string& out, long v) {
  char digits[24];
  out.append(digits, size_t(std::to_chars(digits, digits + sizeof digits, v).ptr - digits));
}

void append_udec(std::string& out, unsigned long v) {
  char digits[24];
  out.append(digits, size_t(std::to_chars(digits, digits + sizeof digits, v).ptr - digits));
}

void append_hex(std::string& out, unsigned long v) {
  if (v) out += "0x";
  char digits[24];
  out.append(digits, size_t(std::to_chars(digits, digits + sizeof digits, v, 16).ptr - digits));
}

void append_cpu_line(std::string& out, Kernel& k) {
  const CpuState& c = k.cpu();
  out += "CPU: ";
  append_udec(out, k.cpu_id());
  out += " PID: ";
  append_dec(out, c.current.pid);
  out.append(" Comm: ").append(c.current.comm).append(" Not tainted 6.12.0-kmm #1\n");
}

std::string cpu_line(Kernel& k) {
  std::string out;
  append_cpu_line(out, k);
  return out;
}

void emit_report(Kernel& k, Report r) {
  if (r.title.empty()) r.title = r.text.substr(0, r.text.find('\n'));
  k.log.printk(r.text);
  bool abort_now = false;
  if (report_is_bug(r.kind)) {
    if (k.params.panic_on_warn) abort_now = true;
    if ((r.kind == ReportKind::Kasan || r.kind == ReportKind::Kfence) &&
        k.params.kasan_fault == "panic")
      abort_now = true;
  }
  std::string text = abort_now ? r.text : std::string();
  {
    std::lock_guard<std::mutex> guard(k.report_lock);
    k.reports.push_back(std::move(r));
  }
  if (abort_now) {
    std::string msg = text + "Kernel panic - not syncing: kmm: fatal report (panic_on_warn or "
                             "kasan.fault=panic)\n";
    ssize_t ignored = write(2, msg.data(), msg.size());
    (void)ignored;
    std::abort();
  }
}

// The text is built in one allocation, and it and the title are moved into the report: a fuzz
// input can warn many times, and every host allocation costs under ASan.
void report_warn(Kernel& k, const char* file, const char* function, const std::string& message) {
  static constexpr std::string_view cut = "------------[ cut here ]------------\n";
  static constexpr std::string_view end = "---[ end trace 0000000000000000 ]---\n";
  std::string title = "WARNING: CPU: ";
  append_udec(title, k.cpu_id());
  title += " PID: ";
  append_dec(title, k.cpu().current.pid);
  title.append(" at ").append(file).append(" ").append(function);
  std::string t;
  t.reserve(cut.size() + message.size() + 1 + title.size() + 1 + 128 + end.size());
  t += cut;
  if (!message.empty()) {
    t += message;
    if (message.back() != '\n') t += '\n';
  }
  t.append(title).append(1, '\n');
  append_cpu_line(t, k);
  t.append(end);
  emit_report(k, Report{ReportKind::Warn, std::move(title), std::move(t)});
}

bool warn_once(Kernel& k, WarnOnce site) {
  const uint32_t bit = 1u << static_cast<unsigned>(site);
  return !(k.warned_once.fetch_or(bit, std::memory_order_relaxed) & bit);
}

bool warn_once_gfp(Kernel& k, WarnOnce site, gfp_t gfp) {
  return !(gfp & __GFP_NOWARN) && warn_once(k, site);
}

void report_panic(Kernel& k, const std::string& message) {
  k.panicked = true;
  std::string title = "Kernel panic - not syncing: " + message;
  emit_report(k, Report{ReportKind::Panic, title, title + "\n" + cpu_line(k)});
}

void report_sleep_in_atomic(Kernel& k, const char* where) {
  CpuState& c = k.cpu();
  if (c.sleep_reported) return; // ratelimited (bug.h)
  c.sleep_reported = true;
  std::string title = std::string("BUG: sleeping function called from invalid context at ") + where;
  std::string t = title + "\n";
  t += strprintf("in_atomic(): %d, irqs_disabled(): %d, non_block: 0, pid: %d, name: %s\n",
                 c.preempt_count > 0 || c.in_irq > 0, c.irq_disable_depth > 0, c.current.pid,
                 c.current.comm.c_str());
  t += strprintf("preempt_count: %x, expected: 0\n", c.preempt_count + (c.in_irq ? 0x10000 : 0));
  t += "RCU nest depth: 0, expected: 0\n";
  t += cpu_line(k);
  emit_report(k, Report{ReportKind::SleepInAtomic, title, t});
}

static std::string page_flags_text(const struct page* p) {
  static const struct {
    uint32_t bit;
    const char* name;
  } names[] = {
      {PG_reserved, "reserved"}, {PG_head, "head"},   {PG_slab, "slab"},
      {PG_lru, "lru"},           {PG_dirty, "dirty"}, {PG_referenced, "referenced"},
      {PG_active, "active"},
  };
  std::string s;
  for (auto& n : names)
    if (p->flags & n.bit) s += (s.empty() ? "" : "|") + std::string(n.name);
  return s;
}

std::string dump_page(Kernel& k, const struct page* p, const char* reason) {
  unsigned long pfn = k.mem.page_to_pfn(p);
  // The buddy and pcp states live in page_type, which overlays _mapcount: -128 means "buddy".
  int mapcount = PageBuddy(*p) ? -128 : 0;
  std::string t = strprintf("page: refcount:%d mapcount:%d mapping:0000000000000000 index:0x0 "
                            "pfn:0x%lx\n",
                            p->_refcount, mapcount, pfn);
  zone& z = page_zone(k, pfn);
  t += strprintf("flags: 0x%x(%s%szone=%d)\n", p->flags, page_flags_text(p).c_str(),
                 page_flags_text(p).empty() ? "" : "|", static_cast<int>(z.idx));
  if (PageBuddy(*p)) t += "page_type: buddy\n";
  t += strprintf("raw: %016llx %016llx\n", (unsigned long long)p->flags,
                 (unsigned long long)k.mem.page_kva(p));
  t += std::string("page dumped because: ") + reason + "\n";
  return t;
}

void report_bad_page(Kernel& k, const struct page* p, const char* reason) {
  std::string title = strprintf("BUG: Bad page state in process %s  pfn:%05lx",
                                k.cpu().current.comm.c_str(), k.mem.page_to_pfn(p));
  std::string t = title + "\n" + dump_page(k, p, reason) + "Modules linked in:\n" + cpu_line(k);
  Report r{ReportKind::BadPage, title, t};
  r.addr = uint64_t(k.mem.page_to_pfn(p)) << PAGE_SHIFT_;
  emit_report(k, std::move(r));
}

void report_page_poison(Kernel& k, const struct page* p, unsigned long offset, unsigned long len,
                        bool single_bit) {
  std::string title = single_bit ? "pagealloc: single bit error" : "pagealloc: memory corruption";
  std::string t = title + "\n";
  const uint8_t* base = static_cast<const uint8_t*>(k.mem.page_address(p));
  // print_hex_dump(KERN_ERR, "", DUMP_PREFIX_ADDRESS, 16, 1, start, end - start + 1, 1)
  for (unsigned long row = offset & ~15ul; row < offset + len; row += 16) {
    t += strprintf("%016llx:", (unsigned long long)k.mem.kva(base) + row);
    for (unsigned long i = row; i < row + 16 && i < PAGE_SIZE_; i++)
      t += strprintf(" %02x", base[i]);
    t += "\n";
  }
  t += dump_page(k, p, "pagealloc: corrupted page details") + cpu_line(k);
  Report r{ReportKind::PagePoison, title, t};
  r.addr = (uint64_t(k.mem.page_to_pfn(p)) << PAGE_SHIFT_) + offset;
  r.offset = static_cast<int64_t>(offset);
  emit_report(k, std::move(r));
}

static void append_show_mem(std::string& t, Kernel& k) {
  t += "Mem-Info:\n";
  long free = 0, free_cma = 0, free_pcp = 0;
  for (auto& z : k.zones) {
    free += z.free_pages();
    free_cma += z.vm_stat[NR_FREE_CMA_PAGES].load();
    for (unsigned c = 0; c < k.nr_cpu_slots(); c++) free_pcp += z.pcp[c].count;
  }
  appendf(t,
          "active_anon:%ld inactive_anon:%ld isolated_anon:0\n"
          " active_file:%ld inactive_file:%ld isolated_file:0\n"
          " unevictable:%ld dirty:%ld writeback:%ld\n"
          " slab_reclaimable:%ld slab_unreclaimable:%ld\n"
          " mapped:%ld shmem:%ld pagetables:%ld\n"
          " sec_pagetables:0 bounce:0\n"
          " kernel_misc_reclaimable:0\n"
          " free:%ld free_pcp:%ld free_cma:%ld\n",
          k.node_page_state(NR_ACTIVE_ANON), k.node_page_state(NR_INACTIVE_ANON),
          k.node_page_state(NR_ACTIVE_FILE), k.node_page_state(NR_INACTIVE_FILE),
          k.node_page_state(NR_UNEVICTABLE), k.node_page_state(NR_FILE_DIRTY),
          k.node_page_state(NR_WRITEBACK), k.node_page_state(NR_SLAB_RECLAIMABLE_B) >> PAGE_SHIFT_,
          k.node_page_state(NR_SLAB_UNRECLAIMABLE_B) >> PAGE_SHIFT_,
          k.node_page_state(NR_FILE_MAPPED), k.node_page_state(NR_SHMEM),
          k.node_page_state(NR_PAGETABLE), free, free_pcp, free_cma);
  for (auto& z : k.zones) {
    if (!z.populated()) continue;
    long zpcp = 0;
    for (unsigned c = 0; c < k.nr_cpu_slots(); c++) zpcp += z.pcp[c].count;
    appendf(t,
            "Node 0 %s free:%ldkB boost:%lukB min:%lukB low:%lukB high:%lukB "
            "reserved_highatomic:%luKB present:%lukB managed:%lukB free_pcp:%ldkB "
            "local_pcp:%dkB free_cma:%ldkB\n",
            z.name, z.free_pages() << 2, z.watermark_boost << 2, z._watermark[WMARK_MIN] << 2,
            z._watermark[WMARK_LOW] << 2, z._watermark[WMARK_HIGH] << 2,
            z.nr_reserved_highatomic << 2, z.present_pages << 2, z.managed_pages << 2, zpcp << 2,
            z.pcp[k.cpu_id()].count << 2, z.vm_stat[NR_FREE_CMA_PAGES].load() << 2);
    t += "lowmem_reserve[]:";
    for (int j = 0; j < MAX_NR_ZONES; j++) {
      t += ' ';
      append_udec(t, z.lowmem_reserve[j]);
    }
    t += "\n";
  }
  static const char type_letters[MIGRATE_TYPES] = {'U', 'M', 'E', 'H', 'C', 'I'};
  for (auto& z : k.zones) {
    if (!z.populated()) continue;
    std::lock_guard<std::mutex> guard(z.lock);
    t += "Node 0 ";
    t += z.name;
    t += ": ";
    unsigned long total = 0;
    for (unsigned o = 0; o <= MAX_PAGE_ORDER_; o++) { // "%lu*%lukB ", then "(UM) " if any
      const free_area& a = z.free_area_[o];
      append_udec(t, a.nr_free);
      t += '*';
      append_udec(t, 4ul << o);
      t += "kB ";
      total += a.nr_free << o;
      bool any = false;
      for (int mt = 0; mt < MIGRATE_TYPES; mt++)
        if (a.nr_free_mt[mt]) {
          t += any ? "" : "(";
          t += type_letters[mt];
          any = true;
        }
      if (any) t += ") ";
    }
    appendf(t, "= %lukB\n", total << 2);
  }
  unsigned long ram = 0;
  for (auto& z : k.zones) ram += z.present_pages;
  appendf(t, "%ld total pagecache pages\n", k.node_page_state(NR_FILE_PAGES));
  appendf(t,
          "0 pages in swap cache\nFree swap  = 0kB\n"
          "Total swap = 0kB\n%lu pages RAM\n0 pages HighMem/MovableOnly\n"
          "%lu pages reserved\n",
          ram,
          ram - (k.zones[0].managed_pages + k.zones[1].managed_pages + k.zones[2].managed_pages +
                 k.zones[3].managed_pages));
}

std::string show_mem(Kernel& k) {
  std::string t;
  t.reserve(2048);
  append_show_mem(t, k);
  return t;
}

// The report is built in one buffer: a fuzzed gfp that fails warns on every attempt.
void warn_alloc(Kernel& k, gfp_t gfp, unsigned order, const char* what) {
  std::string title = k.cpu().current.comm + ": ";
  if (what) {
    title += what;
  } else {
    title += "page allocation failure: order:";
    append_udec(title, order);
  }
  title += ", mode:";
  append_hex(title, gfp);
  title.append("(").append(gfp_names(gfp)).append("), nodemask=(null)");
  std::string t;
  t.reserve(title.size() + 2048);
  t.append(title).append(",cpuset=/,mems_allowed=0\n");
  append_cpu_line(t, k);
  append_show_mem(t, k);
  emit_report(k, Report{ReportKind::AllocFail, std::move(title), std::move(t)});
}

} // namespace kmm
