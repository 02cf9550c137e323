// Tests for allocator/src/kasan_asan.cpp: in an ASan build, KASAN's poison is mirrored into ASan,
// so raw C++ accesses (no kasan_check call) to simulated memory are caught, and ASan's report
// becomes kmm's KASAN report. Skipped in builds without ASan.
#include <gtest/gtest.h>

#include <cstring>

#include "bug.h"
#include "kasan.h"
#include "kasan_asan.h"
#include "kernel.h"
#include "kmm/linux.h"
#include "kmm/validate.h"
#include "recycle.h"
#include "test_util.h"

#if KMM_ASAN
#include <sanitizer/asan_interface.h>
#endif

using kmm::Machine;

namespace {

// Keeps the compiler from dropping or merging the raw accesses.
template <typename T>
T* raw(void* p) {
  return static_cast<T*>(p);
}
volatile char sink;

// A raw memset the compiler cannot turn into plain stores: it goes through ASan's interceptor.
__attribute__((noinline)) void raw_memset(void* p, int c, size_t n) {
  asm volatile("" : : "r"(p) : "memory");
  std::memset(p, c, n);
}

struct KasanAsanTest : ::testing::Test {
  void SetUp() override {
    if (!KMM_ASAN_RECOVERS)
      GTEST_SKIP() << "needs ASan that survives a reported access (the asan preset's "
                      "-fsanitize-recover=address)";
  }
  std::unique_ptr<Machine> m = Machine::boot("mem=32M kasan=on");
  kmm::MachineScope scope{*m};
  const kmm::Report& last() { return m->reports().back(); }
  uint64_t kva(const void* p) { return 0xffff888000000000ull + virt_to_phys(p); }
  std::string here() {
    const ::testing::TestInfo* t = ::testing::UnitTest::GetInstance()->current_test_info();
    return std::string("(anonymous namespace)::") + t->test_suite_name() + "_" + t->name() +
           "_Test::TestBody";
  }
};

TEST_F(KasanAsanTest, RawWritePastKmallocObjectIsSlabOutOfBounds) {
  char* p = static_cast<char*>(kmalloc(115, GFP_KERNEL));
  raw<volatile char>(p)[115] = 1; // the first byte after the 115 requested: kmalloc-128's slack
  ASSERT_EQ(m->reports().size(), 1u);
  const kmm::Report& r = last();
  EXPECT_EQ(r.kind, kmm::ReportKind::Kasan);
  EXPECT_EQ(r.title, "BUG: KASAN: slab-out-of-bounds in " + here());
  EXPECT_EQ(r.cache, "kmalloc-128");
  EXPECT_EQ(r.offset, 115);
  EXPECT_EQ(r.addr, kva(p + 115));
  EXPECT_NE(r.text.find(kmm::strprintf("Write of size 1 at addr %016llx by task kmm/1",
                                       (unsigned long long)kva(p + 115))),
            std::string::npos)
      << r.text;
  EXPECT_NE(r.text.find(kmm::strprintf("The buggy address belongs to the object at %016llx\n which "
                                       "belongs to the cache kmalloc-128 of size 128\n",
                                       (unsigned long long)kva(p))),
            std::string::npos)
      << r.text;
  EXPECT_NE(r.text.find("The buggy address is located 0 bytes to the right of\n allocated 115-byte "
                        "region"),
            std::string::npos)
      << r.text;
  EXPECT_NE(r.text.find("Call Trace:\n <TASK>\n " + here()), std::string::npos) << r.text;
  EXPECT_NE(m->dmesg().find(r.title), std::string::npos);
  kfree(p);
  EXPECT_EQ(m->reports().size(), 1u) << "kfree after the report must stay silent";
}

TEST_F(KasanAsanTest, RawReadAfterKfreeIsSlabUseAfterFree) {
  char* p = static_cast<char*>(kmalloc(64, GFP_KERNEL));
  kfree(p);
  sink = raw<volatile char>(p)[8];
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(last().title, "BUG: KASAN: slab-use-after-free in " + here());
  EXPECT_EQ(last().cache, "kmalloc-64");
  EXPECT_EQ(last().offset, 8);
  EXPECT_NE(last().text.find("Read of size 1 at addr"), std::string::npos);
  EXPECT_NE(last().text.find("located 8 bytes inside of\n freed 64-byte region"), std::string::npos)
      << last().text;
}

TEST_F(KasanAsanTest, RawAccessesInBoundsStaySilent) {
  char* p = static_cast<char*>(kmalloc(115, GFP_KERNEL));
  for (int i = 0; i < 115; i++) raw<volatile char>(p)[i] = char(i);
  for (int i = 0; i < 115; i++) sink = raw<volatile char>(p)[i];
  raw_memset(p, 0, 115);
  char* q = static_cast<char*>(krealloc(p, 300, GFP_KERNEL));
  raw_memset(q, 1, 300);
  kfree(q);
  struct page* pg = alloc_pages(GFP_KERNEL, 2);
  raw_memset(page_address(pg), 2, 4 * PAGE_SIZE);
  __free_pages(pg, 2);
  char* v = static_cast<char*>(vmalloc(3000));
  raw_memset(v, 3, 3000);
  vfree(v);
  EXPECT_TRUE(m->reports().empty()) << m->reports()[0].text;
}

TEST_F(KasanAsanTest, RawMemsetOverflowNamesTheCaller) { // kmalloc_oob_in_memset
  char* p = static_cast<char*>(kmalloc(120, GFP_KERNEL));
  raw_memset(p, 0, 120 + 8);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(last().title, "BUG: KASAN: slab-out-of-bounds in (anonymous namespace)::raw_memset");
  EXPECT_NE(last().text.find("Call Trace:\n <TASK>\n (anonymous namespace)::raw_memset "),
            std::string::npos)
      << last().text;
  EXPECT_NE(last().text.find("Write of size 128 at addr"), std::string::npos) << last().text;
  kfree(p);
}

TEST_F(KasanAsanTest, EveryBadAccessIsReported) { // multi-shot: the same instruction twice
  char* p = static_cast<char*>(kmalloc(201, GFP_KERNEL));
  for (int i : {201, 218, 234}) raw<volatile char>(p)[i] = 0;
  EXPECT_EQ(kmm::test::count_reports(*m, "slab-out-of-bounds"), 3u);
  kfree(p);
}

TEST_F(KasanAsanTest, LargeKmallocAndPages) {
  char* p = static_cast<char*>(kmalloc(8192 + 10, GFP_KERNEL));
  raw<volatile char>(p)[8192 + 10] = 0;            // kmalloc_large_oob_right
  sink = raw<volatile char>(p)[4 * PAGE_SIZE - 1]; // the page red zone reaches the end
  kfree(p);
  sink = raw<volatile char>(p)[0]; // kmalloc_large_uaf
  struct page* pg = alloc_pages(GFP_KERNEL, 4);
  char* a = static_cast<char*>(page_address(pg));
  __free_pages(pg, 4);
  sink = raw<volatile char>(a)[100]; // page_alloc_uaf
  std::string types;
  for (auto& r : m->reports()) types += r.title.substr(12, r.title.find(" in ") - 12) + ",";
  EXPECT_EQ(types, "slab-out-of-bounds,slab-out-of-bounds,use-after-free,use-after-free,");
}

TEST_F(KasanAsanTest, VmallocSlackGuardAndFreedArea) {
  char* v = static_cast<char*>(vmalloc(2035)); // vmalloc_oob: PAGE_SIZE/2 - G - 5
  sink = raw<volatile char>(v)[0];
  sink = raw<volatile char>(v)[2034];
  EXPECT_TRUE(m->reports().empty());
  sink = raw<volatile char>(v)[2035];
  sink = raw<volatile char>(v)[2040];
  ASSERT_EQ(m->reports().size(), 2u);
  EXPECT_EQ(last().title, "BUG: KASAN: vmalloc-out-of-bounds in " + here());
  // The same page through the direct map is fine: the slack is only poisoned in the mapping.
  char* alias = static_cast<char*>(page_address(vmalloc_to_page(v)));
  sink = raw<volatile char>(alias)[2040];
  EXPECT_EQ(m->reports().size(), 2u);
  raw<volatile char>(v)[PAGE_SIZE] = 1; // the guard page: one report, from the fault path
  ASSERT_EQ(m->reports().size(), 3u);
  EXPECT_EQ(last().title, "BUG: KASAN: vmalloc-out-of-bounds in vmalloc_fault");
  vfree(v);
  sink = raw<volatile char>(v)[0];
  ASSERT_EQ(m->reports().size(), 4u);
  EXPECT_EQ(last().title, "BUG: KASAN: vmalloc-out-of-bounds in vmalloc_fault");
}

// kmm's own accesses to poisoned memory (free pointers, slub_debug patterns and checks, the
// quarantine, init_on_free, page poisoning, krealloc, kfree_sensitive, validation) never trip ASan.
TEST_F(KasanAsanTest, InternalAccessesAreNotReported) {
  for (const char* cmdline : {"mem=32M kasan=on slub_debug=FZPU", "mem=32M kasan=on page_poison=1",
                              "mem=32M kasan=on init_on_free=1 init_on_alloc=1"}) {
    auto mm = Machine::boot(cmdline);
    kmm::MachineScope s(*mm);
    std::vector<void*> live;
    for (int i = 0; i < 3000; i++) {
      size_t size = 1 + (i * 37) % 3000;
      void* p = kmalloc(size, GFP_KERNEL);
      ASSERT_NE(p, nullptr);
      live.push_back(p);
      if (i % 3 == 0) {
        kfree(live.front());
        live.erase(live.begin());
      }
      if (live.empty()) continue;
      if (i % 7 == 0) live.back() = krealloc(live.back(), size / 2 + 1, GFP_KERNEL);
      if (i % 11 == 0) live.back() = krealloc(live.back(), size + 100, GFP_KERNEL);
      if (i % 13 == 0) {
        kfree_sensitive(live.back());
        live.pop_back();
      }
      if (i % 17 == 0) (void)ksize(live.back());
    }
    struct kmem_cache* c =
        kmem_cache_create("asan_test", 200, 0, SLAB_POISON | SLAB_RED_ZONE, nullptr);
    void* objs[16];
    ASSERT_TRUE(kmem_cache_alloc_bulk(c, GFP_KERNEL, 16, objs));
    kmem_cache_free_bulk(c, 16, objs);
    EXPECT_TRUE(kmm::validate(*mm).empty());
    mm->proc_write("/sys/kernel/slab/kmalloc-64/validate", "1"); // -EINVAL without slub_debug
    for (void* p : live) kfree(p);
    kmem_cache_destroy(c);
    struct page* pg = alloc_pages(GFP_KERNEL, 3);
    __free_pages(pg, 3);
    EXPECT_TRUE(mm->reports().empty()) << cmdline << ": " << mm->reports()[0].text;
  }
}

TEST_F(KasanAsanTest, SlubDebugStillSeesRawRedzoneWrites) {
  // With both KASAN and slub_debug, the raw write is reported by KASAN at once and, as the
  // kernel's SLUB would, by slub_debug when the object is checked.
  auto mm = Machine::boot("mem=32M kasan=on slub_debug=FZPU");
  kmm::MachineScope s(*mm);
  char* p = static_cast<char*>(kmalloc(64, GFP_KERNEL));
  raw<volatile char>(p)[64] = 0x12;
  ASSERT_EQ(mm->reports().size(), 1u);
  EXPECT_EQ(mm->reports()[0].title, "BUG: KASAN: slab-out-of-bounds in " + here());
  mm->proc_write("/sys/kernel/slab/kmalloc-64/validate", "1");
  EXPECT_EQ(kmm::test::count_reports(*mm, "Redzone overwritten"), 1u);
  kfree(p);
}

TEST_F(KasanAsanTest, KfenceObjectsAreLeftToKfence) {
  auto mm = Machine::boot("mem=32M kasan=on kfence.sample_interval=1 kfence.num_objects=31");
  kmm::MachineScope s(*mm);
  char* p = nullptr;
  for (int i = 0; i < 64 && !p; i++) {
    char* q = static_cast<char*>(kmalloc(32, GFP_KERNEL));
    if ((reinterpret_cast<uintptr_t>(q) + 32) % PAGE_SIZE == 0) p = q; // ends at its guard page
  }
  ASSERT_NE(p, nullptr);
  raw<volatile char>(p)[32] = 1;
  ASSERT_EQ(mm->reports().size(), 1u);
  EXPECT_EQ(mm->reports()[0].title, "BUG: KFENCE: out-of-bounds write in kfence_fault");
  kfree(p);
  EXPECT_EQ(kmm::test::count_reports(*mm, "KASAN"), 0u);
}

TEST_F(KasanAsanTest, PanicModeAbortsOnARawAccess) {
  EXPECT_DEATH(
      {
        auto pm = Machine::boot("mem=16M kasan=on kasan.fault=panic");
        kmm::MachineScope s(*pm);
        char* p = static_cast<char*>(kmalloc(16, GFP_KERNEL));
        raw<volatile char>(p)[16] = 0;
      },
      "BUG: KASAN: slab-out-of-bounds in .*Kernel panic - not syncing");
}

TEST_F(KasanAsanTest, ShadowIsClearedWhenTheMachineGoes) {
#if KMM_ASAN
  uintptr_t base = 0, bytes = 0;
  {
    auto mm = Machine::boot("mem=16M kasan=on");
    kmm::MachineScope s(*mm);
    char* p = static_cast<char*>(kmalloc(100, GFP_KERNEL));
    kfree(p);
    base = reinterpret_cast<uintptr_t>(p) & ~uintptr_t(PAGE_SIZE - 1);
    bytes = mm->mem_bytes();
    EXPECT_TRUE(__asan_address_is_poisoned(p));
  }
  EXPECT_EQ(__asan_region_is_poisoned(reinterpret_cast<void*>(base), PAGE_SIZE), nullptr);
  (void)bytes;
#endif
}

// A raw access (a scenario's `corrupt`) into a page free since boot: when its scope ends, ASan's
// mirror gets the page's boot poison although KASAN's shadow there was never written. A restore
// to the boot image and the machine's end still clear it (kasan.h: KasanState::asan_synced_*).
TEST_F(KasanAsanTest, BootPoisonMirroredByARawAccessIsCleared) {
#if KMM_ASAN
  for (bool restore : {true, false}) {
    uintptr_t p = 0;
    {
      auto mm = Machine::boot("mem=16M kasan=on");
      kmm::Kernel& k = mm->kernel();
      kmm::BootImagePtr img = kmm::take_boot_image(k);
      ASSERT_TRUE(img); // so no shadow was written yet
      char* q = reinterpret_cast<char*>(k.mem.direct_map) + k.mem.bytes / 2;
      p = reinterpret_cast<uintptr_t>(q);
      {
        kmm::KasanMetadataAccess scope(q, 8);
        raw_memset(q, 0x5a, 8);
      }
      EXPECT_TRUE(__asan_address_is_poisoned(q)); // KASAN_PAGE_FREE, mirrored
      EXPECT_TRUE(kmm::kasan_at_boot(k));         // KASAN's own shadow is as boot left it
      if (restore) {
        ASSERT_TRUE(kmm::restore_boot_image(k, *img));
        EXPECT_EQ(__asan_region_is_poisoned(k.mem.direct_map, k.mem.bytes), nullptr);
      }
    }
    EXPECT_FALSE(__asan_address_is_poisoned(reinterpret_cast<void*>(p))) << restore;
  }
#endif
}

} // namespace
