// Tests for allocator/src/slub.cpp and slab_common.cpp: cache geometry against the kernel's
// numbers, /proc/slabinfo, the per-CPU paths and remote frees, merging, shrink, bulk, destroy,
// hardened and randomised freelists, misuse reports, and a threaded stress test for TSan.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "bug.h"
#include "kernel.h"
#include "kmm/linux.h"
#include "kmm/validate.h"
#include "slub.h"
#include "test_util.h"

using kmm::Machine;
using kmm::test::count_reports;
using kmm::test::proc_rows;
using kmm::test::proc_value;

namespace {

struct SlabRow {
  unsigned long active, num;
  unsigned objsize, objperslab, pagesperslab;
  unsigned long slabs;
};

std::map<std::string, SlabRow> slabinfo(Machine& m) {
  std::map<std::string, SlabRow> out;
  auto rows = proc_rows(m, "/proc/slabinfo");
  for (size_t i = 2; i < rows.size(); i++) {
    auto& r = rows[i];
    if (r.size() != 16) continue;
    out[r[0]] =
        SlabRow{std::stoul(r[1]),           std::stoul(r[2]),           unsigned(std::stoul(r[3])),
                unsigned(std::stoul(r[4])), unsigned(std::stoul(r[5])), std::stoul(r[14])};
  }
  return out;
}

int ctor_calls = 0;
void counting_ctor(void*) { ctor_calls++; }

} // namespace

TEST(SlubGeometry, Example328ByteStructGives448ByteSlotAnd18CtorCalls) {
  auto m = Machine::boot("mem=64M nr_cpus=4");
  kmm::MachineScope scope(*m);
  ctor_calls = 0;
  struct kmem_cache* s =
      kmem_cache_create("test328", 328, sizeof(long),
                        SLAB_POISON | SLAB_RED_ZONE | SLAB_HWCACHE_ALIGN, counting_ctor);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(ctor_calls, 0);
  void* p = kmem_cache_alloc(s, GFP_KERNEL);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(ctor_calls, 18); // every object of the new order-1 slab, not just the one handed out
  auto info = slabinfo(*m);
  ASSERT_TRUE(info.count("test328"));
  EXPECT_EQ(info["test328"].objsize, 448u);
  EXPECT_EQ(info["test328"].objperslab, 18u);
  EXPECT_EQ(info["test328"].pagesperslab, 2u);
  EXPECT_EQ(info["test328"].num, 18u);
  EXPECT_EQ(kmem_cache_size(s), 328u);
  kmem_cache_free(s, p);
  kmem_cache_destroy(s);
  EXPECT_TRUE(m->reports().empty());
  EXPECT_TRUE(kmm::validate(*m).empty());
}

// The reference table (kernel-algorithms.md section 4): objects per slab / order.
static void expect_kmalloc_geometry(
    const char* cmdline,
    const std::vector<std::pair<std::string, std::pair<unsigned, unsigned>>>& table) {
  auto m = Machine::boot(cmdline);
  auto info = slabinfo(*m);
  for (auto& [name, geo] : table) {
    SCOPED_TRACE(std::string(cmdline) + " " + name);
    ASSERT_TRUE(info.count(name));
    EXPECT_EQ(info[name].objperslab, geo.first);
    EXPECT_EQ(info[name].pagesperslab, 1u << geo.second);
    unsigned size = info[name].objsize;
    for (const char* prefix : {"kmalloc-rcl-", "dma-kmalloc-"}) {
      std::string other = prefix + name.substr(8);
      ASSERT_TRUE(info.count(other)) << other;
      EXPECT_EQ(info[other].objsize, size);
      EXPECT_EQ(info[other].objperslab, geo.first);
    }
  }
}

TEST(SlubGeometry, KmallocCachesMatchTheKernelOn4Cpus) {
  expect_kmalloc_geometry("nr_cpus=4", {{"kmalloc-8", {512, 0}},
                                        {"kmalloc-16", {256, 0}},
                                        {"kmalloc-32", {128, 0}},
                                        {"kmalloc-64", {64, 0}},
                                        {"kmalloc-96", {42, 0}},
                                        {"kmalloc-128", {32, 0}},
                                        {"kmalloc-192", {21, 0}},
                                        {"kmalloc-256", {16, 0}},
                                        {"kmalloc-512", {16, 1}},
                                        {"kmalloc-1k", {16, 2}},
                                        {"kmalloc-2k", {16, 3}},
                                        {"kmalloc-4k", {8, 3}},
                                        {"kmalloc-8k", {4, 3}}});
}

TEST(SlubGeometry, KmallocCachesMatchTheKernelOn64Cpus) {
  expect_kmalloc_geometry("nr_cpus=64", {{"kmalloc-8", {512, 0}},
                                         {"kmalloc-16", {256, 0}},
                                         {"kmalloc-32", {128, 0}},
                                         {"kmalloc-64", {64, 0}},
                                         {"kmalloc-96", {42, 0}},
                                         {"kmalloc-128", {32, 0}},
                                         {"kmalloc-192", {42, 1}},
                                         {"kmalloc-256", {32, 1}},
                                         {"kmalloc-512", {32, 2}},
                                         {"kmalloc-1k", {32, 3}},
                                         {"kmalloc-2k", {16, 3}},
                                         {"kmalloc-4k", {8, 3}},
                                         {"kmalloc-8k", {4, 3}}});
}

TEST(SlubGeometry, ObjsizeIsTheSlotStride) {
  auto m = Machine::boot("nr_cpus=4");
  auto info = slabinfo(*m);
  EXPECT_EQ(info["kmalloc-96"].objsize, 96u);
  EXPECT_EQ(info["kmalloc-192"].objsize, 192u);
  EXPECT_EQ(info["kmalloc-8k"].objsize, 8192u);
  kmm::MachineScope scope(*m);
  // HWCACHE_ALIGN halves the line while the object fits twice: 20 bytes -> 32-byte slots.
  struct kmem_cache* s =
      kmem_cache_create("hw20", 20, 0, SLAB_HWCACHE_ALIGN | SLAB_NO_MERGE, nullptr);
  EXPECT_EQ(slabinfo(*m)["hw20"].objsize, 32u);
  EXPECT_EQ(slabinfo(*m)["hw20"].objperslab, 128u);
  kmem_cache_destroy(s);
}

TEST(Slabinfo, HeaderAndNewestFirstAndRowFormat) {
  auto m = Machine::boot("nr_cpus=4");
  kmm::MachineScope scope(*m);
  std::string text = m->proc_read("/proc/slabinfo");
  EXPECT_EQ(text.rfind("slabinfo - version: 2.1\n# name            <active_objs> <num_objs> "
                       "<objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> "
                       "<sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n",
                       0),
            0u);
  auto rows = proc_rows(*m, "/proc/slabinfo");
  EXPECT_EQ(rows[2][0], "dma-kmalloc-8k"); // the last cache the boot created
  struct kmem_cache* s = kmem_cache_create("newest", 100, 0, SLAB_NO_MERGE, nullptr);
  void* p = kmem_cache_alloc(s, GFP_KERNEL);
  rows = proc_rows(*m, "/proc/slabinfo");
  EXPECT_EQ(rows[2][0], "newest");
  // "%-17s %6lu %6lu %6u %4u %4d : tunables %4u %4u %4u : slabdata %6lu %6lu %6lu"
  text = m->proc_read("/proc/slabinfo");
  size_t at = text.find("\nnewest");
  ASSERT_NE(at, std::string::npos);
  EXPECT_EQ(
      text.substr(at + 1, text.find('\n', at + 1) - at - 1),
      kmm::strprintf("%-17s %6lu %6lu %6u %4u %4d : tunables %4u %4u %4u : slabdata %6lu %6lu %6lu",
                     "newest", 39ul, 39ul, 104u, 39u, 1, 0u, 0u, 0u, 1ul, 1ul, 0ul));
  kmem_cache_free(s, p);
  kmem_cache_destroy(s);
  EXPECT_EQ(slabinfo(*m).count("newest"), 0u);
}

TEST(Slub, AllocFreeReuseAndCounters) {
  auto m = Machine::boot("nr_cpus=2");
  kmm::MachineScope scope(*m);
  struct kmem_cache* s = kmem_cache_create("objs", 64, 0, SLAB_NO_MERGE, nullptr);
  long slab_before = proc_value(*m, "/proc/meminfo", "SUnreclaim");
  std::vector<void*> v;
  for (int i = 0; i < 200; i++) {
    v.push_back(kmem_cache_alloc(s, GFP_KERNEL));
    ASSERT_NE(v.back(), nullptr);
    std::memset(v.back(), i, 64);
  }
  std::vector<void*> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end());
  for (int i = 0; i < 200; i++) EXPECT_EQ(static_cast<uint8_t*>(v[i])[63], uint8_t(i));
  auto info = slabinfo(*m)["objs"];
  EXPECT_EQ(info.slabs, 4u); // 64 per order-0 slab
  EXPECT_EQ(info.num, 256u);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "SUnreclaim") - slab_before, 16); // 4 pages in kB
  EXPECT_TRUE(kmm::validate(*m).empty());
  void* last = v.back();
  kmem_cache_free(s, last);
  EXPECT_EQ(kmem_cache_alloc(s, GFP_KERNEL), last); // LIFO on the CPU freelist
  for (void* p : v) kmem_cache_free(s, p);
  kmem_cache_shrink(s);
  EXPECT_EQ(slabinfo(*m)["objs"].slabs, 0u);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "SUnreclaim"), slab_before);
  kmem_cache_destroy(s);
  EXPECT_TRUE(m->reports().empty());
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Slub, ZallocZeroesAndSizeIsObjectSize) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  struct kmem_cache* s = kmem_cache_create("z", 40, 0, SLAB_NO_MERGE, nullptr);
  EXPECT_EQ(kmem_cache_size(s), 40u);
  auto* p = static_cast<uint8_t*>(kmem_cache_alloc(s, GFP_KERNEL));
  std::memset(p, 0xee, 40);
  kmem_cache_free(s, p);
  auto* q = static_cast<uint8_t*>(kmem_cache_zalloc(s, GFP_KERNEL));
  ASSERT_EQ(q, p);
  for (int i = 0; i < 40; i++) ASSERT_EQ(q[i], 0) << i;
  kmem_cache_free(s, q);
  kmem_cache_destroy(s);
}

TEST(Slub, BulkAllocAndFree) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  struct kmem_cache* s = kmem_cache_create("bulk", 128, 0, SLAB_NO_MERGE, nullptr);
  void* objs[100];
  ASSERT_EQ(kmem_cache_alloc_bulk(s, GFP_KERNEL, 100, objs), 100);
  std::vector<void*> v(objs, objs + 100);
  std::sort(v.begin(), v.end());
  EXPECT_EQ(std::adjacent_find(v.begin(), v.end()), v.end());
  EXPECT_EQ(slabinfo(*m)["bulk"].num, 128u);
  kmem_cache_free_bulk(s, 100, objs);
  kmem_cache_shrink(s);
  EXPECT_EQ(slabinfo(*m)["bulk"].num, 0u);
  kmem_cache_destroy(s);
  EXPECT_TRUE(m->reports().empty());
}

TEST(Slub, MergingMakesAnAliasUnlessNomergeCtorOrDebug) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  struct kmem_cache* a = kmem_cache_create("merge_me", 60, 0, 0, nullptr);
  EXPECT_STREQ(kmem_cache_name(a), "kmalloc-64"); // 60 -> 64-byte slots: same geometry
  EXPECT_EQ(slabinfo(*m).count("merge_me"), 0u);  // aliases are not listed
  EXPECT_EQ(m->proc_read("/sys/kernel/slab/merge_me/slab_size"), "64\n");
  struct kmem_cache* c = kmem_cache_create("with_ctor", 60, 0, 0, counting_ctor);
  EXPECT_STREQ(kmem_cache_name(c), "with_ctor");
  struct kmem_cache* d = kmem_cache_create("debugged", 60, 0, SLAB_RED_ZONE, nullptr);
  EXPECT_STREQ(kmem_cache_name(d), "debugged");
  kmem_cache_destroy(a); // drops the alias reference only
  EXPECT_EQ(slabinfo(*m).count("kmalloc-64"), 1u);
  kmem_cache_destroy(c);
  kmem_cache_destroy(d);

  auto n = Machine::boot("slab_nomerge");
  kmm::MachineScope scope2(*n);
  struct kmem_cache* b = kmem_cache_create("merge_me", 60, 0, 0, nullptr);
  EXPECT_STREQ(kmem_cache_name(b), "merge_me");
  EXPECT_EQ(slabinfo(*n).count("merge_me"), 1u);
  kmem_cache_destroy(b);
}

TEST(Slub, DestroyWithLiveObjectsReportsAndLeaksTheCache) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  struct kmem_cache* s = kmem_cache_create("leaky", 64, 0, SLAB_NO_MERGE, nullptr);
  void* p = kmem_cache_alloc(s, GFP_KERNEL);
  ASSERT_NE(p, nullptr);
  kmem_cache_destroy(s);
  ASSERT_EQ(m->reports().size(), 2u);
  EXPECT_EQ(m->reports()[0].kind, kmm::ReportKind::SlubDebug);
  EXPECT_EQ(m->reports()[0].title,
            "BUG leaky (Not tainted): Objects remaining in leaky on __kmem_cache_shutdown()");
  EXPECT_NE(m->reports()[0].text.find(kmm::strprintf("Object 0x%llx @offset=",
                                                     (unsigned long long)m->kernel().mem.kva(p))),
            std::string::npos);
  EXPECT_EQ(m->reports()[1].kind, kmm::ReportKind::Warn);
  EXPECT_NE(m->reports()[1].text.find("kmem_cache_destroy leaky: Slab cache still has objects "
                                      "when called from "),
            std::string::npos);
  EXPECT_EQ(m->kernel().slab->slab_errors.load(), 2); // slub_kunit's count: header + 1 object
  EXPECT_EQ(slabinfo(*m).count("leaky"), 1u);         // still listed, as in the kernel
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Slub, SecondDestroyIsReportedNotACrash) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  struct kmem_cache* s = kmem_cache_create("twice", 64, 0, SLAB_NO_MERGE, nullptr);
  kmem_cache_destroy(s);
  EXPECT_TRUE(m->reports().empty());
  kmem_cache_destroy(s);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_NE(m->reports()[0].text.find("kmem_cache_destroy twice: cache already destroyed"),
            std::string::npos);
  kmem_cache_destroy(nullptr); // a no-op, as in the kernel
  EXPECT_EQ(m->reports().size(), 1u);
}

TEST(Slub, WrongCacheFreeNamesBothCachesAndLeaksTheObject) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  struct kmem_cache* a = kmem_cache_create("cache_a", 64, 0, SLAB_NO_MERGE, nullptr);
  struct kmem_cache* b = kmem_cache_create("cache_b", 64, 0, SLAB_NO_MERGE, nullptr);
  void* p = kmem_cache_alloc(a, GFP_KERNEL);
  kmem_cache_free(b, p);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].kind, kmm::ReportKind::Warn);
  EXPECT_NE(m->reports()[0].text.find(kmm::strprintf(
                "kmem_cache_free(cache_b, %llx): object belongs to different cache cache_a",
                (unsigned long long)m->kernel().mem.kva(p))),
            std::string::npos);
  // Leaked: the next allocation from a is another object.
  void* q = kmem_cache_alloc(a, GFP_KERNEL);
  EXPECT_NE(q, p);
  kmem_cache_free(a, q);
  kmem_cache_free(a, p);
  kmem_cache_destroy(a);
  kmem_cache_destroy(b);
  EXPECT_EQ(m->reports().size(), 1u);
}

TEST(Slub, InvalidPointerAndNaiveDoubleFreeAreReported) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  struct kmem_cache* s = kmem_cache_create("misuse", 64, 0, SLAB_NO_MERGE, nullptr);
  char* p = static_cast<char*>(kmem_cache_alloc(s, GFP_KERNEL));
  kmem_cache_free(s, p + 8);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title,
            kmm::strprintf("BUG misuse (Not tainted): Invalid object pointer 0x%llx",
                           (unsigned long long)m->kernel().mem.kva(p + 8)));
  EXPECT_NE(m->reports()[0].text.find("FIX misuse: Object at 0x"), std::string::npos);
  kmem_cache_free(s, p);
  kmem_cache_free(s, p);
  ASSERT_EQ(m->reports().size(), 2u);
  EXPECT_EQ(m->reports()[1].title, "BUG misuse (Not tainted): Object already free");
  int x;
  kmem_cache_free(s, &x); // not even the direct map
  ASSERT_EQ(m->reports().size(), 3u);
  EXPECT_NE(m->reports()[2].text.find("object is not in a slab page"), std::string::npos);
  EXPECT_TRUE(kmm::validate(*m).empty());
  kmem_cache_destroy(s);
}

TEST(Slub, FreelistPointersAreHardened) {
  auto m = Machine::boot("kmm.seed=7");
  kmm::MachineScope scope(*m);
  struct kmem_cache* s = kmem_cache_create("hard", 64, 0, SLAB_NO_MERGE, nullptr);
  ASSERT_EQ(s->offset, 32u); // in the middle of the object
  char* a = static_cast<char*>(kmem_cache_alloc(s, GFP_KERNEL));
  char* b = static_cast<char*>(kmem_cache_alloc(s, GFP_KERNEL));
  kmem_cache_free(s, a);
  kmem_cache_free(s, b); // b's free pointer now points at a
  uintptr_t stored;
  std::memcpy(&stored, b + 32, sizeof stored);
  EXPECT_NE(stored, reinterpret_cast<uintptr_t>(a));
  EXPECT_EQ(stored, reinterpret_cast<uintptr_t>(a) ^ s->random ^
                        __builtin_bswap64(reinterpret_cast<uintptr_t>(b + 32)));
  kmem_cache_destroy(s);
}

static std::vector<long> first_slab_order(const char* cmdline) {
  auto m = Machine::boot(cmdline);
  kmm::MachineScope scope(*m);
  struct kmem_cache* s = kmem_cache_create("shuffled", 256, 0, SLAB_NO_MERGE, nullptr);
  std::vector<void*> objs;
  std::vector<long> idx;
  for (int i = 0; i < 16; i++) objs.push_back(kmem_cache_alloc(s, GFP_KERNEL));
  uintptr_t base = reinterpret_cast<uintptr_t>(objs[0]) & ~uintptr_t(PAGE_SIZE - 1);
  for (void* p : objs) idx.push_back(long((reinterpret_cast<uintptr_t>(p) - base) / 256));
  for (void* p : objs) kmem_cache_free(s, p);
  kmem_cache_destroy(s);
  return idx;
}

TEST(Slub, FreelistRandomisationFollowsTheSeed) {
  auto a = first_slab_order("kmm.seed=1");
  auto b = first_slab_order("kmm.seed=1");
  auto c = first_slab_order("kmm.seed=2");
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::vector<long> linear(16);
  for (int i = 0; i < 16; i++) linear[i] = i;
  EXPECT_NE(a, linear);
  std::sort(a.begin(), a.end());
  EXPECT_EQ(a, linear); // a permutation of the slab's 16 slots
}

TEST(Slub, RemoteFreeFromAnotherCpu) {
  auto m = Machine::boot("nr_cpus=2");
  struct kmem_cache* s;
  std::vector<void*> objs;
  {
    kmm::CpuScope cpu0(*m, 0);
    s = kmem_cache_create("remote", 128, 0, SLAB_NO_MERGE, nullptr);
    for (int i = 0; i < 10; i++) objs.push_back(kmem_cache_alloc(s, GFP_KERNEL));
  }
  std::thread t([&] {
    kmm::CpuScope cpu1(*m, 1);
    for (void* p : objs) kmem_cache_free(s, p); // onto CPU 0's frozen slab, under list_lock
  });
  t.join();
  EXPECT_TRUE(kmm::validate(*m).empty());
  kmm::CpuScope cpu0(*m, 0);
  // CPU 0 takes the remote frees over when its own freelist runs dry.
  std::vector<void*> again;
  for (int i = 0; i < 32; i++) again.push_back(kmem_cache_alloc(s, GFP_KERNEL));
  for (void* p : objs) EXPECT_NE(std::find(again.begin(), again.end(), p), again.end());
  EXPECT_EQ(slabinfo(*m)["remote"].slabs, 1u);
  for (void* p : again) kmem_cache_free(s, p);
  kmem_cache_destroy(s);
  EXPECT_TRUE(m->reports().empty());
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Slub, PanicFlagPanicsOnCreationFailure) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  EXPECT_EQ(kmem_cache_create(nullptr, 64, 0, 0, nullptr), nullptr);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_NE(m->reports()[0].text.find("kmem_cache_create((null)) failed with error -22"),
            std::string::npos);
  EXPECT_EQ(kmem_cache_create("toobig", 8u << 20, 0, SLAB_PANIC, nullptr), nullptr);
  ASSERT_EQ(m->reports().size(), 2u);
  EXPECT_EQ(
      m->reports()[1].title,
      "Kernel panic - not syncing: kmem_cache_create: Failed to create slab 'toobig'. Error -22");
}

// A cache whose objects cannot fit a slab (a 2 GiB alignment, or 4 MiB objects with red zones
// and tracks) fails in calculate_sizes(), and do_kmem_cache_create() reports -EINVAL; kmm said
// -E2BIG (-7).
TEST(Slub, ObjectsThatFitNoSlabFailWithEinval) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  EXPECT_EQ(kmem_cache_create("aligned", 64, 1u << 31, 0, nullptr), nullptr);
  EXPECT_EQ(kmem_cache_create("debug4m", 4u << 20, 0, SLAB_RED_ZONE | SLAB_STORE_USER, nullptr),
            nullptr);
  ASSERT_EQ(m->reports().size(), 2u);
  EXPECT_NE(m->reports()[0].text.find("kmem_cache_create(aligned) failed with error -22\n"),
            std::string::npos)
      << m->reports()[0].text;
  EXPECT_NE(m->reports()[1].text.find("kmem_cache_create(debug4m) failed with error -22\n"),
            std::string::npos)
      << m->reports()[1].text;
  EXPECT_TRUE(kmm::validate(*m).empty());
}

// kmem_cache_create() takes an align that is no power of two: calculate_alignment() rounds it up
// to a multiple of sizeof(void *). kmm refused it with -EINVAL.
TEST(Slub, AnOddAlignIsRoundedUpToAMultipleOfEight) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  struct kmem_cache* three = kmem_cache_create("align3", 40, 3, SLAB_NO_MERGE, nullptr);
  struct kmem_cache* twelve = kmem_cache_create("align12", 40, 12, SLAB_NO_MERGE, nullptr);
  ASSERT_NE(three, nullptr);
  ASSERT_NE(twelve, nullptr);
  std::vector<void*> objs;
  for (int i = 0; i < 20; i++) {
    void* a = kmem_cache_alloc(three, GFP_KERNEL);
    void* b = kmem_cache_alloc(twelve, GFP_KERNEL);
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 8, 0u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b) % 16, 0u);
    kmem_cache_free(three, a);
    objs.push_back(b);
  }
  for (void* b : objs) kmem_cache_free(twelve, b);
  kmem_cache_destroy(three);
  kmem_cache_destroy(twelve);
  EXPECT_TRUE(m->reports().empty());
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Slub, SleepingAllocationInAtomicContextIsReported) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  struct kmem_cache* s = kmem_cache_create("atomic", 64, 0, SLAB_NO_MERGE, nullptr);
  kmem_cache_free(s,
                  kmem_cache_alloc(s, GFP_KERNEL)); // a cpu slab exists: no page allocation below
  spinlock_t lock;
  spin_lock_init(&lock);
  spin_lock(&lock);
  void* p = kmem_cache_alloc(s, GFP_KERNEL);
  void* q = kmem_cache_alloc(s, GFP_ATOMIC);
  spin_unlock(&lock);
  EXPECT_EQ(count_reports(*m, "BUG: sleeping function called from invalid context"), 1u);
  kmem_cache_free(s, p);
  kmem_cache_free(s, q);
  kmem_cache_destroy(s);
}

TEST(Slub, SysfsAttributes) {
  auto m = Machine::boot("nr_cpus=4");
  EXPECT_EQ(m->proc_read("/sys/kernel/slab/kmalloc-192/objs_per_slab"), "21\n");
  EXPECT_EQ(m->proc_read("/sys/kernel/slab/kmalloc-192/order"), "0\n");
  EXPECT_EQ(m->proc_read("/sys/kernel/slab/kmalloc-192/object_size"), "192\n");
  EXPECT_EQ(m->proc_read("/sys/kernel/slab/kmalloc-rcl-64/reclaim_account"), "1\n");
  EXPECT_EQ(m->proc_write("/sys/kernel/slab/kmalloc-64/shrink", "1"), 0);
  EXPECT_EQ(m->proc_write("/sys/kernel/slab/kmalloc-64/validate", "1"), -EINVAL); // not debug
  EXPECT_EQ(m->proc_write("/sys/kernel/slab/nosuch/validate", "1"), -ENOENT);
}

// 4 host threads, each one CPU, allocating and freeing, and freeing objects that other CPUs
// allocated (the tsan preset runs this).
TEST(SlubStress, ThreadsWithRemoteFrees) {
  auto m = Machine::boot("mem=64M nr_cpus=4");
  struct kmem_cache* s;
  {
    kmm::MachineScope scope(*m);
    s = kmem_cache_create("stress", 96, 0, SLAB_NO_MERGE, nullptr);
  }
  std::mutex handoff_lock;
  std::vector<void*> handoff[4];
  constexpr int kRounds = 300;
  auto worker = [&](unsigned cpu) {
    kmm::CpuScope scope(*m, cpu);
    std::vector<void*> mine;
    for (int r = 0; r < kRounds; r++) {
      for (int i = 0; i < 8; i++) {
        void* p = (r % 2) ? kmalloc(100 + i, GFP_KERNEL) : kmem_cache_alloc(s, GFP_KERNEL);
        ASSERT_NE(p, nullptr);
        std::memset(p, int(cpu), 64);
        mine.push_back(p);
      }
      {
        std::lock_guard<std::mutex> g(handoff_lock);
        handoff[(cpu + 1) % 4].push_back(mine.back()); // another CPU frees this one
        mine.pop_back();
      }
      while (mine.size() > 20) {
        void* p = mine.front();
        mine.erase(mine.begin());
        if (ksize(p) == 96) kmem_cache_free(s, p);
        else kfree(p);
      }
      std::vector<void*> theirs;
      {
        std::lock_guard<std::mutex> g(handoff_lock);
        theirs.swap(handoff[cpu]);
      }
      for (void* p : theirs) {
        if (ksize(p) == 96) kmem_cache_free(s, p);
        else kfree(p);
      }
    }
    for (void* p : mine) {
      if (ksize(p) == 96) kmem_cache_free(s, p);
      else kfree(p);
    }
  };
  std::vector<std::thread> threads;
  for (unsigned c = 0; c < 4; c++) threads.emplace_back(worker, c);
  for (auto& t : threads) t.join();
  kmm::MachineScope scope(*m);
  for (auto& h : handoff)
    for (void* p : h) {
      if (ksize(p) == 96) kmem_cache_free(s, p);
      else kfree(p);
    }
  EXPECT_TRUE(m->reports().empty());
  EXPECT_EQ(kmm::validate(*m), std::vector<std::string>{});
  kmem_cache_shrink(s);
  EXPECT_EQ(slabinfo(*m)["stress"].active, 0u);
  kmem_cache_destroy(s);
  EXPECT_TRUE(m->reports().empty());
}
