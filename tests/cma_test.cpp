// Tests for allocator/src/cma.cpp: the boot reservation, movable borrowing, cma_alloc with
// migration, pinned pages, release, /proc/cma, the debugfs/sysfs files and validate.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "bug.h"
#include "cma.h"
#include "kernel.h"
#include "kmm/linux.h"
#include "kmm/pressure.h"
#include "kmm/validate.h"
#include "page_alloc.h"
#include "pcp.h"
#include "task.h"
#include "test_util.h"

using kmm::Machine;

namespace {

struct CmaTest : ::testing::Test {
  std::unique_ptr<Machine> m = Machine::boot("mem=32M cma=8M");
  kmm::MachineScope scope{*m};
  kmm::Kernel& k = m->kernel();
  // The pfns of a task's anonymous pages, by index.
  std::vector<uint32_t> anon(int pid) { return k.tasks->tasks.at(pid)->anon; }
  unsigned char* page_of(uint32_t pfn) {
    return static_cast<unsigned char*>(page_address(pfn_to_page(pfn)));
  }
  struct cma* area() {
    return dev_get_cma_area(nullptr);
  }
  unsigned long base() { return area()->base_pfn; }
};

TEST_F(CmaTest, BootReservesTopOfRamAsCmaPageblocks) {
  EXPECT_NE(m->dmesg().find("cma: Reserved 8 MiB at 0x0000000001800000 on node -1"),
            std::string::npos);
  EXPECT_EQ(base(), 0x1800u);
  EXPECT_EQ(area()->count, 2048u);
  EXPECT_EQ(kmm::test::proc_value(*m, "/proc/meminfo", "CmaTotal"), 8192);
  EXPECT_EQ(kmm::test::proc_value(*m, "/proc/meminfo", "CmaFree"), 8192);
  EXPECT_EQ(m->proc_read("/sys/kernel/debug/cma/reserved/base_pfn"), "6144\n");
  auto rows = kmm::test::proc_rows(*m, "/proc/pagetypeinfo");
  bool found = false;
  for (auto& r : rows)
    if (r.size() == 10 && r[0] == "Node" && r[3] == "Normal") { // the block-count table
      EXPECT_EQ(r[8], "4");                                     // 4 CMA pageblocks of 2 MiB
      found = true;
    }
  EXPECT_TRUE(found);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST_F(CmaTest, BadReservationsAreBootErrors) {
  EXPECT_THROW(Machine::boot("mem=32M cma=64M"), kmm::BootError);
  EXPECT_THROW(Machine::boot("mem=32M cma=8M@1M"), kmm::BootError);
  EXPECT_THROW(Machine::boot("mem=32M cma=8M@14M"), kmm::BootError); // straddles DMA32/Normal
  EXPECT_THROW(Machine::boot("mem=32M cma=eight"), kmm::BootError);
  auto fixed = Machine::boot("mem=32M cma=4M@16M");
  EXPECT_NE(fixed->dmesg().find("cma: Reserved 4 MiB at 0x0000000001000000"), std::string::npos);
}

TEST_F(CmaTest, UnmovableAllocationsNeverUseCma) {
  std::vector<struct page*> pages;
  while (struct page* p = alloc_pages(GFP_KERNEL | __GFP_NOWARN | __GFP_NORETRY, 0)) {
    EXPECT_FALSE(page_to_pfn(p) >= base() && page_to_pfn(p) < base() + 2048) << page_to_pfn(p);
    pages.push_back(p);
  }
  EXPECT_GT(pages.size(), 4000u);
  EXPECT_TRUE(kmm::validate(*m).empty());
  for (auto* p : pages) __free_page(p);
}

TEST_F(CmaTest, MovableAllocationsBorrowCmaAndCmaAllocMigratesThem) {
  // A user task fills most of the machine; its pages land in the CMA area too. Each page gets
  // a pattern derived from its index, to checksum after migration.
  int pid = kmm::task_spawn(*m, "filler");
  ASSERT_GT(pid, 0);
  ASSERT_EQ(kmm::task_touch(*m, pid, 5000), 5000);
  std::vector<uint32_t> before = anon(pid);
  unsigned long in_cma = 0;
  for (size_t i = 0; i < before.size(); i++) {
    std::memset(page_of(before[i]), static_cast<int>(i * 7 + 1), PAGE_SIZE);
    if (before[i] >= base() && before[i] < base() + 2048) in_cma++;
  }
  EXPECT_GT(in_cma, 1000u);
  struct page* buf = cma_alloc(area(), 512, 9, false);
  ASSERT_NE(buf, nullptr) << m->dmesg();
  EXPECT_EQ(page_to_pfn(buf) % 512, 0u);
  std::vector<uint32_t> after = anon(pid);
  ASSERT_EQ(after.size(), before.size());
  unsigned long moved = 0;
  for (size_t i = 0; i < after.size(); i++) {
    EXPECT_FALSE(after[i] >= page_to_pfn(buf) && after[i] < page_to_pfn(buf) + 512);
    moved += after[i] != before[i];
    const unsigned char* b = page_of(after[i]);
    ASSERT_EQ(b[0], static_cast<unsigned char>(i * 7 + 1)) << i;
    ASSERT_EQ(b[PAGE_SIZE - 1], static_cast<unsigned char>(i * 7 + 1)) << i;
  }
  EXPECT_GT(moved, 0u);
  EXPECT_EQ(kmm::test::proc_value(*m, "/proc/vmstat", "pgmigrate_success"),
            static_cast<long>(moved));
  EXPECT_EQ(m->proc_read("/sys/kernel/debug/cma/reserved/used"), "512\n");
  auto errors = kmm::validate(*m);
  EXPECT_TRUE(errors.empty()) << errors[0];
  EXPECT_TRUE(cma_release(area(), buf, 512));
  EXPECT_EQ(kmm::task_exit(*m, pid), 0);
  EXPECT_TRUE(kmm::validate(*m).empty());
  // Freed pages sit on the pcp lists, which CmaFree does not count, until drained.
  kmm::drain_all_pages(k, nullptr);
  EXPECT_EQ(kmm::test::proc_value(*m, "/proc/meminfo", "CmaFree"), 8192);
}

TEST_F(CmaTest, PinnedPageForcesAnotherRange) {
  int pid = kmm::task_spawn(*m, "pinner");
  // Touch until one of the task's pages is among the first 16 pages of the area.
  uint32_t pinned = 0;
  while (!pinned) {
    ASSERT_EQ(kmm::task_touch(*m, pid, 1), 1);
    uint32_t pfn = anon(pid).back();
    if (pfn >= base() && pfn < base() + 16) pinned = pfn;
  }
  get_page(pfn_to_page(pinned));
  struct page* buf = cma_alloc(area(), 16, 4, false);
  ASSERT_NE(buf, nullptr);
  EXPECT_GE(page_to_pfn(buf), base() + 16); // the first range was busy
  EXPECT_EQ(page_to_pfn(buf) % 16, 0u);
  EXPECT_EQ(anon(pid).back(), pinned); // not migrated
  EXPECT_GT(kmm::test::proc_value(*m, "/proc/vmstat", "pgmigrate_fail"), 0);
  EXPECT_TRUE(kmm::validate(*m).empty());
  cma_release(area(), buf, 16);
  put_page(pfn_to_page(pinned));
  kmm::task_exit(*m, pid);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST_F(CmaTest, UnmovablePageRefusesTheRangeBeforeAnyMigration) {
  // has_unmovable_pages(): isolating a range that holds a page which cannot move (here a kernel
  // page allocated with __GFP_MOVABLE: not on an LRU, no owner to update, the classic way a
  // driver breaks CMA) fails at once, before any of the range's movable pages is migrated for
  // nothing.
  std::vector<struct page*> outside;
  struct page* stuck = nullptr;
  while (!stuck) {
    struct page* p = alloc_pages(GFP_HIGHUSER_MOVABLE | __GFP_NOWARN, 0);
    ASSERT_NE(p, nullptr);
    if (page_to_pfn(p) >= base() && page_to_pfn(p) < base() + 2048) stuck = p;
    else outside.push_back(p);
  }
  // A task whose pages also land in the area: movable pages the failed cma_alloc must not touch.
  int pid = kmm::task_spawn(*m, "bystander");
  unsigned long in_cma = 0;
  for (int i = 0; i < 4096 && in_cma < 8; i++) {
    ASSERT_EQ(kmm::task_touch(*m, pid, 1), 1);
    uint32_t pfn = anon(pid).back();
    if (pfn >= base() && pfn < base() + 2048) in_cma++;
  }
  ASSERT_GE(in_cma, 8u);
  std::vector<uint32_t> before = anon(pid);
  long moved = kmm::test::proc_value(*m, "/proc/vmstat", "pgmigrate_success");
  long failed = kmm::test::proc_value(*m, "/proc/vmstat", "pgmigrate_fail");
  EXPECT_EQ(cma_alloc(area(), 2048, 0, true), nullptr);
  EXPECT_EQ(kmm::test::proc_value(*m, "/proc/vmstat", "pgmigrate_success"), moved);
  EXPECT_EQ(kmm::test::proc_value(*m, "/proc/vmstat", "pgmigrate_fail"), failed);
  EXPECT_EQ(anon(pid), before);
  // validate() flags the page itself: a CMA pageblock may hold only pages that can move.
  auto errors = kmm::validate(*m);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("holds an unmovable kernel page"), std::string::npos) << errors[0];
  kmm::task_exit(*m, pid);
  __free_page(stuck);
  for (struct page* p : outside) __free_page(p);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST_F(CmaTest, FailureIsReportedWithTheAreaMap) {
  struct page* a = cma_alloc(area(), 2048, 0, false);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(cma_alloc(area(), 1, 0, false), nullptr);
  EXPECT_EQ(kmm::test::count_reports(
                *m, "cma_alloc: reserved: alloc failed, req-size: 1 pages, ret: -12"),
            1u);
  EXPECT_NE(m->reports().back().text.find("=> 0 free of 2048 total pages"), std::string::npos);
  EXPECT_EQ(cma_alloc(area(), 1, 0, true), nullptr); // no_warn
  EXPECT_EQ(m->reports().size(), 1u);
  EXPECT_TRUE(cma_release(area(), a, 2048));
  EXPECT_FALSE(cma_release(area(), a, 1)); // not handed out any more: a bad page report
  EXPECT_EQ(kmm::test::count_reports(*m, "BUG: Bad page state"), 1u);
  EXPECT_EQ(m->proc_read("/sys/kernel/mm/cma/reserved/alloc_pages_success"), "2048\n");
  EXPECT_EQ(m->proc_read("/sys/kernel/mm/cma/reserved/alloc_pages_fail"), "2\n");
}

TEST_F(CmaTest, AlignmentIsHonoured) {
  struct page* one = cma_alloc(area(), 1, 0, false);
  struct page* aligned = cma_alloc(area(), 16, 4, false);
  ASSERT_NE(aligned, nullptr);
  EXPECT_EQ(page_to_pfn(one), base());
  EXPECT_EQ(page_to_pfn(aligned), base() + 16); // bits 1..15 are skipped for alignment
  cma_release(area(), aligned, 16);
  cma_release(area(), one, 1);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

// An alignment above MAX_PAGE_ORDER is only a bitmap mask to the kernel: the area's base pfn
// 0x1800 is 2^11-aligned, so order 11 fits at the base, order 12 fits nowhere (an ordinary
// failure, reported), and so does order 40. kmm refused every align above 10 without a word.
TEST_F(CmaTest, AlignmentAboveMaxPageOrderIsOnlyAMask) {
  struct page* p = cma_alloc(area(), 1, 11, false);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(page_to_pfn(p), base());
  EXPECT_TRUE(cma_release(area(), p, 1));
  EXPECT_TRUE(m->reports().empty());
  EXPECT_EQ(cma_alloc(area(), 1, 12, false), nullptr);
  EXPECT_EQ(cma_alloc(area(), 1, 40, false), nullptr);
  EXPECT_EQ(cma_alloc(area(), 1, 63, true), nullptr); // no_warn
  EXPECT_EQ(kmm::test::count_reports(
                *m, "cma_alloc: reserved: alloc failed, req-size: 1 pages, ret: -12"),
            2u);
  EXPECT_EQ(m->reports().size(), 2u);
  EXPECT_EQ(m->proc_read("/sys/kernel/mm/cma/reserved/alloc_pages_fail"), "3\n");
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST_F(CmaTest, ProcCmaSummary) {
  struct page* a = cma_alloc(area(), 100, 0, false);
  EXPECT_EQ(m->proc_read("/proc/cma"),
            "name           base_pfn      count       used   maxchunk\n"
            "reserved         0x1800       2048        100       1948\n");
  cma_release(area(), a, 100);
}

TEST_F(CmaTest, SysfsCountersAndTheAreaMapOnFailure) {
  struct page* a = cma_alloc(area(), 100, 0, false);
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(cma_release(area(), a + 60, 40));
  EXPECT_EQ(m->proc_read("/sys/kernel/mm/cma/reserved/total_pages"), "2048\n");
  EXPECT_EQ(m->proc_read("/sys/kernel/mm/cma/reserved/available_pages"), "1988\n");
  EXPECT_EQ(m->proc_read("/sys/kernel/mm/cma/reserved/release_pages_success"), "40\n");
  // 1988 pages free in one run after the 60 in use: 2000 cannot fit.
  EXPECT_EQ(cma_alloc(area(), 2000, 0, false), nullptr);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title,
            "cma_alloc: reserved: alloc failed, req-size: 2000 pages, ret: -12");
  EXPECT_NE(m->reports()[0].text.find(
                "number of available pages: 1988@60=> 1988 free of 2048 total pages\n"),
            std::string::npos)
      << m->reports()[0].text;
  EXPECT_TRUE(cma_release(area(), a, 60));
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST_F(CmaTest, ReleaseRunningPastTheAreaIsABug) {
  // The last page of the area, released as two pages.
  EXPECT_FALSE(cma_release(area(), pfn_to_page(base() + 2047), 2));
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title, "WARNING: CPU: 0 PID: 1 at mm/cma.c cma_release");
  EXPECT_NE(m->reports()[0].text.find("VM_BUG_ON(pfn + count > cma->base_pfn + cma->count)\n"),
            std::string::npos);
  EXPECT_EQ(m->proc_read("/sys/kernel/mm/cma/reserved/release_pages_success"), "0\n");
  EXPECT_TRUE(kmm::validate(*m).empty());
}

// A count so large that pfn + count wraps is past the area too: the check used to wrap with it,
// pass, and walk the bitmap from an allocated range into pages never handed out (or past the
// bitmap's end when the range is the area's last).
TEST_F(CmaTest, ReleaseOfAHugeCountIsABugNotAWrap) {
  struct page* p = cma_alloc(area(), 4, 0, false);
  ASSERT_NE(p, nullptr);
  for (unsigned long count : {~0ul, ~0ul - 1, 1ul << 63}) {
    SCOPED_TRACE(count);
    m->clear_reports();
    EXPECT_FALSE(cma_release(area(), p, count));
    ASSERT_EQ(m->reports().size(), 1u);
    EXPECT_EQ(m->reports()[0].title, "WARNING: CPU: 0 PID: 1 at mm/cma.c cma_release");
  }
  EXPECT_TRUE(cma_release(area(), p, 4));
  EXPECT_EQ(m->proc_read("/sys/kernel/mm/cma/reserved/release_pages_success"), "4\n");
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST_F(CmaTest, ValidateNamesAForeignPageblockAndAStrayBitmapBit) {
  k.mem.set_pageblock_migratetype(base(), kmm::MIGRATE_MOVABLE);
  auto e = kmm::validate(*m);
  EXPECT_NE(std::find(e.begin(), e.end(),
                      kmm::strprintf("cma: reserved: pageblock at pfn 0x%lx is Movable, not CMA",
                                     base())),
            e.end());
  k.mem.set_pageblock_migratetype(base(), kmm::MIGRATE_CMA);
  area()->bitmap[5] = true; // handed out, says the bitmap; the page is free
  e = kmm::validate(*m);
  EXPECT_EQ(
      e, std::vector<std::string>{kmm::strprintf(
             "cma: reserved: pfn 0x%lx bitmap bit 1 but the page is not handed out", base() + 5)});
  area()->bitmap[5] = false;
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST_F(CmaTest, NoMigrationTargetMeansBusyThenFailure) {
  // A task's pages borrow the CMA area; then every page outside it is taken by unmovable
  // allocations, so no migration target exists: cma_alloc gives up with -EBUSY (printed -ENOMEM).
  int pid = kmm::task_spawn(*m, "filler");
  ASSERT_EQ(kmm::task_touch(*m, pid, 3000), 3000);
  std::vector<uint32_t> before = anon(pid);
  size_t in_cma = 0;
  for (uint32_t pfn : before) in_cma += pfn >= base() && pfn < base() + 2048;
  ASSERT_GT(in_cma, 0u);
  std::vector<struct page*> pinned;
  while (struct page* p = alloc_pages(GFP_ATOMIC | __GFP_MEMALLOC | __GFP_NOWARN, 0))
    pinned.push_back(p);
  kmm::drain_all_pages(k, nullptr);
  while (struct page* p = alloc_pages(GFP_ATOMIC | __GFP_MEMALLOC | __GFP_NOWARN, 0))
    pinned.push_back(p);
  EXPECT_EQ(cma_alloc(area(), 2048, 0, false), nullptr);
  EXPECT_EQ(kmm::test::count_reports(
                *m, "cma_alloc: reserved: alloc failed, req-size: 2048 pages, ret: -12"),
            1u);
  EXPECT_GT(kmm::test::proc_value(*m, "/proc/vmstat", "pgmigrate_fail"), 0);
  EXPECT_EQ(anon(pid), before); // nothing moved
  EXPECT_EQ(m->proc_read("/sys/kernel/debug/cma/reserved/used"), "0\n");
  for (struct page* p : pinned) __free_page(p);
  EXPECT_TRUE(kmm::validate(*m).empty());
  EXPECT_EQ(kmm::task_exit(*m, pid), 0);
}

TEST_F(CmaTest, CmaGetSize) {
  EXPECT_EQ(cma_get_size(area()), 8ul << 20);
  EXPECT_EQ(cma_get_size(nullptr), 0u);
}

} // namespace
