// Tests for allocator/src/cma.cpp: the boot reservation, movable borrowing, cma_alloc with
// migration, pinned pages, release, /proc/cma, the debugfs/sysfs files and validate.
#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "cma.h"
#include "kernel.h"
#include "kmm/linux.h"
#include "kmm/validate.h"
#include "page_alloc.h"
#include "pcp.h"
#include "test_util.h"

using kmm::Machine;

namespace {

// A stand-in page owner for migration: "user pages" recorded in a table the hook updates, so
// the CMA mechanism is tested on its own (the task layer has its own migration tests).
std::map<struct page*, int>* g_owned;

bool test_migrate(kmm::Kernel& k, struct page* old_page, struct page* new_page) {
  auto it = g_owned->find(old_page);
  if (it == g_owned->end()) return false;
  std::memcpy(k.mem.page_address(new_page), k.mem.page_address(old_page), PAGE_SIZE);
  int tag = it->second;
  g_owned->erase(it);
  (*g_owned)[new_page] = tag;
  return true;
}

struct CmaTest : ::testing::Test {
  std::unique_ptr<Machine> m = Machine::boot("mem=32M cma=8M");
  kmm::MachineScope scope{*m};
  std::map<struct page*, int> owned;
  kmm::Kernel& k = m->kernel();
  void SetUp() override {
    g_owned = &owned;
    k.hooks.migrate_page = test_migrate;
  }
  struct cma* area() { return dev_get_cma_area(nullptr); }
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
      EXPECT_EQ(r[8], "4"); // 4 CMA pageblocks of 2 MiB
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
  // Fill the machine with movable "user pages" carrying a checksum pattern.
  std::vector<struct page*> user;
  for (int i = 0;; i++) {
    struct page* p = kmm::__alloc_pages(k, GFP_HIGHUSER_MOVABLE | __GFP_NOWARN | __GFP_NORETRY, 0,
                                        kmm::PageOwner::Anon);
    if (!p) break;
    std::memset(page_address(p), i & 0xff, PAGE_SIZE);
    owned[p] = i;
    if (owned.size() > 5000) break;
  }
  unsigned long in_cma = 0;
  for (auto& [p, tag] : owned)
    if (page_to_pfn(p) >= base() && page_to_pfn(p) < base() + 2048) in_cma++;
  EXPECT_GT(in_cma, 1000u);
  // Free some non-CMA user pages so migration has somewhere to go.
  int freed = 0;
  for (auto it = owned.begin(); it != owned.end() && freed < 600;) {
    if (page_to_pfn(it->first) < base()) {
      __free_page(it->first);
      it = owned.erase(it);
      freed++;
    } else {
      ++it;
    }
  }
  struct page* buf = cma_alloc(area(), 512, 9, false);
  ASSERT_NE(buf, nullptr) << m->dmesg();
  EXPECT_EQ((page_to_pfn(buf) - 0) % 512, 0u);
  for (unsigned long i = 0; i < 512; i++) EXPECT_EQ(owned.count(buf + i), 0u);
  // Every migrated page kept its bytes.
  for (auto& [p, tag] : owned) {
    auto* b = static_cast<unsigned char*>(page_address(p));
    ASSERT_EQ(b[0], tag & 0xff);
    ASSERT_EQ(b[PAGE_SIZE - 1], tag & 0xff);
  }
  EXPECT_GT(kmm::test::proc_value(*m, "/proc/vmstat", "pgmigrate_success"), 0);
  EXPECT_EQ(m->proc_read("/sys/kernel/debug/cma/reserved/used"), "512\n");
  EXPECT_TRUE(kmm::validate(*m).empty()) << kmm::validate(*m)[0];
  EXPECT_TRUE(cma_release(area(), buf, 512));
  EXPECT_TRUE(kmm::validate(*m).empty());
  for (auto& [p, tag] : owned) __free_page(p);
  EXPECT_TRUE(kmm::validate(*m).empty());
  // Freed pages sit on the pcp lists, which CmaFree does not count, until drained.
  kmm::drain_all_pages(k, nullptr);
  EXPECT_EQ(kmm::test::proc_value(*m, "/proc/meminfo", "CmaFree"), 8192);
}

TEST_F(CmaTest, PinnedPageForcesAnotherRange) {
  // One movable page at the very start of the area, pinned with get_page.
  std::vector<struct page*> filler;
  struct page* pinned = nullptr;
  while (!pinned) {
    struct page* p = kmm::__alloc_pages(k, GFP_HIGHUSER_MOVABLE, 0, kmm::PageOwner::Anon);
    ASSERT_NE(p, nullptr);
    owned[p] = 1;
    if (page_to_pfn(p) >= base() && page_to_pfn(p) < base() + 16) pinned = p;
    else filler.push_back(p);
  }
  get_page(pinned);
  struct page* buf = cma_alloc(area(), 16, 4, false);
  ASSERT_NE(buf, nullptr);
  EXPECT_GE(page_to_pfn(buf), base() + 16); // the first range was busy
  EXPECT_EQ(page_to_pfn(buf) % 16, 0u);
  EXPECT_EQ(owned.count(pinned), 1u);        // not migrated
  EXPECT_TRUE(kmm::validate(*m).empty());
  cma_release(area(), buf, 16);
  put_page(pinned);
  for (auto& [p, t] : owned) __free_page(p);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST_F(CmaTest, FailureIsReportedWithTheAreaMap) {
  struct page* a = cma_alloc(area(), 2048, 0, false);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(cma_alloc(area(), 1, 0, false), nullptr);
  EXPECT_EQ(kmm::test::count_reports(*m, "cma_alloc: reserved: alloc failed, req-size: 1 pages, ret: -12"), 1u);
  EXPECT_NE(m->reports().back().text.find("=> 0 free of 2048 total pages"), std::string::npos);
  EXPECT_EQ(cma_alloc(area(), 1, 0, true), nullptr); // no_warn
  EXPECT_EQ(m->reports().size(), 1u);
  EXPECT_TRUE(cma_release(area(), a, 2048));
  EXPECT_FALSE(cma_release(area(), a, 1)); // not handed out any more: a bad page report
  EXPECT_EQ(kmm::test::count_reports(*m, "BUG: Bad page state"), 1u);
  EXPECT_EQ(m->proc_read("/sys/kernel/mm/cma/reserved/alloc_pages_success"), "2048\n");
  EXPECT_EQ(m->proc_read("/sys/kernel/mm/cma/reserved/alloc_pages_fail"), "2\n");
}

TEST_F(CmaTest, ProcCmaSummary) {
  struct page* a = cma_alloc(area(), 100, 0, false);
  EXPECT_EQ(m->proc_read("/proc/cma"),
            "name           base_pfn      count       used   maxchunk\n"
            "reserved         0x1800       2048        100       1948\n");
  cma_release(area(), a, 100);
}

} // namespace
