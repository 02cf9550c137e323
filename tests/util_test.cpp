// Tests for allocator/src/util.cpp: kvmalloc's choice between kmalloc and vmalloc.
#include <gtest/gtest.h>

#include <climits>
#include <cstring>

#include "kmm/linux.h"
#include "kmm/validate.h"
#include "test_util.h"

using kmm::Machine;

namespace {

struct KvmallocTest : ::testing::Test {
  std::unique_ptr<Machine> m = Machine::boot("mem=32M");
  kmm::MachineScope scope{*m};
};

TEST_F(KvmallocTest, SmallSizesComeFromKmalloc) {
  void* p = kvmalloc(2000, GFP_KERNEL);
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(is_vmalloc_addr(p));
  EXPECT_EQ(ksize(p), 2048u);
  kvfree(p);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST_F(KvmallocTest, LargeSizesFallBackToVmalloc) {
  // 8 MiB: above KMALLOC_MAX_SIZE (4 MiB), so kmalloc fails (silently) and vmalloc serves it.
  char* p = static_cast<char*>(kvzalloc(8ul << 20, GFP_KERNEL));
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(is_vmalloc_addr(p));
  EXPECT_EQ(p[0], 0);
  EXPECT_EQ(p[(8ul << 20) - 1], 0);
  EXPECT_NE(m->proc_read("/proc/vmallocinfo").find("kvmalloc_node+0x0/0x0 pages=2048 vmalloc"),
            std::string::npos);
  kvfree(p);
  EXPECT_TRUE(m->reports().empty()); // no warning from the failed kmalloc attempt
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST_F(KvmallocTest, KmallocPreferredWhenItCanServe) {
  void* p = kvmalloc(64 * 1024, GFP_KERNEL); // large kmalloc from the page allocator
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(is_vmalloc_addr(p));
  kvfree(p);
}

TEST_F(KvmallocTest, AtomicNeverFallsBack) {
  EXPECT_EQ(kvmalloc(8ul << 20, GFP_ATOMIC), nullptr);
  EXPECT_EQ(kvmalloc(8ul << 20, GFP_NOWAIT), nullptr);
  EXPECT_TRUE(m->reports().empty());
  void* nofs = kvmalloc(8ul << 20, GFP_NOFS); // blocking: vmalloc is fine
  EXPECT_TRUE(is_vmalloc_addr(nofs));
  kvfree(nofs);
}

TEST_F(KvmallocTest, ArrayOverflowIsNull) {
  EXPECT_EQ(kvmalloc_array(SIZE_MAX / 2, 4, GFP_KERNEL), nullptr);
  void* p = kvcalloc(1000, 8, GFP_KERNEL);
  ASSERT_NE(p, nullptr);
  kvfree(p);
  kvfree(nullptr);
  EXPECT_TRUE(m->reports().empty());
}

TEST_F(KvmallocTest, SensitiveFreeZeroes) {
  char* p = static_cast<char*>(kvmalloc(3 * PAGE_SIZE, GFP_KERNEL));
  std::memset(p, 0x42, 3 * PAGE_SIZE);
  struct page* first = is_vmalloc_addr(p) ? vmalloc_to_page(p) : virt_to_page(p);
  char* alias = static_cast<char*>(page_address(first));
  kvfree_sensitive(p, 3 * PAGE_SIZE);
  EXPECT_EQ(alias[0], 0);
}

TEST_F(KvmallocTest, AboveIntMaxWarnsUnlessNowarn) {
  // __kvmalloc_node(): WARN_ON_ONCE(!(flags & __GFP_NOWARN)) for size > INT_MAX, then NULL.
  EXPECT_EQ(kvmalloc(size_t(INT_MAX) + 1, GFP_KERNEL), nullptr);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title, "WARNING: CPU: 0 PID: 1 at mm/util.c __kvmalloc_node");
  EXPECT_NE(m->reports()[0].text.find("kvmalloc size above INT_MAX\n"), std::string::npos);
  EXPECT_EQ(kvmalloc(size_t(INT_MAX) + 1, GFP_KERNEL | __GFP_NOWARN), nullptr);
  EXPECT_EQ(m->reports().size(), 1u);
}

// The kernel's check is WARN_ON_ONCE: one warning per boot, however many callers ask, and a
// __GFP_NOWARN request does not use it up.
TEST_F(KvmallocTest, AboveIntMaxWarnsOncePerBoot) {
  EXPECT_EQ(kvmalloc(SIZE_MAX, GFP_KERNEL | __GFP_NOWARN), nullptr);
  EXPECT_TRUE(m->reports().empty());
  EXPECT_EQ(kvmalloc(SIZE_MAX, GFP_KERNEL), nullptr);
  EXPECT_EQ(kvzalloc(size_t(1) << 63, GFP_KERNEL), nullptr);
  EXPECT_EQ(kvmalloc_node(size_t(INT_MAX) + 1, GFP_KERNEL, NUMA_NO_NODE), nullptr);
  EXPECT_EQ(kmm::test::count_reports(*m, "at mm/util.c __kvmalloc_node"), 1u);
  EXPECT_EQ(m->reports().size(), 1u);
}

} // namespace
