// Tests for allocator/src/kmalloc.cpp: buckets and their names, the DMA and reclaimable types,
// large kmalloc and its accounting, the kzalloc/kcalloc/kmalloc_array/krealloc/ksize family and
// the kmalloc red zone.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "kernel.h"
#include "kmm/linux.h"
#include "kmm/validate.h"
#include "slub.h"
#include "test_util.h"

using kmm::Machine;
using kmm::test::proc_value;

namespace {
const char* cache_of(const void* p) {
  struct page* pg = virt_to_page(p);
  if (pg->flags & kmm::PG_tail) pg = pfn_to_page(pg->compound_head);
  return (pg->flags & kmm::PG_slab) ? kmem_cache_name(pg->slab.slab_cache) : "(page)";
}
} // namespace

TEST(Kmalloc, SizesPickTheKernelsBuckets) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  const std::pair<size_t, const char*> table[] = {
      {1, "kmalloc-8"},     {8, "kmalloc-8"},     {9, "kmalloc-16"},    {24, "kmalloc-32"},
      {33, "kmalloc-64"},   {65, "kmalloc-96"},   {96, "kmalloc-96"},   {97, "kmalloc-128"},
      {129, "kmalloc-192"}, {192, "kmalloc-192"}, {193, "kmalloc-256"}, {257, "kmalloc-512"},
      {1000, "kmalloc-1k"}, {2048, "kmalloc-2k"}, {4097, "kmalloc-8k"}, {8192, "kmalloc-8k"}};
  for (auto& [size, name] : table) {
    void* p = kmalloc(size, GFP_KERNEL);
    ASSERT_NE(p, nullptr);
    EXPECT_STREQ(cache_of(p), name) << size;
    kfree(p);
  }
  void* d = kmalloc(100, GFP_KERNEL | GFP_DMA);
  EXPECT_STREQ(cache_of(d), "dma-kmalloc-128");
  EXPECT_LT(virt_to_phys(d), 16ull << 20); // from ZONE_DMA
  void* r = kmalloc(100, GFP_KERNEL | __GFP_RECLAIMABLE);
  EXPECT_STREQ(cache_of(r), "kmalloc-rcl-128");
  kfree(d);
  kfree(r);
  EXPECT_TRUE(m->reports().empty());
}

// Every size up to 8k lands in the smallest bucket that holds it (the fast path's one-load
// table against the list of buckets).
TEST(Kmalloc, EverySizeTakesTheSmallestBucket) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  const size_t buckets[] = {8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192};
  for (size_t size = 1; size <= 8192; size++) {
    void* p = kmalloc(size, GFP_KERNEL);
    ASSERT_NE(p, nullptr);
    size_t want =
        *std::find_if(std::begin(buckets), std::end(buckets), [&](size_t b) { return b >= size; });
    ASSERT_EQ(ksize(p), want) << size;
    kfree(p);
  }
  EXPECT_TRUE(m->reports().empty());
}

// A sleeping kmalloc is reported in each kind of atomic context, also when the object comes
// from the CPU freelist (the fast path); GFP_ATOMIC is not.
TEST(Kmalloc, SleepingKmallocInEachAtomicContextIsReported) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  kfree(kmalloc(8, GFP_KERNEL)); // a cpu slab exists: no page allocation below
  static void* held[6];
  preempt_disable();
  held[0] = kmalloc(8, GFP_KERNEL);
  held[1] = kmalloc(8, GFP_ATOMIC);
  preempt_enable();
  local_irq_disable();
  held[2] = kmalloc(8, GFP_KERNEL);
  held[3] = kmalloc(8, GFP_ATOMIC);
  local_irq_enable();
  kmm_run_in_irq(
      [](void*) {
        held[4] = kmalloc(8, GFP_KERNEL);
        held[5] = kmalloc(8, GFP_ATOMIC);
      },
      nullptr);
  void* outside = kmalloc(8, GFP_KERNEL);
  ASSERT_EQ(m->reports().size(), 3u);
  for (const auto& r : m->reports())
    EXPECT_EQ(r.title,
              "BUG: sleeping function called from invalid context at include/linux/sched/mm.h");
  EXPECT_NE(m->reports()[2].text.find("preempt_count: 10000, expected: 0\n"), std::string::npos);
  for (void* p : held) kfree(p);
  kfree(outside);
  EXPECT_EQ(m->reports().size(), 3u);
}

TEST(Kmalloc, PowerOfTwoObjectsAreNaturallyAligned) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  for (size_t size : {8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192}) {
    void* p = kmalloc(size, GFP_KERNEL);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % size, 0u) << size;
    kfree(p);
  }
  void* p = kmalloc(96, GFP_KERNEL);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 8, 0u);
  kfree(p);
}

TEST(Kmalloc, ZeroSizeNullAndZeroSizePtr) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  EXPECT_EQ(kmalloc(0, GFP_KERNEL), ZERO_SIZE_PTR);
  EXPECT_TRUE(ZERO_OR_NULL_PTR(ZERO_SIZE_PTR));
  EXPECT_TRUE(ZERO_OR_NULL_PTR(nullptr));
  kfree(nullptr);
  kfree(ZERO_SIZE_PTR);
  EXPECT_EQ(ksize(nullptr), 0u);
  EXPECT_EQ(ksize(ZERO_SIZE_PTR), 0u);
  EXPECT_TRUE(m->reports().empty());
}

TEST(Kmalloc, LargeKmallocComesFromPagesAndIsAccounted) {
  auto m = Machine::boot("mem=64M");
  kmm::MachineScope scope(*m);
  long before = proc_value(*m, "/proc/meminfo", "SUnreclaim");
  void* p = kmalloc(60000, GFP_KERNEL); // order 4
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % PAGE_SIZE, 0u);
  EXPECT_STREQ(cache_of(p), "(page)");
  EXPECT_EQ(virt_to_page(p)->owner, kmm::PageOwner::KmallocLarge);
  EXPECT_EQ(ksize(p), 65536u);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "SUnreclaim") - before, 64);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "Slab") - before, 64);
  EXPECT_TRUE(kmm::validate(*m).empty());
  kfree(p);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "SUnreclaim"), before);
  EXPECT_EQ(kmalloc(KMALLOC_MAX_SIZE + 1, GFP_KERNEL | __GFP_NOWARN), nullptr);
  EXPECT_TRUE(m->reports().empty());
  EXPECT_EQ(kmalloc(KMALLOC_MAX_SIZE + 1, GFP_KERNEL), nullptr);
  EXPECT_EQ(m->reports().size(), 1u); // the page allocator's order WARN
  EXPECT_EQ(m->reports()[0].kind, kmm::ReportKind::Warn);
}

TEST(Kmalloc, KfreeOfSomethingElseIsReportedNotFreed) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  struct page* pg = alloc_pages(GFP_KERNEL, 0);
  kfree(page_address(pg));
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_NE(m->reports()[0].text.find("page dumped because: Not a kmalloc allocation"),
            std::string::npos);
  EXPECT_EQ(page_count(pg), 1);
  __free_pages(pg, 0);
}

TEST(Kmalloc, KzallocKcallocAndArrayOverflow) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  auto* a = static_cast<uint8_t*>(kmalloc(200, GFP_KERNEL));
  std::memset(a, 0x5c, 200);
  kfree(a);
  auto* z = static_cast<uint8_t*>(kzalloc(200, GFP_KERNEL));
  for (int i = 0; i < 200; i++) ASSERT_EQ(z[i], 0);
  kfree(z);
  auto* c = static_cast<uint32_t*>(kcalloc(10, sizeof(uint32_t), GFP_KERNEL));
  for (int i = 0; i < 10; i++) ASSERT_EQ(c[i], 0u);
  kfree(c);
  EXPECT_EQ(kmalloc_array(SIZE_MAX / 2, 3, GFP_KERNEL), nullptr);
  EXPECT_EQ(kcalloc(SIZE_MAX / 8 + 1, 8, GFP_KERNEL), nullptr);
  EXPECT_TRUE(m->reports().empty()); // overflow is a quiet NULL
  void* n = kmalloc_node(64, GFP_KERNEL, NUMA_NO_NODE);
  EXPECT_STREQ(cache_of(n), "kmalloc-64");
  kfree(n);
}

TEST(Kmalloc, KsizeIsTheBucket) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  void* p = kmalloc(100, GFP_KERNEL);
  EXPECT_EQ(ksize(p), 128u);
  EXPECT_EQ(kmalloc_size_roundup(100), 128u);
  EXPECT_EQ(kmalloc_size_roundup(65), 96u);
  EXPECT_EQ(kmalloc_size_roundup(9000), 16384u); // large: whole pages
  kfree(p);
}

// ksize() of a pointer inside a large kmalloc allocation is the kernel's
// WARN_ON(object != folio_address(folio)) and 0: kfree_sensitive() of such a pointer zeroed a
// whole allocation's worth from it, past the end (off the direct map at the top of RAM).
TEST(Kmalloc, KsizeOfAnInnerPointerOfALargeAllocationWarns) {
  auto m = Machine::boot("mem=16M");
  kmm::MachineScope scope(*m);
  char* p = static_cast<char*>(kmalloc(32768, GFP_KERNEL));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(ksize(p), 32768u);
  EXPECT_TRUE(m->reports().empty());
  EXPECT_EQ(ksize(p + PAGE_SIZE), 0u);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title, "WARNING: CPU: 0 PID: 1 at mm/slab_common.c __ksize");
  kfree(p);
}

TEST(Kmalloc, Krealloc) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  char* p = static_cast<char*>(krealloc(nullptr, 20, GFP_KERNEL)); // NULL: kmalloc
  ASSERT_NE(p, nullptr);
  std::strcpy(p, "hello, krealloc");
  EXPECT_EQ(krealloc(p, 30, GFP_KERNEL), p); // fits the 32-byte bucket: same object
  EXPECT_EQ(krealloc(p, 10, GFP_KERNEL), p); // shrink: same object
  p[9] = '\0';
  char* q = static_cast<char*>(krealloc(p, 500, GFP_KERNEL)); // grow: copied
  ASSERT_NE(q, p);
  EXPECT_STREQ(q, "hello, kr");
  EXPECT_STREQ(cache_of(q), "kmalloc-512");
  EXPECT_EQ(krealloc(q, 0, GFP_KERNEL), ZERO_SIZE_PTR); // 0: freed
  char* big = static_cast<char*>(krealloc(nullptr, 10000, GFP_KERNEL));
  big[9999] = 'x';
  EXPECT_EQ(krealloc(big, 16000, GFP_KERNEL), big); // order 2 holds 16384 bytes
  char* bigger = static_cast<char*>(krealloc(big, 20000, GFP_KERNEL));
  ASSERT_NE(bigger, big);
  EXPECT_EQ(bigger[9999], 'x');
  kfree(bigger);
  EXPECT_TRUE(m->reports().empty());
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Kmalloc, KfreeSensitiveZeroesTheWholeBucket) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  auto* p = static_cast<uint8_t*>(kmalloc(50, GFP_KERNEL));
  std::memset(p, 0xab, 64);
  kfree_sensitive(p);
  // Non-debug kmalloc-64 keeps its free pointer at offset 32; everything else is zero.
  for (int i = 0; i < 64; i++) {
    if (i < 32 || i >= 40) {
      ASSERT_EQ(p[i], 0) << i;
    }
  }
}

TEST(Kmalloc, KmemdupAndKstrdup) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  const char src[] = "kmm duplicates this";
  char* a = static_cast<char*>(kmemdup(src, sizeof src, GFP_KERNEL));
  EXPECT_STREQ(a, src);
  EXPECT_STREQ(cache_of(a), "kmalloc-32");
  char* b = kstrdup(src, GFP_KERNEL);
  EXPECT_STREQ(b, src);
  EXPECT_NE(a, b);
  EXPECT_EQ(kstrdup(nullptr, GFP_KERNEL), nullptr);
  kfree(a);
  kfree(b);
}

TEST(Kmalloc, KstrndupStopsAtMaxOrTheNul) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  char* cut = kstrndup("interface-name-too-long", 9, GFP_KERNEL);
  EXPECT_STREQ(cut, "interface");
  EXPECT_EQ(ksize(cut), 16u); // 10 bytes with the NUL: kmalloc-16
  char* whole = kstrndup("eth0", 64, GFP_KERNEL);
  EXPECT_STREQ(whole, "eth0");
  EXPECT_EQ(ksize(whole), 8u);
  EXPECT_EQ(kstrndup(nullptr, 4, GFP_KERNEL), nullptr);
  kfree(cut);
  kfree(whole);
  struct kmem_cache* s = kmem_cache_create("named_cache", 40, 0, SLAB_NO_MERGE, nullptr);
  EXPECT_STREQ(kmem_cache_name(s), "named_cache");
  kmem_cache_destroy(s);
  EXPECT_TRUE(m->reports().empty());
}

TEST(Kmalloc, KmallocRedzoneWithSlubDebugZU) {
  auto m = Machine::boot("slub_debug=ZU");
  kmm::MachineScope scope(*m);
  auto* p = static_cast<uint8_t*>(kmalloc(20, GFP_KERNEL)); // kmalloc-32
  for (int i = 20; i < 32; i++) ASSERT_EQ(p[i], kmm::SLUB_RED_ACTIVE) << i;
  p[25] = 0;
  EXPECT_EQ(m->proc_write("/sys/kernel/slab/kmalloc-32/validate", "1"), 0);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title, "BUG kmalloc-32 (Not tainted): kmalloc Redzone overwritten");
  EXPECT_EQ(m->reports()[0].offset, 25);
  // ksize() hands the whole bucket to the caller: no kmalloc red zone any more.
  EXPECT_EQ(ksize(p), 32u);
  p[30] = 0;
  m->clear_reports();
  EXPECT_EQ(m->proc_write("/sys/kernel/slab/kmalloc-32/validate", "1"), 0);
  EXPECT_TRUE(m->reports().empty());
  kfree(p);
}

TEST(Kmalloc, GfpDma32IsFixedUpWithAWarning) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  // Only a new slab reaches kmalloc_fix_flags, as in the kernel: use an empty cache.
  struct kmem_cache* s = kmem_cache_create("fixme", 700, 0, SLAB_NO_MERGE, nullptr);
  void* p = kmem_cache_alloc(s, GFP_KERNEL | __GFP_HIGHMEM);
  EXPECT_NE(p, nullptr);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_NE(m->reports()[0].text.find("Unexpected gfp: 0x2 (__GFP_HIGHMEM). Fixing up to gfp: "),
            std::string::npos);
  kmem_cache_free(s, p);
  kmem_cache_destroy(s);
}
