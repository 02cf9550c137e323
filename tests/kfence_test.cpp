// Tests for allocator/src/kfence.cpp: the cases of the kernel's mm/kfence/kfence_test.c that
// apply to kmm. Raw pointer accesses fault on real PROT_NONE pages and are reported.
#include <gtest/gtest.h>

#include <cstring>

#include "bug.h"
#include "kernel.h"
#include "kmm/linux.h"
#include "kmm/validate.h"
#include "test_util.h"

using kmm::Machine;

namespace {

struct KfenceTest : ::testing::Test {
  // Every slab allocation is sampled: interval 1.
  std::unique_ptr<Machine> m =
      Machine::boot("mem=32M kfence.sample_interval=1 kfence.num_objects=31");
  kmm::MachineScope scope{*m};
  const kmm::Report& last() { return m->reports().back(); }
  // An object placed at the left (page start) or right (page end) of its KFENCE page.
  char* alloc_side(size_t size, bool right) {
    for (int i = 0; i < 64; i++) {
      char* p = static_cast<char*>(kmalloc(size, GFP_KERNEL));
      bool is_right = (reinterpret_cast<uintptr_t>(p) + size) % PAGE_SIZE == 0;
      if (is_right == right && reinterpret_cast<uintptr_t>(p) % PAGE_SIZE != 0) return p;
      if (!right && reinterpret_cast<uintptr_t>(p) % PAGE_SIZE == 0) return p;
      kfree(p);
    }
    return nullptr;
  }
};

TEST_F(KfenceTest, PoolIsLoggedAndValid) {
  EXPECT_NE(m->dmesg().find("kfence: initialized - using 262144 bytes for 31 objects"),
            std::string::npos);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST_F(KfenceTest, OutOfBoundsReadLeft) {
  volatile char* p = alloc_side(32, false);
  ASSERT_NE(p, nullptr);
  char c = p[-1];
  (void)c;
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(last().title, "BUG: KFENCE: out-of-bounds read in kfence_fault");
  EXPECT_NE(last().text.find("(1B left of kfence-#"), std::string::npos) << last().text;
  EXPECT_NE(last().text.find(", size=32, cache=kmalloc-32"), std::string::npos);
  kfree(const_cast<char*>(p));
}

TEST_F(KfenceTest, OutOfBoundsWriteRight) {
  volatile char* p = alloc_side(32, true);
  ASSERT_NE(p, nullptr);
  p[32] = 1;
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(last().title, "BUG: KFENCE: out-of-bounds write in kfence_fault");
  EXPECT_NE(last().text.find("(32B right of kfence-#"), std::string::npos) << last().text;
  kfree(const_cast<char*>(p));
}

TEST_F(KfenceTest, UseAfterFreeRead) {
  volatile char* p = static_cast<char*>(kmalloc(64, GFP_KERNEL));
  kfree(const_cast<char*>(p));
  char c = p[3];
  (void)c;
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(last().title, "BUG: KFENCE: use-after-free read in kfence_fault");
  EXPECT_NE(last().text.find("freed by task 1 on cpu 0"), std::string::npos);
}

TEST_F(KfenceTest, DoubleFreeIsInvalidFree) {
  char* p = static_cast<char*>(kmalloc(64, GFP_KERNEL));
  kfree(p);
  kfree(p);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(last().title, "BUG: KFENCE: invalid free in kfree");
}

TEST_F(KfenceTest, FreeOfAGuardPageAddressIsInvalidFree) {
  // The page after an object's page is a guard page: no object lives there.
  char* p = static_cast<char*>(kmalloc(64, GFP_KERNEL));
  char* guard = reinterpret_cast<char*>(
      (reinterpret_cast<uintptr_t>(p) & ~uintptr_t(PAGE_SIZE - 1)) + PAGE_SIZE);
  kfree(guard);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(last().title, "BUG: KFENCE: invalid free in kfree");
  EXPECT_NE(last().text.find(kmm::strprintf("Invalid free of 0x%016llx:",
                                            (unsigned long long)m->kernel().mem.kva(guard))),
            std::string::npos)
      << last().text;
  kfree(p); // the object itself is untouched and frees cleanly
  EXPECT_EQ(m->reports().size(), 1u);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST_F(KfenceTest, InvalidAddressFree) {
  char* p = static_cast<char*>(kmalloc(64, GFP_KERNEL));
  kfree(p + 1);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(last().title, "BUG: KFENCE: invalid free in kfree");
  kfree(p);
  EXPECT_EQ(m->reports().size(), 1u);
}

TEST_F(KfenceTest, CanaryCorruptionFoundAtFree) {
  char* p = alloc_side(24, false); // left: the bytes after the object are canaries
  ASSERT_NE(p, nullptr);
  p[24] = 0x42;
  kfree(p);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(last().title, "BUG: KFENCE: memory corruption in kfree");
  EXPECT_NE(last().text.find("[ 0x42 "), std::string::npos) << last().text;
}

TEST_F(KfenceTest, CacheAllocationsAndCtor) {
  static int ctor_calls;
  ctor_calls = 0;
  struct kmem_cache* c = kmem_cache_create("kfence_ctor", 32, 0, 0, [](void* o) {
    std::memset(o, 0x2a, 32);
    ctor_calls++;
  });
  char* o = static_cast<char*>(kmem_cache_alloc(c, GFP_KERNEL));
  EXPECT_EQ(o[0], 0x2a);
  EXPECT_GE(ctor_calls, 1);
  EXPECT_EQ(ksize(o), 32u);
  kmem_cache_free(c, o);
  kmem_cache_destroy(c);
  EXPECT_TRUE(m->reports().empty());
}

TEST_F(KfenceTest, KreallocAndGfpZero) {
  char* p = static_cast<char*>(kzalloc(100, GFP_KERNEL));
  for (int i = 0; i < 100; i++) ASSERT_EQ(p[i], 0);
  std::memset(p, 7, 100);
  char* q = static_cast<char*>(krealloc(p, 300, GFP_KERNEL));
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q[99], 7);
  kfree(q);
  EXPECT_TRUE(m->reports().empty());
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(KfenceOff, NoPoolWithoutInterval) {
  auto m = Machine::boot("mem=32M");
  EXPECT_EQ(m->dmesg().find("kfence:"), std::string::npos);
}

} // namespace
