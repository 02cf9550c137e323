// Tests for allocator/src/slub_debug.cpp and slub_report.cpp: every case of the kernel's
// slub_kunit suite (lib/tests/slub_kunit.c) with the same corruption, the same slab_errors count
// and the exact report titles, plus slub_debug= on the boot line and the free/alloc-path checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "bug.h"
#include "kernel.h"
#include "kmm/linux.h"
#include "kmm/validate.h"
#include "slub.h"
#include "test_util.h"

using kmm::Machine;

namespace {

class SlubKunit : public ::testing::Test {
protected:
  void SetUp() override {
    m = Machine::boot("mem=64M nr_cpus=4");
    scope = std::make_unique<kmm::MachineScope>(*m);
  }
  void TearDown() override { scope.reset(); }
  long errors() { return m->kernel().slab->slab_errors.load(); }
  void reset_errors() {
    m->kernel().slab->slab_errors = 0;
    m->clear_reports();
  }
  // slub_kunit's test_kmem_cache_create: flags | SLAB_NO_USER_FLAGS (slub_debug= ignored).
  struct kmem_cache* create(const char* name, unsigned size, slab_flags_t flags) {
    return kmem_cache_create(name, size, 0, flags | SLAB_NO_USER_FLAGS, nullptr);
  }
  long validate(struct kmem_cache* s) { return kmm::validate_slab_cache(m->kernel(), s); }
  std::vector<std::string> titles() {
    std::vector<std::string> t;
    for (auto& r : m->reports()) t.push_back(r.title);
    return t;
  }
  std::unique_ptr<Machine> m;
  std::unique_ptr<kmm::MachineScope> scope;
};

} // namespace

// 1. test_clobber_zone
TEST_F(SlubKunit, ClobberZone) {
  struct kmem_cache* s = create("TestSlub_RZ_alloc", 64, SLAB_RED_ZONE);
  auto* p = static_cast<uint8_t*>(kmem_cache_alloc(s, GFP_KERNEL));
  p[64] = 0x12;
  validate(s);
  EXPECT_EQ(errors(), 2);
  EXPECT_EQ(titles(), std::vector<std::string>{
                          "BUG TestSlub_RZ_alloc (Not tainted): Right Redzone overwritten"});
  const std::string& text = m->reports()[0].text;
  EXPECT_NE(text.find("First byte 0x12 instead of 0xcc"), std::string::npos);
  EXPECT_NE(
      text.find(kmm::strprintf("FIX TestSlub_RZ_alloc: Restoring Right Redzone 0x%llx-0x%llx=0xcc",
                               (unsigned long long)m->kernel().mem.kva(p + 64),
                               (unsigned long long)m->kernel().mem.kva(p + 64))),
      std::string::npos);
  EXPECT_EQ(m->reports()[0].offset, 64);
  EXPECT_EQ(p[64], 0xcc); // restored
  kmem_cache_free(s, p);
  kmem_cache_destroy(s);
  EXPECT_EQ(errors(), 2);
}

// 2. test_next_pointer
TEST_F(SlubKunit, NextPointer) {
  struct kmem_cache* s = create("TestSlub_next_ptr_free", 64, SLAB_POISON);
  auto* p = static_cast<uint8_t*>(kmem_cache_alloc(s, GFP_KERNEL));
  kmem_cache_free(s, p);
  uintptr_t* ptr_addr = reinterpret_cast<uintptr_t*>(p + s->offset);
  uintptr_t tmp = *ptr_addr;
  p[s->offset] = uint8_t(~p[s->offset]);
  validate(s);
  EXPECT_EQ(errors(), 3); // corrupted freechain, wrong count of objects in use, the fix
  EXPECT_EQ(titles(),
            (std::vector<std::string>{"BUG TestSlub_next_ptr_free (Not tainted): Freechain corrupt",
                                      "BUG TestSlub_next_ptr_free (Not tainted): Wrong object "
                                      "count. Counter is 0 but counted were " +
                                          std::to_string(s->objects - 1)}));
  EXPECT_NE(m->reports()[1].text.find("FIX TestSlub_next_ptr_free: Object count adjusted"),
            std::string::npos);
  // Repair the pointer: the count is wrong the other way now.
  *ptr_addr = tmp;
  reset_errors();
  validate(s);
  EXPECT_EQ(errors(), 2);
  EXPECT_EQ(titles(),
            std::vector<std::string>{
                "BUG TestSlub_next_ptr_free (Not tainted): Wrong object count. Counter is " +
                std::to_string(s->objects - 1) + " but counted were 0"});
  reset_errors();
  validate(s);
  EXPECT_EQ(errors(), 0);
  kmem_cache_destroy(s);
}

// 3. test_first_word
TEST_F(SlubKunit, FirstWord) {
  struct kmem_cache* s = create("TestSlub_1th_word_free", 64, SLAB_POISON);
  auto* p = static_cast<uint8_t*>(kmem_cache_alloc(s, GFP_KERNEL));
  kmem_cache_free(s, p);
  *p = 0x78;
  validate(s);
  EXPECT_EQ(errors(), 2);
  EXPECT_EQ(titles(), std::vector<std::string>{
                          "BUG TestSlub_1th_word_free (Not tainted): Poison overwritten"});
  EXPECT_NE(m->reports()[0].text.find("First byte 0x78 instead of 0x6b"), std::string::npos);
  EXPECT_EQ(*p, 0x6b);
  kmem_cache_destroy(s);
}

// 4. test_clobber_50th_byte
TEST_F(SlubKunit, Clobber50thByte) {
  struct kmem_cache* s = create("TestSlub_50th_word_free", 64, SLAB_POISON);
  auto* p = static_cast<uint8_t*>(kmem_cache_alloc(s, GFP_KERNEL));
  kmem_cache_free(s, p);
  p[50] = 0x9a;
  validate(s);
  EXPECT_EQ(errors(), 2);
  EXPECT_EQ(titles(), std::vector<std::string>{
                          "BUG TestSlub_50th_word_free (Not tainted): Poison overwritten"});
  EXPECT_EQ(m->reports()[0].offset, 50);
  kmem_cache_destroy(s);
}

// 5. test_clobber_redzone_free
TEST_F(SlubKunit, ClobberRedzoneFree) {
  struct kmem_cache* s = create("TestSlub_RZ_free", 64, SLAB_RED_ZONE);
  auto* p = static_cast<uint8_t*>(kmem_cache_alloc(s, GFP_KERNEL));
  kmem_cache_free(s, p);
  p[64] = 0xab;
  validate(s);
  EXPECT_EQ(errors(), 2);
  EXPECT_EQ(titles(), std::vector<std::string>{
                          "BUG TestSlub_RZ_free (Not tainted): Right Redzone overwritten"});
  EXPECT_NE(m->reports()[0].text.find("First byte 0xab instead of 0xbb"), std::string::npos);
  kmem_cache_destroy(s);
}

// 6. test_kmalloc_redzone_access
TEST_F(SlubKunit, KmallocRedzoneAccess) {
  struct kmem_cache* s =
      create("TestSlub_RZ_kmalloc", 32, SLAB_KMALLOC | SLAB_STORE_USER | SLAB_RED_ZONE);
  auto* p = static_cast<uint8_t*>(__kmalloc_cache_noprof(s, GFP_KERNEL, 18));
  p[18] = 0xab;
  p[19] = 0xab;
  validate(s);
  EXPECT_EQ(errors(), 2);
  EXPECT_EQ(titles(), std::vector<std::string>{
                          "BUG TestSlub_RZ_kmalloc (Not tainted): kmalloc Redzone overwritten"});
  EXPECT_NE(m->reports()[0].text.find("First byte 0xab instead of 0xcc"), std::string::npos);
  EXPECT_NE(m->reports()[0].text.find("Allocated in "), std::string::npos); // STORE_USER track
  kmem_cache_free(s, p);
  kmem_cache_destroy(s);
}

// 7/8 (test_kfree_rcu, test_kfree_rcu_wq_destroy) are in rcu_test.cpp.

// 9. test_leak_destroy
TEST_F(SlubKunit, LeakDestroy) {
  struct kmem_cache* s = create("TestSlub_leak_destroy", 64, SLAB_NO_MERGE);
  void* p = kmem_cache_alloc(s, GFP_KERNEL);
  ASSERT_NE(p, nullptr);
  kmem_cache_destroy(s);
  EXPECT_EQ(errors(), 2); // the header and one leaked object
  EXPECT_EQ(
      kmm::test::count_reports(*m, "BUG TestSlub_leak_destroy (Not tainted): Objects remaining in "
                                   "TestSlub_leak_destroy on __kmem_cache_shutdown()"),
      1u);
}

// 10. test_krealloc_redzone_zeroing
TEST_F(SlubKunit, KreallocRedzoneZeroing) {
  struct kmem_cache* s =
      create("TestSlub_krealloc_redzone", 64, SLAB_KMALLOC | SLAB_STORE_USER | SLAB_RED_ZONE);
  auto* p = static_cast<uint8_t*>(__kmalloc_cache_noprof(s, GFP_KERNEL, 48));
  std::memset(p, 0xff, 48);
  p = static_cast<uint8_t*>(krealloc(p, 40, GFP_KERNEL | __GFP_ZERO)); // shrink
  for (int i = 40; i < 64; i++) EXPECT_EQ(p[i], kmm::SLUB_RED_ACTIVE) << i;
  p = static_cast<uint8_t*>(krealloc(p, 56, GFP_KERNEL | __GFP_ZERO)); // grow in place
  for (int i = 40; i < 56; i++) EXPECT_EQ(p[i], 0) << i;
  for (int i = 56; i < 64; i++) EXPECT_EQ(p[i], kmm::SLUB_RED_ACTIVE) << i;
  validate(s);
  EXPECT_EQ(errors(), 0);
  std::memset(p, 0xff, 56);
  p = static_cast<uint8_t*>(krealloc(p, 112, GFP_KERNEL | __GFP_ZERO)); // a new 128-byte object
  for (int i = 0; i < 56; i++) EXPECT_EQ(p[i], 0xff) << i;
  for (int i = 56; i < 112; i++) EXPECT_EQ(p[i], 0) << i;
  kfree(p);
  kmem_cache_destroy(s);
  EXPECT_EQ(errors(), 0);
  EXPECT_TRUE(m->reports().empty());
}

// 11/12. test_kmalloc_nolock_and_friends_*: kmalloc/kfree/kfree_rcu hammered from two contexts at
// once. kmm has no NMI or kprobe; the second context is another CPU's thread plus interrupt
// handlers on the same CPU.
struct RcuObj {
  rcu_head rcu;
  char data[40];
};
static void irq_alloc_free(void*) {
  void* p = kmalloc(32, GFP_ATOMIC);
  kfree(p);
}
TEST_F(SlubKunit, KmallocAndFriendsFromTwoContexts) {
  scope.reset();
  auto work = [&](unsigned cpu) {
    kmm::CpuScope c(*m, cpu);
    for (int i = 0; i < 500; i++) {
      auto* o = static_cast<RcuObj*>(kmalloc(sizeof(RcuObj), GFP_KERNEL));
      ASSERT_NE(o, nullptr);
      void* q = kmalloc(16 + i % 200, GFP_KERNEL);
      kmm_run_in_irq(irq_alloc_free, nullptr);
      kfree(q);
      if (i % 2) kfree_rcu(o, rcu);
      else kfree(o);
    }
  };
  std::thread t0(work, 0), t1(work, 1);
  t0.join();
  t1.join();
  kmm::MachineScope s(*m);
  rcu_barrier();
  EXPECT_EQ(errors(), 0);
  EXPECT_TRUE(m->reports().empty());
  EXPECT_TRUE(kmm::validate(*m).empty());
}

// ---- slub_debug= and the alloc/free-path checks
// --------------------------------------------------

TEST(SlubDebug, BootFlagsApplyToKmallocCaches) {
  auto m = Machine::boot("nr_cpus=4 slub_debug=FZPU");
  EXPECT_EQ(m->proc_read("/sys/kernel/slab/kmalloc-64/red_zone"), "1\n");
  EXPECT_EQ(m->proc_read("/sys/kernel/slab/kmalloc-64/poison"), "1\n");
  EXPECT_EQ(m->proc_read("/sys/kernel/slab/kmalloc-64/store_user"), "1\n");
  EXPECT_EQ(m->proc_read("/sys/kernel/slab/kmalloc-64/sanity_checks"), "1\n");
  // 64 + right red zone 8 + free pointer 8 + 2 tracks 64 + orig_size 8 + word 8 + left 64 = 224,
  // aligned to 64: 256.
  EXPECT_EQ(m->proc_read("/sys/kernel/slab/kmalloc-64/slab_size"), "256\n");
  kmm::MachineScope scope(*m);
  char* p = static_cast<char*>(kmalloc(64, GFP_KERNEL));
  p[64] = 1;
  kfree(p); // the free-path check finds it, repairs it, and the object is not freed
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title, "BUG kmalloc-64 (Not tainted): Right Redzone overwritten");
  EXPECT_EQ(m->reports()[0].cache, "kmalloc-64");
  EXPECT_EQ(m->proc_write("/sys/kernel/slab/kmalloc-64/validate", "1"), 0);
  EXPECT_EQ(m->reports().size(), 1u); // repaired: nothing more to find
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(SlubDebug, PerCacheSelection) {
  auto m = Machine::boot("slub_debug=FZ,kmalloc-64");
  EXPECT_EQ(m->proc_read("/sys/kernel/slab/kmalloc-64/red_zone"), "1\n");
  EXPECT_EQ(m->proc_read("/sys/kernel/slab/kmalloc-64/poison"), "0\n");
  EXPECT_EQ(m->proc_read("/sys/kernel/slab/kmalloc-128/red_zone"), "0\n");
  EXPECT_THROW(Machine::boot("slub_debug=Q"), kmm::BootError);
}

TEST(SlubDebug, DoubleFreeIsObjectAlreadyFreeAndNotFreed) {
  auto m = Machine::boot("slub_debug=F");
  kmm::MachineScope scope(*m);
  void* a = kmalloc(64, GFP_KERNEL);
  void* b = kmalloc(64, GFP_KERNEL);
  kfree(a);
  kfree(b);
  kfree(a); // not at the head of the freelist: only the full walk finds it
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title, "BUG kmalloc-64 (Not tainted): Object already free");
  EXPECT_TRUE(kmm::validate(*m).empty());
  EXPECT_NE(kmalloc(64, GFP_KERNEL), kmalloc(64, GFP_KERNEL)); // the freelist is still sane
}

TEST(SlubDebug, InvalidPointerWithConsistencyChecks) {
  auto m = Machine::boot("slub_debug=F");
  kmm::MachineScope scope(*m);
  char* p = static_cast<char*>(kmalloc(64, GFP_KERNEL));
  kfree(p + 4);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(
      m->reports()[0].title.rfind("BUG kmalloc-64 (Not tainted): Invalid object pointer 0x", 0),
      0u);
  kfree(p);
  EXPECT_EQ(m->reports().size(), 1u);
}

TEST(SlubDebug, UseAfterFreeCaughtOnTheNextAllocation) {
  auto m = Machine::boot("slub_debug=FP");
  kmm::MachineScope scope(*m);
  struct kmem_cache* s = kmem_cache_create("uaf", 48, 0, 0, nullptr);
  auto* p = static_cast<uint8_t*>(kmem_cache_alloc(s, GFP_KERNEL));
  kmem_cache_free(s, p);
  p[10] = 0;
  void* q = kmem_cache_alloc(s, GFP_KERNEL); // alloc_consistency_checks: poison
  EXPECT_NE(q, nullptr);
  EXPECT_EQ(kmm::test::count_reports(*m, "BUG uaf (Not tainted): Poison overwritten"), 1u);
  EXPECT_NE(m->dmesg().find("FIX uaf: Marking all objects used"), std::string::npos);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(SlubDebug, LeftRedzoneAndPaddingAndFreepointer) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  struct kmem_cache* s =
      kmem_cache_create("lrz", 40, 0, SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER, nullptr);
  auto* p = static_cast<uint8_t*>(kmem_cache_alloc(s, GFP_KERNEL));
  p[-1] = 0;
  kmm::validate_slab_cache(m->kernel(), s);
  EXPECT_EQ(kmm::test::count_reports(*m, "BUG lrz (Not tainted): Left Redzone overwritten"), 1u);
  // kmm::validate sees damage without repairing it.
  p[-2] = 0;
  auto errs = kmm::validate(*m);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_NE(errs[0].find("Left Redzone overwritten"), std::string::npos);
  kmm::validate_slab_cache(m->kernel(), s);
  EXPECT_TRUE(kmm::validate(*m).empty());
  // The free pointer of a free object (outside the object with POISON).
  auto* q = static_cast<uint8_t*>(kmem_cache_alloc(s, GFP_KERNEL));
  kmem_cache_free(s, q);
  std::memset(q + s->offset, 0x41, 8);
  m->clear_reports();
  kmm::validate_slab_cache(m->kernel(), s);
  EXPECT_GE(kmm::test::count_reports(*m, "BUG lrz (Not tainted): Freechain corrupt") +
                kmm::test::count_reports(*m, "BUG lrz (Not tainted): Freepointer corrupt"),
            1u);
  EXPECT_NE(m->reports()[0].text.find("Allocated in "), std::string::npos);
  EXPECT_NE(m->reports()[0].text.find("Freed in "), std::string::npos);
}

TEST(SlubDebug, SlabPaddingOverwritten) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  // 328 bytes with POISON only: 336-byte slots, leftovers at the end of the slab.
  struct kmem_cache* s = kmem_cache_create("pad", 328, 0, SLAB_POISON, nullptr);
  auto* p = static_cast<uint8_t*>(kmem_cache_alloc(s, GFP_KERNEL));
  uint8_t* base =
      reinterpret_cast<uint8_t*>(reinterpret_cast<uintptr_t>(p) & ~uintptr_t(PAGE_SIZE - 1));
  unsigned long slab_bytes = PAGE_SIZE << s->order;
  base[slab_bytes - 1] = 0;
  kmm::validate_slab_cache(m->kernel(), s);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title.rfind("BUG pad (Not tainted): Padding overwritten. 0x", 0), 0u);
  EXPECT_NE(m->reports()[0].text.find("FIX pad: Restoring slab padding"), std::string::npos);
  EXPECT_EQ(base[slab_bytes - 1], kmm::POISON_INUSE);
}

// ---- slub_debug=T, and the planted slab corruptions validate finds (quietly) and repairs --------

TEST(SlubDebug, TraceFlagLogsEachAllocAndFree) {
  auto m = Machine::boot("slub_debug=T,traced");
  EXPECT_EQ(m->proc_read("/sys/kernel/slab/kmalloc-64/trace"), "0\n");
  kmm::MachineScope scope(*m);
  kmm::Kernel& k = m->kernel();
  struct kmem_cache* s = kmem_cache_create("traced", 64, 0, 0, nullptr);
  EXPECT_EQ(m->proc_read("/sys/kernel/slab/traced/trace"), "1\n");
  void* p = kmem_cache_alloc(s, GFP_KERNEL);
  ASSERT_NE(p, nullptr);
  void* next = kmm::virt_to_slab(k, p)->slab.freelist;
  ASSERT_NE(next, nullptr);
  EXPECT_NE(m->dmesg().find(kmm::strprintf("TRACE traced alloc 0x%llx inuse=1 fp=0x%llx\n",
                                           (unsigned long long)k.mem.kva(p),
                                           (unsigned long long)k.mem.kva(next))),
            std::string::npos)
      << m->dmesg();
  kmem_cache_free(s, p);
  EXPECT_NE(m->dmesg().find(kmm::strprintf("TRACE traced free 0x%llx inuse=1 fp=0x%llx\n",
                                           (unsigned long long)k.mem.kva(p),
                                           (unsigned long long)k.mem.kva(next))),
            std::string::npos)
      << m->dmesg();
  kmem_cache_destroy(s);
  EXPECT_TRUE(m->reports().empty());
}

namespace {

// A poisoned debug cache of 64-byte objects whose first slab is full, then all but its last
// object freed: slab() is that slab, on the partial list with one object in use.
class SlubPlanted : public ::testing::Test {
protected:
  void SetUp() override {
    m = Machine::boot("mem=64M nr_cpus=2");
    scope = std::make_unique<kmm::MachineScope>(*m);
    s = kmem_cache_create("planted", 64, 0, SLAB_POISON | SLAB_CONSISTENCY_CHECKS, nullptr);
    std::vector<char*> objs;
    for (unsigned i = 0; i < s->objects; i++)
      objs.push_back(static_cast<char*>(kmem_cache_alloc(s, GFP_KERNEL)));
    std::sort(objs.begin(), objs.end());
    last = objs.back();
    ASSERT_EQ(kmm::virt_to_slab(k(), objs.front()), kmm::virt_to_slab(k(), last));
    EXPECT_EQ(kmm::validate_slab_cache(k(), s), 0); // a full slab
    for (char* o : objs)
      if (o != last) kmem_cache_free(s, o);
    ASSERT_EQ(slab()->slab.inuse, 1);
  }
  void TearDown() override { scope.reset(); }
  kmm::Kernel& k() { return m->kernel(); }
  struct page* slab() {
    return kmm::virt_to_slab(k(), last);
  }
  unsigned long long kva(const void* p) { return (unsigned long long)k().mem.kva(p); }
  long errors() { return k().slab->slab_errors.load(); }
  std::vector<std::string> titles() {
    std::vector<std::string> t;
    for (auto& r : m->reports()) t.push_back(r.title);
    return t;
  }
  static bool has(const std::vector<std::string>& v, const std::string& e) {
    return std::find(v.begin(), v.end(), e) != v.end();
  }
  std::unique_ptr<Machine> m;
  std::unique_ptr<kmm::MachineScope> scope;
  struct kmem_cache* s = nullptr;
  char* last = nullptr;
};

} // namespace

TEST_F(SlubPlanted, CleanSlabPassesBothChecks) {
  EXPECT_TRUE(kmm::validate(*m).empty());
  EXPECT_EQ(kmm::validate_slab_cache(k(), s), 0);
  EXPECT_TRUE(m->reports().empty());
}

TEST_F(SlubPlanted, InuseAndObjectsBeyondTheSlab) {
  unsigned objects = s->objects;
  slab()->slab.inuse = uint16_t(objects + 1);
  std::string inuse = kmm::strprintf("inuse %u > max %u", objects + 1, objects);
  EXPECT_TRUE(has(kmm::validate(*m), "slub: planted: " + inuse));
  EXPECT_EQ(kmm::validate_slab_cache(k(), s), 1);
  EXPECT_EQ(titles(), std::vector<std::string>{"BUG planted (Not tainted): " + inuse});
  slab()->slab.inuse = 1;
  m->clear_reports();

  slab()->slab.objects = uint16_t(objects + 1);
  std::string over = kmm::strprintf("objects %u > max %u", objects + 1, objects);
  EXPECT_TRUE(has(kmm::validate(*m), "slub: planted: " + over));
  EXPECT_EQ(kmm::validate_slab_cache(k(), s), 1);
  EXPECT_EQ(titles(), std::vector<std::string>{"BUG planted (Not tainted): " + over});
  slab()->slab.objects = uint16_t(objects);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST_F(SlubPlanted, WrongNumberOfObjectsIsAdjusted) {
  // One object short: the missing slot is the allocated last one, so the freelist stays valid.
  unsigned objects = s->objects;
  slab()->slab.objects = uint16_t(objects - 1);
  auto e = kmm::validate(*m);
  EXPECT_TRUE(
      has(e, kmm::strprintf("slub: planted: Wrong number of objects. Found %u but should be %u",
                            objects - 1, objects)));
  EXPECT_TRUE(has(e, "slub: planted: Wrong object count. Counter is 1 but counted were 0"));
  EXPECT_EQ(kmm::validate_slab_cache(k(), s), 2); // the report and its fix
  EXPECT_EQ(titles(),
            std::vector<std::string>{kmm::strprintf(
                "BUG planted (Not tainted): Wrong number of objects. Found %u but should be %u",
                objects - 1, objects)});
  EXPECT_NE(m->reports()[0].text.find("FIX planted: Number of objects adjusted\n"),
            std::string::npos);
  EXPECT_EQ(slab()->slab.objects, objects);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST_F(SlubPlanted, FreelistHeadOutsideTheSlabIsCleared) {
  slab()->slab.freelist = last + 8; // inside the slab, not an object
  EXPECT_TRUE(has(kmm::validate(*m), "slub: planted: slab freelist head corrupt"));
  EXPECT_EQ(kmm::validate_slab_cache(k(), s), 2);
  EXPECT_EQ(titles(), std::vector<std::string>{"BUG planted (Not tainted): Freepointer corrupt"});
  EXPECT_NE(m->reports()[0].text.find("FIX planted: Freelist cleared\n"), std::string::npos);
  // The kernel's repair: no free objects left, every object counted as used.
  EXPECT_EQ(slab()->slab.freelist, nullptr);
  EXPECT_EQ(slab()->slab.inuse, s->objects);
}

TEST_F(SlubPlanted, FreelistCycleIsCleared) {
  void* a = slab()->slab.freelist;
  void* b = kmm::get_freepointer(s, a);
  ASSERT_NE(b, nullptr);
  kmm::set_freepointer(s, b, a); // a -> b -> a
  EXPECT_TRUE(has(kmm::validate(*m), "slub: planted: freelist cycle"));
  EXPECT_EQ(kmm::validate_slab_cache(k(), s), 2);
  EXPECT_EQ(titles(),
            std::vector<std::string>{"BUG planted (Not tainted): Freelist cycle detected"});
  EXPECT_NE(m->reports()[0].text.find("FIX planted: Freelist cleared\n"), std::string::npos);
  EXPECT_EQ(slab()->slab.freelist, nullptr);
}

TEST_F(SlubPlanted, FreePointerOfAnAllocatedObject) {
  // With SLAB_POISON the free pointer lives after the object, so it is checked even while the
  // object is allocated.
  ASSERT_GE(s->offset, s->inuse);
  std::memset(last + s->offset, 0x41, sizeof(void*));
  EXPECT_TRUE(has(kmm::validate(*m),
                  kmm::strprintf("slub: planted: object 0x%llx: free pointer corrupt", kva(last))));
  EXPECT_EQ(kmm::validate_slab_cache(k(), s), 1);
  EXPECT_EQ(titles(), std::vector<std::string>{"BUG planted (Not tainted): Freepointer corrupt"});
  EXPECT_EQ(kmm::get_freepointer(s, last), nullptr); // the chain is cut there
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST_F(SlubPlanted, ListCountersAreRecounted) {
  s->node.nr_partial++;
  EXPECT_EQ(kmm::validate_slab_cache(k(), s), 1);
  EXPECT_NE(m->dmesg().find("SLUB planted: 1 partial slabs counted but counter=2\n"),
            std::string::npos);
  s->node.nr_partial--;
  s->node.nr_slabs++;
  EXPECT_EQ(kmm::validate_slab_cache(k(), s), 1);
  EXPECT_NE(m->dmesg().find("SLUB: planted 1 slabs counted but counter=2\n"), std::string::npos);
  s->node.nr_slabs--;
  EXPECT_EQ(kmm::validate_slab_cache(k(), s), 0);
  EXPECT_TRUE(m->reports().empty());
}

TEST(SlubDebug, AlignmentPaddingOfAPoisonedCache) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  kmm::Kernel& k = m->kernel();
  // 41 bytes, poison only: the object is padded to 48 bytes with POISON_INUSE.
  struct kmem_cache* s = kmem_cache_create("pad41", 41, 0, SLAB_POISON, nullptr);
  ASSERT_EQ(s->inuse, 48u);
  auto* p = static_cast<uint8_t*>(kmem_cache_alloc(s, GFP_KERNEL));
  p[43] = 0x11;
  auto e = kmm::validate(*m);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0], kmm::strprintf("slub: pad41: object 0x%llx: Alignment padding overwritten at "
                                 "offset 43 (0x11 instead of 0x5a)",
                                 (unsigned long long)k.mem.kva(p)));
  kmm::validate_slab_cache(k, s);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title, "BUG pad41 (Not tainted): Alignment padding overwritten");
  EXPECT_EQ(p[43], kmm::POISON_INUSE); // restored
  EXPECT_TRUE(kmm::validate(*m).empty());
  kmem_cache_free(s, p);
  kmem_cache_destroy(s);
}

TEST(SlubDebug, SlabPaddingSeenByValidateWithoutRepair) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  struct kmem_cache* s = kmem_cache_create("pad", 328, 0, SLAB_POISON, nullptr);
  auto* p = static_cast<uint8_t*>(kmem_cache_alloc(s, GFP_KERNEL));
  uint8_t* base =
      static_cast<uint8_t*>(kmm::slab_address(m->kernel(), kmm::virt_to_slab(m->kernel(), p)));
  unsigned long slab_bytes = PAGE_SIZE << s->order;
  base[slab_bytes - 3] = 0;
  std::vector<std::string> expect{
      kmm::strprintf("slub: pad: slab padding overwritten at offset %lu", slab_bytes - 3)};
  EXPECT_EQ(kmm::validate(*m), expect);
  EXPECT_EQ(kmm::validate(*m), expect); // still there: kmm::validate repairs nothing
  EXPECT_TRUE(m->reports().empty());
  kmem_cache_free(s, p);
}
