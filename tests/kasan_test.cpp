// Tests for allocator/src/kasan.cpp: the shadow codes, the page-allocator and vmalloc hooks, the
// access check and the report's form. The slab cases of the kernel's KASAN suite are in
// tests/kasan_slab_test.cpp.
#include <gtest/gtest.h>

#include "bug.h"
#include "kasan.h"
#include "kernel.h"
#include "kmm/linux.h"
#include "test_util.h"

using kmm::Machine;

namespace {

struct KasanTest : ::testing::Test {
  std::unique_ptr<Machine> m = Machine::boot("mem=32M kasan=on");
  kmm::MachineScope scope{*m};
  kmm::Kernel& k = m->kernel();
  const kmm::Report& last() { return m->reports().back(); }
};

TEST_F(KasanTest, OffMeansNoShadowAndNoReports) {
  auto off = Machine::boot("mem=32M");
  kmm::MachineScope s(*off);
  struct page* p = alloc_page(GFP_KERNEL);
  char* a = static_cast<char*>(page_address(p));
  __free_page(p);
  EXPECT_TRUE(kasan_check_read(a, 1));
  EXPECT_TRUE(off->reports().empty());
}

TEST_F(KasanTest, BootLogsAndFreePagesArePoisoned) {
  EXPECT_NE(m->dmesg().find("kasan: KernelAddressSanitizer initialized (generic)"),
            std::string::npos);
  struct page* p = alloc_pages(GFP_KERNEL, 2);
  char* a = static_cast<char*>(page_address(p));
  EXPECT_EQ(kmm::kasan_shadow(k, a), 0);
  EXPECT_TRUE(kasan_check_write(a, 4 * PAGE_SIZE));
  __free_pages(p, 2);
  EXPECT_EQ(kmm::kasan_shadow(k, a), kmm::KASAN_PAGE_FREE);
  EXPECT_TRUE(m->reports().empty());
}

TEST_F(KasanTest, PageUseAfterFree) { // kasan_test_c.c: page_alloc_uaf
  struct page* p = alloc_pages(GFP_KERNEL, 4);
  char* a = static_cast<char*>(page_address(p));
  free_pages(reinterpret_cast<unsigned long>(a), 4);
  EXPECT_FALSE(kasan_check_read(a, 1));
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(last().title, "BUG: KASAN: use-after-free in kasan_check_read");
  EXPECT_EQ(last().kind, kmm::ReportKind::Kasan);
  uint64_t kva = 0xffff888000000000ull + page_to_phys(p);
  EXPECT_NE(last().text.find(kmm::strprintf("Read of size 1 at addr %016llx by task kmm/1",
                                            (unsigned long long)kva)),
            std::string::npos)
      << last().text;
  EXPECT_NE(last().text.find("The buggy address belongs to the physical page:"), std::string::npos);
  EXPECT_NE(last().text.find("Memory state around the buggy address:"), std::string::npos);
  EXPECT_NE(last().text.find(">"), std::string::npos);
}

TEST_F(KasanTest, PartialGranuleIsOutOfBoundsAtItsEnd) {
  struct page* p = alloc_page(GFP_KERNEL);
  char* a = static_cast<char*>(page_address(p));
  kmm::kasan_poison(k, a, PAGE_SIZE, kmm::KASAN_SLAB_REDZONE);
  kmm::kasan_unpoison(k, a, 13); // granule 0 full, granule 1 has 5 valid bytes
  EXPECT_EQ(kmm::kasan_shadow(k, a + 8), 5);
  EXPECT_TRUE(kasan_check_read(a, 13));
  EXPECT_TRUE(kasan_check_read(a + 12, 1));
  EXPECT_FALSE(kasan_check_write(a + 13, 1));
  EXPECT_EQ(last().title, "BUG: KASAN: slab-out-of-bounds in kasan_check_write");
  EXPECT_NE(last().text.find("Write of size 1"), std::string::npos);
  EXPECT_FALSE(kmm::kasan_check_access(a + 10, 8, false, "copy_from_user"));
  EXPECT_EQ(last().title, "BUG: KASAN: slab-out-of-bounds in copy_from_user");
  __free_page(p);
}

TEST_F(KasanTest, NullAndWildAccesses) {
  EXPECT_FALSE(kasan_check_read(reinterpret_cast<void*>(16), 8));
  EXPECT_EQ(last().title, "BUG: KASAN: null-ptr-deref in kasan_check_read");
  int local = 0;
  EXPECT_FALSE(kasan_check_write(&local, 4));
  EXPECT_EQ(last().title, "BUG: KASAN: wild-memory-access in kasan_check_write");
}

TEST_F(KasanTest, VmallocSlackAndGuard) { // vmalloc_oob
  char* v = static_cast<char*>(vmalloc(3000));
  ASSERT_NE(v, nullptr);
  EXPECT_TRUE(kasan_check_write(v, 3000));
  EXPECT_FALSE(kasan_check_read(v + 3000, 1));
  EXPECT_EQ(last().title, "BUG: KASAN: vmalloc-out-of-bounds in kasan_check_read");
  size_t n = m->reports().size();
  volatile char* guard = v + PAGE_SIZE; // the real guard page: caught by the fault handler
  guard[0] = 1;
  ASSERT_EQ(m->reports().size(), n + 1);
  EXPECT_EQ(last().title, "BUG: KASAN: vmalloc-out-of-bounds in vmalloc_fault");
  vfree(v);
  EXPECT_FALSE(kasan_check_read(v, 1));
  EXPECT_EQ(last().title, "BUG: KASAN: vmalloc-out-of-bounds in kasan_check_read");
}

TEST_F(KasanTest, PanicModeAbortsAfterTheReport) {
  EXPECT_DEATH(
      {
        auto pm = Machine::boot("mem=16M kasan=on kasan.fault=panic");
        kmm::MachineScope s(*pm);
        struct page* p = alloc_page(GFP_KERNEL);
        char* a = static_cast<char*>(page_address(p));
        __free_page(p);
        kasan_check_read(a, 1);
      },
      "BUG: KASAN: use-after-free in kasan_check_read");
}

} // namespace
