// Tests for allocator/src/slab_common.cpp: the slub_debug= boot syntax (letters, cache lists,
// wildcards, several blocks), kmem_cache_destroy() of something that is not a cache, the
// /sys/kernel/slab attributes, and slab_validate()'s word for each planted list corruption.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "bug.h"
#include "kernel.h"
#include "kmm/linux.h"
#include "kmm/validate.h"
#include "slub.h"
#include "test_util.h"

using kmm::test::dump;
using kmm::test::has;

using kmm::Machine;

namespace {

std::string sysfs(Machine& m, const std::string& cache, const std::string& attr) {
  return m.proc_read("/sys/kernel/slab/" + cache + "/" + attr);
}

// The debug letters /sys/kernel/slab/<cache>/ shows: F Z P U T.
std::string debug_letters(Machine& m, const std::string& cache) {
  std::string s;
  if (sysfs(m, cache, "sanity_checks") == "1\n") s += 'F';
  if (sysfs(m, cache, "red_zone") == "1\n") s += 'Z';
  if (sysfs(m, cache, "poison") == "1\n") s += 'P';
  if (sysfs(m, cache, "store_user") == "1\n") s += 'U';
  if (sysfs(m, cache, "trace") == "1\n") s += 'T';
  return s;
}

} // namespace

TEST(SlubDebugParam, EmptyLettersMeanTheDefaultSet) {
  auto m = Machine::boot("slub_debug=,kmalloc-128");
  EXPECT_EQ(debug_letters(*m, "kmalloc-128"), "FZPU");
  EXPECT_EQ(debug_letters(*m, "kmalloc-64"), "");
}

TEST(SlubDebugParam, SeveralCachesAndWildcards) {
  auto m = Machine::boot("slub_debug=ZT,kmalloc-64,kmalloc-rcl-*");
  EXPECT_EQ(debug_letters(*m, "kmalloc-64"), "ZT");
  EXPECT_EQ(debug_letters(*m, "kmalloc-rcl-8"), "ZT");
  EXPECT_EQ(debug_letters(*m, "kmalloc-rcl-8k"), "ZT");
  EXPECT_EQ(debug_letters(*m, "kmalloc-32"), "");
}

TEST(SlubDebugParam, BlocksAfterSemicolonsAndTheMinusLetter) {
  // "U for every cache; F for kmalloc-96; nothing (-) for kmalloc-192": the first matching
  // block wins, the rest get the global letters.
  auto m = Machine::boot("slub_debug=U;F,kmalloc-96;-,kmalloc-192");
  EXPECT_EQ(debug_letters(*m, "kmalloc-96"), "F");
  EXPECT_EQ(debug_letters(*m, "kmalloc-192"), "");
  EXPECT_EQ(debug_letters(*m, "kmalloc-8"), "U");
  // O ("skip debug if it raises the order") is accepted and ignored; A (failslab) shows no letter.
  auto o = Machine::boot("slub_debug=FOA");
  EXPECT_EQ(debug_letters(*o, "kmalloc-8"), "F");
  // "P-Z": the minus clears the letters before it.
  auto minus = Machine::boot("slub_debug=P-Z");
  EXPECT_EQ(debug_letters(*minus, "kmalloc-8"), "Z");
}

TEST(SlabCommon, DestroyOfSomethingThatIsNotACache) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  alignas(64) static char not_a_cache[1024];
  kmem_cache_destroy(reinterpret_cast<struct kmem_cache*>(not_a_cache));
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title, "WARNING: CPU: 0 PID: 1 at mm/slab_common.c kmem_cache_destroy");
  EXPECT_NE(m->reports()[0].text.find("): not a slab cache\n"), std::string::npos);
  kmem_cache_destroy(nullptr); // a no-op
  EXPECT_EQ(m->reports().size(), 1u);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

static void zero_ctor(void* p) { static_cast<char*>(p)[0] = 0; }

TEST(SlabCommon, SysfsTotalObjectsAndCtor) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  struct kmem_cache* plain = kmem_cache_create("plain", 200, 0, SLAB_NO_MERGE, nullptr);
  struct kmem_cache* with_ctor = kmem_cache_create("with_ctor", 200, 0, 0, zero_ctor);
  EXPECT_EQ(sysfs(*m, "plain", "total_objects"), "0\n");
  void* a = kmem_cache_alloc(plain, GFP_KERNEL);
  void* b = kmem_cache_alloc(with_ctor, GFP_KERNEL);
  EXPECT_EQ(sysfs(*m, "plain", "total_objects"), std::to_string(plain->objects) + "\n");
  EXPECT_EQ(sysfs(*m, "plain", "ctor"), "");
  EXPECT_EQ(sysfs(*m, "with_ctor", "ctor"), "ctor\n");
  kmem_cache_free(plain, a);
  kmem_cache_free(with_ctor, b);
  kmem_cache_destroy(plain);
  kmem_cache_destroy(with_ctor);
  EXPECT_TRUE(m->reports().empty());
}

// ---- slab_validate(): list-level corruptions --------------------------------------------------

namespace {

class SlabValidatePlanted : public ::testing::Test {
protected:
  void SetUp() override {
    m = Machine::boot("mem=64M nr_cpus=2");
    scope = std::make_unique<kmm::MachineScope>(*m);
  }
  void TearDown() override { scope.reset(); }
  kmm::Kernel& k() { return m->kernel(); }
  unsigned pfn(struct page* slab) { return unsigned(k().mem.page_to_pfn(slab)); }
  std::unique_ptr<Machine> m;
  std::unique_ptr<kmm::MachineScope> scope;
};

} // namespace

TEST_F(SlabValidatePlanted, PartialSlabStates) {
  // A debug cache has no cpu slabs: its one slab with a free object is on the partial list.
  // (SLAB_CONSISTENCY_CHECKS alone does not stop merging, as in the kernel: SLAB_NO_MERGE.)
  struct kmem_cache* s =
      kmem_cache_create("vp", 64, 0, SLAB_CONSISTENCY_CHECKS | SLAB_NO_MERGE, nullptr);
  void* p = kmem_cache_alloc(s, GFP_KERNEL);
  struct page* slab = kmm::virt_to_slab(k(), p);
  ASSERT_EQ(s->node.nr_partial, 1u);
  unsigned n = pfn(slab);

  slab->slab.frozen = 1;
  auto e = kmm::validate(*m);
  EXPECT_EQ(
      e, std::vector<std::string>{kmm::strprintf("slub: vp: partial slab pfn 0x%x is frozen", n)})
      << dump(e);
  slab->slab.frozen = 0;

  void* freelist = slab->slab.freelist;
  uint16_t inuse = slab->slab.inuse;
  slab->slab.freelist = nullptr;
  slab->slab.inuse = slab->slab.objects;
  e = kmm::validate(*m);
  EXPECT_EQ(e, std::vector<std::string>{kmm::strprintf(
                   "slub: vp: partial slab pfn 0x%x has no free object", n)})
      << dump(e);
  slab->slab.freelist = freelist;
  slab->slab.inuse = inuse;

  s->node.nr_partial++;
  e = kmm::validate(*m);
  EXPECT_EQ(e, std::vector<std::string>{"slub: vp: 1 partial slabs but nr_partial=2"}) << dump(e);
  s->node.nr_partial--;

  s->node.nr_slabs++;
  e = kmm::validate(*m);
  EXPECT_EQ(e, std::vector<std::string>{"slub: vp: 1 slabs on lists and cpus but nr_slabs=2"})
      << dump(e);
  s->node.nr_slabs--;

  struct kmem_cache* other = kmem_cache_create("vp_other", 64, 0, SLAB_NO_MERGE, nullptr);
  slab->slab.slab_cache = other;
  e = kmm::validate(*m);
  EXPECT_TRUE(has(e, kmm::strprintf("slub: vp: pfn 0x%x on the partial list is not a slab of this "
                                    "cache",
                                    n)))
      << dump(e);
  slab->slab.slab_cache = s;

  EXPECT_EQ(dump(kmm::validate(*m)), "");
  kmem_cache_free(s, p);
  kmem_cache_destroy(s);
  kmem_cache_destroy(other);
  EXPECT_TRUE(m->reports().empty());
}

TEST_F(SlabValidatePlanted, FullSlabWithAFreeObject) {
  struct kmem_cache* s =
      kmem_cache_create("vf", 64, 0, SLAB_CONSISTENCY_CHECKS | SLAB_NO_MERGE, nullptr);
  std::vector<void*> objs;
  for (unsigned i = 0; i < s->objects; i++) objs.push_back(kmem_cache_alloc(s, GFP_KERNEL));
  struct page* slab = kmm::virt_to_slab(k(), objs[0]);
  ASSERT_EQ(slab->slab.freelist, nullptr);
  ASSERT_EQ(s->node.nr_partial, 0u);
  // Plant one free object in the full slab without moving it to the partial list.
  kmm::set_freepointer(s, objs[0], nullptr);
  slab->slab.freelist = objs[0];
  slab->slab.inuse--;
  auto e = kmm::validate(*m);
  EXPECT_EQ(e, std::vector<std::string>{kmm::strprintf(
                   "slub: vf: full slab pfn 0x%x has free objects", pfn(slab))})
      << dump(e);
  slab->slab.freelist = nullptr;
  slab->slab.inuse++;
  EXPECT_EQ(dump(kmm::validate(*m)), "");
  for (void* o : objs) kmem_cache_free(s, o);
  kmem_cache_destroy(s);
  EXPECT_TRUE(m->reports().empty());
}

TEST_F(SlabValidatePlanted, CpuSlabStates) {
  // Without debugging, cpu 0 allocates from its own frozen slab.
  struct kmem_cache* s = kmem_cache_create("vc", 64, 0, SLAB_NO_MERGE, nullptr);
  void* p = kmem_cache_alloc(s, GFP_KERNEL);
  kmem_cache_cpu& c0 = s->cpu_slab[0];
  kmem_cache_cpu& c1 = s->cpu_slab[1];
  ASSERT_NE(c0.slab, nullptr);
  ASSERT_EQ(c1.slab, nullptr);
  ASSERT_NE(c0.freelist, nullptr);
  unsigned n = pfn(c0.slab);
  EXPECT_EQ(dump(kmm::validate(*m)), "");

  c1.freelist = c0.freelist;
  auto e = kmm::validate(*m);
  EXPECT_EQ(e, std::vector<std::string>{"slub: vc: cpu 1 has a freelist but no slab"}) << dump(e);

  // The same slab as cpu 1's too: two lists, frozen to the wrong cpu, counted twice.
  c1.slab = c0.slab;
  e = kmm::validate(*m);
  EXPECT_TRUE(has(e, kmm::strprintf("slub: vc: slab pfn 0x%x is on two lists", n))) << dump(e);
  EXPECT_TRUE(has(e, kmm::strprintf("slub: vc: cpu 1 slab pfn 0x%x is not frozen to it", n)))
      << dump(e);
  EXPECT_TRUE(has(e, "slub: vc: 2 slabs on lists and cpus but nr_slabs=1")) << dump(e);
  c1.slab = nullptr;
  c1.freelist = nullptr;

  void* head = c0.freelist;
  c0.freelist = static_cast<char*>(head) + 8;
  e = kmm::validate(*m);
  EXPECT_EQ(e, std::vector<std::string>{"slub: vc: cpu 0 freelist leaves its slab"}) << dump(e);
  c0.freelist = head;

  void* next = kmm::get_freepointer(s, head);
  kmm::set_freepointer(s, head, head); // head -> head -> ...
  e = kmm::validate(*m);
  EXPECT_EQ(e, std::vector<std::string>{"slub: vc: cpu 0 freelist is cyclic"}) << dump(e);
  kmm::set_freepointer(s, head, next);

  EXPECT_EQ(dump(kmm::validate(*m)), "");
  kmem_cache_free(s, p);
  kmem_cache_destroy(s);
  EXPECT_TRUE(m->reports().empty());
}

TEST_F(SlabValidatePlanted, FastpathFollowsTheDebugFlagsAndTheMachine) {
  // A plain cache takes the lock-free paths; a debug cache never does.
  struct kmem_cache* plain = kmem_cache_create("vf", 64, 0, SLAB_NO_MERGE, nullptr);
  struct kmem_cache* debug = kmem_cache_create("vd", 64, 0, SLAB_RED_ZONE, nullptr);
  EXPECT_TRUE(plain->fastpath);
  EXPECT_FALSE(debug->fastpath);
  EXPECT_EQ(dump(kmm::validate(*m)), "");

  plain->fastpath = false;
  auto e = kmm::validate(*m);
  EXPECT_EQ(e,
            std::vector<std::string>{"slub: vf: fastpath is 0, but debug flags 0x0, init_on_alloc "
                                     "0, init_on_free 0, kasan 0, kfence 0 ask for 1"})
      << dump(e);
  plain->fastpath = true;
  debug->fastpath = true;
  e = kmm::validate(*m);
  EXPECT_EQ(
      e, std::vector<std::string>{"slub: vd: fastpath is 1, but debug flags 0x400, "
                                  "init_on_alloc 0, init_on_free 0, kasan 0, kfence 0 ask for 0"})
      << dump(e);
  debug->fastpath = false;
  kmem_cache_destroy(plain);
  kmem_cache_destroy(debug);
  EXPECT_TRUE(m->reports().empty());

  // KASAN and KFENCE come up after the kmalloc caches: kmem_cache_init_late() turns the caches
  // made before them over to the general paths, where the hooks run.
  for (const char* boot :
       {"mem=64M kasan=on", "mem=64M kfence.sample_interval=1", "mem=64M init_on_free=1"}) {
    auto mk = Machine::boot(boot);
    struct kmem_cache* kmalloc64 = mk->kernel().kmalloc_caches[0][6];
    ASSERT_NE(kmalloc64, nullptr) << boot;
    EXPECT_EQ(kmalloc64->name, "kmalloc-64") << boot;
    EXPECT_FALSE(kmalloc64->fastpath) << boot;
    EXPECT_EQ(dump(kmm::validate(*mk)), "") << boot;
  }
}
