// Tests for allocator/src/vmalloc.cpp: real mappings, guard pages, the vmap-area allocator,
// /proc/vmallocinfo and the misuse reports.
#include <gtest/gtest.h>

#include <cstring>

#include "kmm/linux.h"
#include "kmm/validate.h"
#include "test_util.h"

using kmm::Machine;

namespace {

struct VmallocTest : ::testing::Test {
  std::unique_ptr<Machine> m = Machine::boot("mem=32M");
  kmm::MachineScope scope{*m};
};

TEST_F(VmallocTest, WriteIsSeenThroughTheDirectMap) {
  auto* p = static_cast<unsigned char*>(vmalloc(3 * PAGE_SIZE));
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(is_vmalloc_addr(p));
  for (unsigned i = 0; i < 3; i++) {
    std::memset(p + i * PAGE_SIZE, 0x10 + i, PAGE_SIZE);
    auto* alias = static_cast<unsigned char*>(page_address(vmalloc_to_page(p + i * PAGE_SIZE)));
    EXPECT_NE(alias, p + i * PAGE_SIZE);
    EXPECT_EQ(alias[0], 0x10 + i);
    EXPECT_EQ(alias[PAGE_SIZE - 1], 0x10 + i);
    alias[7] = 0x77; // and the other way round
    EXPECT_EQ(p[i * PAGE_SIZE + 7], 0x77);
  }
  EXPECT_TRUE(kmm::validate(*m).empty());
  vfree(p);
  EXPECT_TRUE(kmm::validate(*m).empty());
  EXPECT_TRUE(m->reports().empty());
}

TEST_F(VmallocTest, SizeRoundsUpToPagesPlusGuard) {
  long before = kmm::test::proc_value(*m, "/proc/meminfo", "VmallocUsed");
  void* p = vmalloc(10000);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(kmm::test::proc_value(*m, "/proc/meminfo", "VmallocUsed"), before + 12);
  std::string info = m->proc_read("/proc/vmallocinfo");
  // 3 pages plus the guard page: 16384 bytes.
  EXPECT_NE(info.find("   16384 vmalloc+0x0/0x0 pages=3 vmalloc N0=3\n"), std::string::npos) << info;
  EXPECT_EQ(info.rfind("0xffffc90000000000-0xffffc90000004000", 0), 0u) << info;
  EXPECT_EQ(vmalloc_to_page(static_cast<char*>(p) + 3 * PAGE_SIZE), nullptr); // the guard
  vfree(p);
  EXPECT_EQ(kmm::test::proc_value(*m, "/proc/meminfo", "VmallocUsed"), before);
  EXPECT_NE(m->proc_read("/proc/vmallocinfo").find("unpurged vm_area"), std::string::npos);
}

TEST_F(VmallocTest, VzallocZeroes) {
  auto* p = static_cast<unsigned char*>(vmalloc(PAGE_SIZE));
  std::memset(p, 0xee, PAGE_SIZE);
  vfree(p);
  auto* z = static_cast<unsigned char*>(vzalloc(64 * PAGE_SIZE));
  ASSERT_NE(z, nullptr);
  for (unsigned long i = 0; i < 64 * PAGE_SIZE; i++) ASSERT_EQ(z[i], 0) << i;
  vfree(z);
}

TEST_F(VmallocTest, GuardPageTouchIsReportedNotACrash) {
  auto* p = static_cast<volatile char*>(vmalloc(PAGE_SIZE));
  ASSERT_NE(p, nullptr);
  p[PAGE_SIZE] = 1; // the guard page
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title,
            "BUG: unable to handle page fault for address: ffffc90000001000");
  EXPECT_NE(m->reports()[0].text.find("#PF: supervisor write access in kernel mode"),
            std::string::npos);
  vfree(const_cast<char*>(p));
}

TEST_F(VmallocTest, UseAfterVfreeFaults) {
  auto* p = static_cast<volatile char*>(vmalloc(2 * PAGE_SIZE));
  vfree(const_cast<char*>(p));
  char c = p[PAGE_SIZE + 5];
  (void)c;
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_NE(m->reports()[0].text.find("#PF: supervisor read access"), std::string::npos);
}

TEST_F(VmallocTest, LargerThanAnyFreeBlockSucceeds) {
  // 6 MiB is more than an order-10 block (4 MiB): the page allocator cannot give it
  // contiguously, vmalloc can.
  EXPECT_EQ(alloc_pages(GFP_KERNEL | __GFP_NOWARN, 11), nullptr);
  void* p = vmalloc(6ul << 20);
  ASSERT_NE(p, nullptr);
  std::memset(p, 0x5a, 6ul << 20);
  EXPECT_TRUE(kmm::validate(*m).empty());
  vfree(p);
}

TEST_F(VmallocTest, AreasAreDisjointAndReused) {
  void* a = vmalloc(PAGE_SIZE);
  void* b = vmalloc(PAGE_SIZE);
  EXPECT_EQ(static_cast<char*>(b) - static_cast<char*>(a), 2 * static_cast<long>(PAGE_SIZE));
  vfree(a);
  vfree(b);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST_F(VmallocTest, BadFreesAreWarnings) {
  vfree(nullptr); // a no-op
  EXPECT_TRUE(m->reports().empty());
  char* p = static_cast<char*>(vmalloc(PAGE_SIZE));
  vfree(p + 8);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_NE(m->reports()[0].text.find("Trying to vfree() bad address (ffffc90000000008)"),
            std::string::npos);
  vfree(p);
  vfree(p);
  ASSERT_EQ(m->reports().size(), 2u);
  EXPECT_NE(m->reports()[1].text.find("Trying to vfree() nonexistent vm area (ffffc90000000000)"),
            std::string::npos);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST_F(VmallocTest, VmallocUnderSpinlockIsSleepingInAtomic) {
  spinlock_t lock;
  spin_lock_init(&lock);
  spin_lock(&lock);
  void* p = vmalloc(PAGE_SIZE);
  spin_unlock(&lock);
  EXPECT_EQ(kmm::test::count_reports(*m, "BUG: sleeping function called from invalid context"), 1u);
  vfree(p);
}

TEST_F(VmallocTest, VmapMapsGivenPages) {
  struct page* pages[3];
  for (auto& pg : pages) pg = alloc_page(GFP_KERNEL);
  static_cast<char*>(page_address(pages[1]))[3] = 42;
  char* v = static_cast<char*>(vmap(pages, 3, VM_MAP, PAGE_KERNEL));
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v[PAGE_SIZE + 3], 42);
  EXPECT_EQ(vmalloc_to_page(v + 2 * PAGE_SIZE), pages[2]);
  EXPECT_NE(m->proc_read("/proc/vmallocinfo").find(" vmap"), std::string::npos);
  vunmap(v);
  for (auto& pg : pages) __free_page(pg);
  EXPECT_TRUE(kmm::validate(*m).empty());
  EXPECT_TRUE(m->reports().empty());
}

TEST_F(VmallocTest, ZeroAndHugeSizesFail) {
  EXPECT_EQ(vmalloc(0), nullptr);
  EXPECT_EQ(vmalloc(1ul << 40), nullptr);
  EXPECT_EQ(kmm::test::count_reports(*m, "vmalloc error: size"), 1u);
}

} // namespace
