// Reporting: one named function per kind of report, grouped by layer, all going through
// emit_report(), which writes the kernel's wording to dmesg, appends a kmm::Report and applies
// the fault policy:
//  - panic_on_warn=1: every bug report (WARN, BUG, KASAN, KFENCE, SLUB, bad page, panic) ends
//    in abort() after the text is printed to stderr — what a fuzzer needs to record a crash.
//  - kasan.fault=panic: KASAN and KFENCE reports abort().
//  - otherwise the machine continues, as with a multi-shot KASAN kernel, so tests can assert on
//    the reports. Allocation-failure warnings and OOM kills are not bugs and never abort.
#pragma once

#include <cstdarg>
#include <string>

#include "kmm/gfp.h"
#include "kmm/report.h"

struct page;

namespace kmm {

struct Kernel;

// The common path. `text` is the whole report, one '\n' per line; its first line is the title
// unless `title` is given.
void emit_report(Kernel& k, Report r);
bool report_is_bug(ReportKind kind);

// printf-style helper used by every report builder.
std::string strprintf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// The same, appended to out (no string of its own: a long report is built in one buffer).
void appendf(std::string& out, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// Numbers appended to out without printf, for the texts fuzzing builds by the thousand (every
// WARN, every allocation failure): printf parses its format at each call, and under ASan its
// interceptor parses it once more. append_hex is %#lx: "0" for zero, else "0x" and the digits.
void append_dec(std::string& out, long v);
void append_udec(std::string& out, unsigned long v);
void append_hex(std::string& out, unsigned long v);

// The "CPU: 0 PID: 1 Comm: kmm Not tainted" line of every report (appended to out).
std::string cpu_line(Kernel& k);
void append_cpu_line(std::string& out, Kernel& k);

// --- generic ---
// WARN(): "WARNING: CPU: 0 PID: 1 at <file> <function>" plus the message.
void report_warn(Kernel& k, const char* file, const char* function, const std::string& message);
// WARN_ON_ONCE(): the kernel keeps a static __warned per call site, so a site warns once per
// boot. kmm keeps one bit per site in the Kernel (Kernel::warned_once; cleared when a machine is
// restored to its boot image, which was taken before any report). warn_once() returns true the
// first time only: the caller then builds and reports its WARN. WARN_ON_ONCE_GFP sites use
// warn_once_gfp(): a __GFP_NOWARN request neither warns nor uses the warning up.
enum class WarnOnce : unsigned {
  AllocOrder,      // __alloc_pages: order > MAX_PAGE_ORDER (kmalloc_large reaches the same site)
  AllocExactGfp,   // alloc_pages_exact: __GFP_COMP or __GFP_HIGHMEM
  NofailNoReclaim, // __alloc_pages_slowpath: __GFP_NOFAIL without __GFP_DIRECT_RECLAIM
  NofailCostly,    // __alloc_pages_slowpath: __GFP_NOFAIL for a costly order
  VmallocZero,     // __vmalloc_node_range: a size of 0
  KvmallocIntMax,  // __kvmalloc_node: a size above INT_MAX (unless __GFP_NOWARN)
  DmaAllocComp,    // dma_alloc_attrs: __GFP_COMP
};
bool warn_once(Kernel& k, WarnOnce site);
bool warn_once_gfp(Kernel& k, WarnOnce site, gfp_t gfp);
// panic(): "Kernel panic - not syncing: <message>".
void report_panic(Kernel& k, const std::string& message);
// __might_resched(): "BUG: sleeping function called from invalid context at <where>". The kernel
// prints it at most once a second (prev_jiffy + HZ): a vmalloc of a hundred pages under a
// spinlock is one report, not a hundred. kmm has no clock, so its ratelimit is the atomic
// section: once per CPU until that CPU's atomic_depth is back to zero (CpuState::sleep_reported).
void report_sleep_in_atomic(Kernel& k, const char* where);

// --- page allocator ---
// bad_page(): "BUG: Bad page state in process <comm>  pfn:<pfn>" plus dump_page().
void report_bad_page(Kernel& k, const struct page* p, const char* reason);
// check_poison_mem(): "pagealloc: memory corruption" / "pagealloc: single bit error".
void report_page_poison(Kernel& k, const struct page* p, unsigned long offset, unsigned long len,
                        bool single_bit);
// warn_alloc(): "<comm>: page allocation failure: order:N, mode:0x..(...)" plus show_mem().
void warn_alloc(Kernel& k, gfp_t gfp, unsigned order, const char* what = nullptr);

// dump_page(): the "page:... refcount:... pfn:..." lines.
std::string dump_page(Kernel& k, const struct page* p, const char* reason);
// show_mem(): Mem-Info and the per-zone free lists, as in OOM and allocation-failure reports.
std::string show_mem(Kernel& k);

} // namespace kmm
