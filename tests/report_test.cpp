// Tests for allocator/src/report.cpp: the reporting path (dmesg, kmm::Report, the fault
// policy), the generic WARN/panic/sleep-in-atomic texts, dump_page and show_mem, and that
// panic_on_warn turns a bug report into abort() while allocation failures never do.
#include <gtest/gtest.h>

#include <climits>

#include "bug.h"
#include "kernel.h"
#include "page_test_util.h"

using kmm::Machine;

TEST(Report, KindNames) {
  EXPECT_STREQ(kmm::report_kind_name(kmm::ReportKind::Warn), "warn");
  EXPECT_STREQ(kmm::report_kind_name(kmm::ReportKind::BadPage), "bad-page");
  EXPECT_STREQ(kmm::report_kind_name(kmm::ReportKind::PagePoison), "page-poison");
  EXPECT_STREQ(kmm::report_kind_name(kmm::ReportKind::SleepInAtomic), "sleep-in-atomic");
  EXPECT_STREQ(kmm::report_kind_name(kmm::ReportKind::AllocFail), "alloc-fail");
  EXPECT_STREQ(kmm::report_kind_name(kmm::ReportKind::Oom), "oom");
  EXPECT_STREQ(kmm::report_kind_name(kmm::ReportKind::SlubDebug), "slub");
  EXPECT_STREQ(kmm::report_kind_name(kmm::ReportKind::Kasan), "kasan");
  EXPECT_STREQ(kmm::report_kind_name(kmm::ReportKind::Kfence), "kfence");
  EXPECT_STREQ(kmm::report_kind_name(kmm::ReportKind::Panic), "panic");
  EXPECT_STREQ(kmm::report_kind_name(kmm::ReportKind::PageFault), "page-fault");
  EXPECT_STREQ(kmm::report_kind_name(static_cast<kmm::ReportKind>(99)), "?");
  EXPECT_FALSE(kmm::report_is_bug(kmm::ReportKind::AllocFail));
  EXPECT_FALSE(kmm::report_is_bug(kmm::ReportKind::Oom));
  EXPECT_TRUE(kmm::report_is_bug(kmm::ReportKind::Warn));
  EXPECT_TRUE(kmm::report_is_bug(kmm::ReportKind::BadPage));
}

TEST(Report, StrprintfHandlesLongOutput) {
  std::string big(2000, 'x');
  EXPECT_EQ(kmm::strprintf("<%s|%d>", big.c_str(), 42), "<" + big + "|42>");
  EXPECT_EQ(kmm::strprintf("%05lx", 0x2bcul), "002bc");
}

// The printf-free number formatting of the hot report texts: what %ld, %lu and %#lx print.
TEST(Report, NumbersAppendAsPrintfWouldPrintThem) {
  for (long v : {0l, 7l, -1l, 1234567l, LONG_MIN, LONG_MAX}) {
    std::string out = "x";
    kmm::append_dec(out, v);
    EXPECT_EQ(out, kmm::strprintf("x%ld", v));
  }
  for (unsigned long v : {0ul, 9ul, 0xcc0ul, ULONG_MAX}) {
    std::string dec, hex;
    kmm::append_udec(dec, v);
    kmm::append_hex(hex, v);
    EXPECT_EQ(dec, kmm::strprintf("%lu", v));
    EXPECT_EQ(hex, kmm::strprintf("%#lx", v));
  }
}

TEST(Report, WarnGoesToDmesgAndReports) {
  auto m = Machine::boot("mem=16M");
  kmm::Kernel& k = m->kernel();
  kmm::report_warn(k, "mm/test.c", "test_fn", "something odd");
  ASSERT_EQ(m->reports().size(), 1u);
  const kmm::Report& r = m->reports()[0];
  EXPECT_EQ(r.kind, kmm::ReportKind::Warn);
  EXPECT_EQ(r.title, "WARNING: CPU: 0 PID: 1 at mm/test.c test_fn");
  EXPECT_EQ(r.text, "------------[ cut here ]------------\n"
                    "something odd\n"
                    "WARNING: CPU: 0 PID: 1 at mm/test.c test_fn\n"
                    "CPU: 0 PID: 1 Comm: kmm Not tainted 6.12.0-kmm #1\n"
                    "---[ end trace 0000000000000000 ]---\n");
  // Every line reaches dmesg with a timestamp.
  EXPECT_NE(m->dmesg().find("] something odd\n"), std::string::npos);
  EXPECT_NE(m->dmesg().find("] ---[ end trace 0000000000000000 ]---\n"), std::string::npos);
  m->clear_reports();
  EXPECT_TRUE(m->reports().empty());
  EXPECT_NE(m->dmesg().find("something odd"), std::string::npos); // the log keeps it
}

TEST(Report, CpuLineNamesTheCurrentCpuAndTask) {
  auto m = Machine::boot("mem=16M nr_cpus=4");
  kmm::CpuScope scope(*m, 3);
  m->kernel().cpu().current.comm = "probe";
  m->kernel().cpu().current.pid = 77;
  EXPECT_EQ(kmm::cpu_line(m->kernel()), "CPU: 3 PID: 77 Comm: probe Not tainted 6.12.0-kmm #1\n");
  EXPECT_EQ(alloc_pages(GFP_KERNEL, 12), nullptr);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title, "WARNING: CPU: 3 PID: 77 at mm/page_alloc.c __alloc_pages");
  __free_pages(pfn_to_page(0), 0);
  EXPECT_EQ(m->reports()[1].title, "BUG: Bad page state in process probe  pfn:00000");
}

TEST(Report, DumpPageOfAnAllocatedAndAFreePage) {
  auto m = Machine::boot("mem=4M nr_cpus=1 kmm.pcp=0");
  kmm::MachineScope scope(*m);
  struct page* p = alloc_pages(GFP_KERNEL | __GFP_COMP, 1);
  ASSERT_EQ(page_to_pfn(p), 512u);
  EXPECT_EQ(kmm::dump_page(m->kernel(), p, "testing"),
            "page: refcount:1 mapcount:0 mapping:0000000000000000 index:0x0 pfn:0x200\n"
            "flags: 0x14(head|zone=2)\n"
            "raw: 0000000000000014 ffffea0000008000\n"
            "page dumped because: testing\n");
  EXPECT_EQ(kmm::dump_page(m->kernel(), pfn_to_page(514), "free"),
            "page: refcount:0 mapcount:-128 mapping:0000000000000000 index:0x0 pfn:0x202\n"
            "flags: 0x0(zone=2)\n"
            "page_type: buddy\n"
            "raw: 0000000000000000 ffffea0000008080\n"
            "page dumped because: free\n");
  __free_pages(p, 1);
}

TEST(Report, ShowMemSumsTheFreeLists) {
  auto m = Machine::boot("mem=4M nr_cpus=1 kmm.pcp=0");
  const std::string t = kmm::show_mem(m->kernel());
  EXPECT_EQ(t.rfind("Mem-Info:\n", 0), 0u);
  EXPECT_NE(t.find(" free:1023 free_pcp:0 free_cma:0\n"), std::string::npos);
  EXPECT_NE(t.find("Node 0 DMA32: 0*4kB 0*8kB 0*16kB 0*32kB 0*64kB 0*128kB 1*256kB (M) "
                   "1*512kB (M) 1*1024kB (M) 0*2048kB 0*4096kB = 1792kB\n"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("Node 0 Normal: 0*4kB 0*8kB 0*16kB 0*32kB 0*64kB 0*128kB 0*256kB 0*512kB "
                   "0*1024kB 1*2048kB (M) 0*4096kB = 2048kB\n"),
            std::string::npos);
  EXPECT_NE(t.find("1024 pages RAM\n"), std::string::npos);
  EXPECT_NE(t.find("1 pages reserved\n"), std::string::npos);
}

TEST(Report, PanicMarksTheMachine) {
  auto m = Machine::boot("mem=16M");
  kmm::report_panic(m->kernel(), "testing");
  EXPECT_TRUE(m->kernel().panicked);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].kind, kmm::ReportKind::Panic);
  EXPECT_EQ(m->reports()[0].title, "Kernel panic - not syncing: testing");
}

TEST(ReportDeathTest, PanicOnWarnAbortsAfterPrinting) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto m = Machine::boot("mem=16M panic_on_warn=1");
        kmm::MachineScope scope(*m);
        alloc_pages(GFP_KERNEL, 11);
      },
      "order 11 > MAX_PAGE_ORDER \\(10\\)\n(.|\n)*Kernel panic - not syncing: kmm: fatal report");
}

TEST(Report, PanicOnWarnSparesAllocationFailures) {
  auto m = Machine::boot("mem=4M panic_on_warn=1");
  kmm::MachineScope scope(*m);
  EXPECT_EQ(alloc_pages(GFP_KERNEL, 10), nullptr); // a warning, not a bug: no abort
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].kind, kmm::ReportKind::AllocFail);
}
