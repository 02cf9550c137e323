// The kernel's lib/test_meminit.c on kmm: init_on_alloc= and init_on_free= zero pages and objects
// as the boot parameters say, constructor caches and SLAB_TYPESAFE_BY_RCU caches are never wiped
// (their contents must survive free), and bulk allocations are zeroed too. Each group returns
// the number of tests it ran and adds its failures, as the module does, and the module's verdict
// line ("all N tests passed!" / "failures: F out of N") is printed per boot line.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "kmm/linux.h"
#include "kmm/validate.h"

using kmm::Machine;

namespace {

constexpr uint32_t GARBAGE_INT = 0x09A7BA9E;
constexpr uint8_t GARBAGE_BYTE = 0x9E;
constexpr uint32_t CTOR_PATTERN = 0x41414141;
constexpr int CTOR_BYTES = sizeof(unsigned int);
constexpr unsigned NR_PAGE_ORDERS = MAX_PAGE_ORDER + 1;

size_t count_nonzero_bytes(const void* ptr, size_t size) {
  const unsigned char* p = static_cast<const unsigned char*>(ptr);
  size_t ret = 0;
  for (size_t i = 0; i < size; i++)
    if (p[i]) ret++;
  return ret;
}

// fill_with_garbage_skip(): 0x09A7BA9E per word, 0x9E for the tail, skipping `skip` bytes.
void fill_with_garbage_skip(void* ptr, size_t size, size_t skip) {
  char* p = static_cast<char*>(ptr);
  size_t i = skip;
  for (; i + sizeof(uint32_t) <= size; i += sizeof(uint32_t))
    std::memcpy(p + i, &GARBAGE_INT, sizeof GARBAGE_INT);
  for (; i < size; i++) p[i] = char(GARBAGE_BYTE);
}
void fill_with_garbage(void* ptr, size_t size) { fill_with_garbage_skip(ptr, size, 0); }

int do_alloc_pages_order(unsigned order, int* total_failures) {
  size_t size = PAGE_SIZE << order;
  struct page* page = alloc_pages(GFP_KERNEL, order);
  if (!page) {
    (*total_failures)++;
    return 1;
  }
  void* buf = page_address(page);
  fill_with_garbage(buf, size);
  __free_pages(page, order);
  page = alloc_pages(GFP_KERNEL, order);
  if (!page) {
    (*total_failures)++;
    return 1;
  }
  buf = page_address(page);
  if (count_nonzero_bytes(buf, size)) (*total_failures)++;
  fill_with_garbage(buf, size);
  __free_pages(page, order);
  return 1;
}

int test_pages(int* total_failures) {
  int failures = 0, num_tests = 0;
  for (unsigned i = 0; i < NR_PAGE_ORDERS; i++) num_tests += do_alloc_pages_order(i, &failures);
  *total_failures += failures;
  return num_tests;
}

int do_kmalloc_size(size_t size, int* total_failures) {
  void* buf = kmalloc(size, GFP_KERNEL);
  if (!buf) {
    (*total_failures)++;
    return 1;
  }
  fill_with_garbage(buf, size);
  kfree(buf);
  buf = kmalloc(size, GFP_KERNEL);
  if (!buf) {
    (*total_failures)++;
    return 1;
  }
  if (count_nonzero_bytes(buf, size)) (*total_failures)++;
  fill_with_garbage(buf, size);
  kfree(buf);
  return 1;
}

int do_vmalloc_size(size_t size, int* total_failures) {
  void* buf = vmalloc(size);
  if (!buf) {
    (*total_failures)++;
    return 1;
  }
  fill_with_garbage(buf, size);
  vfree(buf);
  buf = vmalloc(size);
  if (!buf) {
    (*total_failures)++;
    return 1;
  }
  if (count_nonzero_bytes(buf, size)) (*total_failures)++;
  fill_with_garbage(buf, size);
  vfree(buf);
  return 1;
}

int test_kvmalloc(int* total_failures) {
  int failures = 0, num_tests = 0;
  for (int i = 0; i < 20; i++) {
    size_t size = size_t(1) << i;
    num_tests += do_kmalloc_size(size, &failures);
    num_tests += do_vmalloc_size(size, &failures);
  }
  *total_failures += failures;
  return num_tests;
}

void test_ctor(void* obj) { *static_cast<unsigned int*>(obj) = CTOR_PATTERN; }

// check_buf(): zeroed when it must be, the ctor pattern kept, RCU objects allowed garbage.
bool check_buf(void* buf, int size, bool want_ctor, bool want_rcu, bool want_zero) {
  size_t bytes = count_nonzero_bytes(buf, size_t(size));
  EXPECT_FALSE(want_ctor && want_zero);
  if (want_zero) return bytes != 0;
  if (want_ctor) return *static_cast<unsigned int*>(buf) != CTOR_PATTERN;
  return bytes && !want_rcu;
}

constexpr int BULK_SIZE = 100;

int do_kmem_cache_size(size_t size, bool want_ctor, bool want_rcu, bool want_zero,
                       int* total_failures) {
  gfp_t alloc_mask = GFP_KERNEL | (want_zero ? __GFP_ZERO : 0);
  void* bulk_array[BULK_SIZE];
  bool fail = false;
  struct kmem_cache* c =
      kmem_cache_create("test_cache", unsigned(size), 1, want_rcu ? SLAB_TYPESAFE_BY_RCU : 0,
                        want_ctor ? test_ctor : nullptr);
  for (int iter = 0; iter < 10; iter++) {
    if (!want_rcu && !want_ctor) { // a test of bulk allocations
      int ret = kmem_cache_alloc_bulk(c, alloc_mask, BULK_SIZE, bulk_array);
      if (!ret) {
        fail = true;
      } else {
        for (int i = 0; i < ret; i++)
          fail |= check_buf(bulk_array[i], int(size), want_ctor, want_rcu, want_zero);
        kmem_cache_free_bulk(c, size_t(ret), bulk_array);
      }
    }
    void* buf = kmem_cache_alloc(c, alloc_mask);
    fail |= check_buf(buf, int(size), want_ctor, want_rcu, want_zero);
    fill_with_garbage_skip(buf, int(size), want_ctor ? CTOR_BYTES : 0);
    if (!want_rcu) {
      kmem_cache_free(c, buf);
      continue;
    }
    // An RCU cache's object may be read after kmem_cache_free (inside the read-side section):
    // it must not be wiped on free.
    void* buf_copy = kmalloc(size, GFP_ATOMIC);
    if (buf_copy) std::memcpy(buf_copy, buf, size);
    kmem_cache_free(c, buf);
    if (buf_copy) {
      fail |= std::memcmp(buf, buf_copy, size) != 0;
      kfree(buf_copy);
    }
  }
  kmem_cache_destroy(c);
  *total_failures += fail;
  return 1;
}

int do_kmem_cache_rcu_persistent(size_t size, int* total_failures) {
  constexpr int maxiter = 1024;
  std::vector<void*> used;
  bool fail = false;
  struct kmem_cache* c = kmem_cache_create("test_cache", unsigned(size), unsigned(size),
                                           SLAB_TYPESAFE_BY_RCU, nullptr);
  void* buf = kmem_cache_alloc(c, GFP_KERNEL);
  fill_with_garbage(buf, size);
  std::vector<char> saved(static_cast<char*>(buf), static_cast<char*>(buf) + size);
  kmem_cache_free(c, buf);
  // Allocate until |buf| comes back (or give up); its contents must be intact.
  for (int iter = 0; iter < maxiter; iter++) {
    void* p = kmem_cache_alloc(c, GFP_KERNEL);
    used.push_back(p);
    if (p == buf) {
      fail = std::memcmp(p, saved.data(), size) != 0;
      break;
    }
  }
  for (void* p : used) kmem_cache_free(c, p);
  kmem_cache_destroy(c);
  *total_failures += fail;
  return 1;
}

int do_kmem_cache_size_bulk(size_t size, int* total_failures) {
  void* objects[10];
  bool fail = false;
  struct kmem_cache* c =
      kmem_cache_create("test_cache", unsigned(size), unsigned(size), 0, nullptr);
  for (int iter = 0; iter < 10 && !fail; iter++) {
    int num = kmem_cache_alloc_bulk(c, GFP_KERNEL, 10, objects);
    for (int i = 0; i < num; i++) {
      if (count_nonzero_bytes(objects[i], size)) fail = true;
      fill_with_garbage(objects[i], size);
    }
    if (num) kmem_cache_free_bulk(c, size_t(num), objects);
  }
  kmem_cache_destroy(c);
  *total_failures += fail;
  return 1;
}

int test_kmemcache(int* total_failures) {
  int failures = 0, num_tests = 0;
  for (int i = 0; i < 10; i++) {
    size_t size = size_t(8) << i;
    for (int flags = 0; flags < 8; flags++) {
      bool ctor = flags & 1, rcu = flags & 2, zero = flags & 4;
      if (ctor && zero) continue;
      num_tests += do_kmem_cache_size(size, ctor, rcu, zero, &failures);
    }
    num_tests += do_kmem_cache_size_bulk(size, &failures);
  }
  *total_failures += failures;
  return num_tests;
}

int test_rcu_persistent(int* total_failures) {
  int failures = 0, num_tests = 0;
  for (int i = 0; i < 10; i++) num_tests += do_kmem_cache_rcu_persistent(size_t(8) << i, &failures);
  *total_failures += failures;
  return num_tests;
}

// test_meminit_init(): every group; the module's verdict line.
int run_module(const std::string& cmdline, int* num_tests) {
  auto m = Machine::boot(cmdline);
  kmm::MachineScope scope(*m);
  int failures = 0;
  *num_tests = 0;
  *num_tests += test_pages(&failures);
  *num_tests += test_kvmalloc(&failures);
  *num_tests += test_kmemcache(&failures);
  *num_tests += test_rcu_persistent(&failures);
  if (failures == 0) std::printf("%-52s all %d tests passed!\n", cmdline.c_str(), *num_tests);
  else std::printf("%-52s failures: %d out of %d\n", cmdline.c_str(), failures, *num_tests);
  EXPECT_TRUE(m->reports().empty()) << cmdline << ": " << m->reports()[0].text;
  EXPECT_TRUE(kmm::validate(*m).empty()) << cmdline;
  return failures;
}

TEST(Meminit, EveryGroupPassesWithInitOnAllocOrFree) {
  for (const char* cmdline :
       {"mem=64M init_on_alloc=1", "mem=64M init_on_free=1",
        "mem=64M init_on_alloc=1 init_on_free=1", "mem=64M init_on_free=1 kasan=on",
        "mem=64M init_on_alloc=1 slub_debug=FZU"}) {
    int n = 0;
    EXPECT_EQ(run_module(cmdline, &n), 0) << cmdline;
    EXPECT_EQ(n, 11 + 40 + 10 * (6 + 1) + 10); // 131, as the module counts with 11 page orders
  }
}

TEST(Meminit, WithoutTheParametersGarbageSurvives) {
  // The checks are not vacuous: with neither parameter, reused pages and objects keep garbage.
  int n = 0;
  EXPECT_GT(run_module("mem=64M", &n), 0);
}

// What each parameter does, observed directly on freed memory (kasan off, so it can be read).
TEST(Meminit, InitOnFreeWipesPagesAndObjectsAtFree) {
  auto m = Machine::boot("mem=32M init_on_free=1");
  kmm::MachineScope scope(*m);
  struct page* pg = alloc_pages(GFP_KERNEL, 1);
  char* a = static_cast<char*>(page_address(pg));
  fill_with_garbage(a, 2 * PAGE_SIZE);
  __free_pages(pg, 1);
  EXPECT_EQ(count_nonzero_bytes(a, 2 * PAGE_SIZE), 0u);

  struct kmem_cache* plain = kmem_cache_create("plain", 64, 0, 0, nullptr);
  struct kmem_cache* ctor = kmem_cache_create("ctor", 64, 0, 0, test_ctor);
  struct kmem_cache* rcu = kmem_cache_create("rcu", 64, 0, SLAB_TYPESAFE_BY_RCU, nullptr);
  char* p = static_cast<char*>(kmem_cache_alloc(plain, GFP_KERNEL));
  fill_with_garbage(p, 64);
  kmem_cache_free(plain, p);
  // Zeroed, apart from the free pointer SLUB stores in the free object afterwards.
  EXPECT_LE(count_nonzero_bytes(p, 64), sizeof(void*));
  char* q = static_cast<char*>(kmem_cache_alloc(ctor, GFP_KERNEL));
  fill_with_garbage_skip(q, 64, CTOR_BYTES);
  kmem_cache_free(ctor, q);
  EXPECT_EQ(*reinterpret_cast<unsigned int*>(q), CTOR_PATTERN);
  EXPECT_EQ(count_nonzero_bytes(q + CTOR_BYTES, 64 - CTOR_BYTES), size_t(64 - CTOR_BYTES))
      << "a ctor cache is not wiped on free";
  char* r = static_cast<char*>(kmem_cache_alloc(rcu, GFP_KERNEL));
  fill_with_garbage(r, 64);
  std::vector<char> saved(r, r + 64);
  kmem_cache_free(rcu, r);
  EXPECT_EQ(std::memcmp(r, saved.data(), 64), 0) << "a SLAB_TYPESAFE_BY_RCU object is not wiped";
  kmem_cache_destroy(plain);
  kmem_cache_destroy(ctor);
  kmem_cache_destroy(rcu);
  EXPECT_TRUE(m->reports().empty());
}

TEST(Meminit, InitOnAllocZeroesButNotCtorOrRcuCaches) {
  auto m = Machine::boot("mem=32M init_on_alloc=1");
  kmm::MachineScope scope(*m);
  struct kmem_cache* ctor = kmem_cache_create("ctor", 64, 0, 0, test_ctor);
  struct kmem_cache* rcu = kmem_cache_create("rcu", 64, 0, SLAB_TYPESAFE_BY_RCU, nullptr);
  char* q = static_cast<char*>(kmem_cache_alloc(ctor, GFP_KERNEL));
  fill_with_garbage_skip(q, 64, CTOR_BYTES);
  kmem_cache_free(ctor, q);
  char* q2 = static_cast<char*>(kmem_cache_alloc(ctor, GFP_KERNEL));
  ASSERT_EQ(q2, q) << "SLUB's LIFO free list gives the object back";
  EXPECT_EQ(*reinterpret_cast<unsigned int*>(q2), CTOR_PATTERN);
  EXPECT_EQ(count_nonzero_bytes(q2, 64), 64u) << "no init_on_alloc for ctor caches";
  char* r = static_cast<char*>(kmem_cache_alloc(rcu, GFP_KERNEL));
  fill_with_garbage(r, 64);
  kmem_cache_free(rcu, r);
  char* r2 = static_cast<char*>(kmem_cache_alloc(rcu, GFP_KERNEL));
  ASSERT_EQ(r2, r);
  EXPECT_EQ(count_nonzero_bytes(r2, 64), 64u) << "no init_on_alloc for SLAB_TYPESAFE_BY_RCU";
  char* r3 = static_cast<char*>(kmem_cache_alloc(rcu, GFP_KERNEL | __GFP_ZERO));
  EXPECT_EQ(count_nonzero_bytes(r3, 64), 0u) << "__GFP_ZERO still zeroes";
  kmem_cache_free(ctor, q2);
  kmem_cache_free(rcu, r2);
  kmem_cache_free(rcu, r3);
  kmem_cache_destroy(ctor);
  kmem_cache_destroy(rcu);
  EXPECT_TRUE(m->reports().empty());
}

} // namespace
