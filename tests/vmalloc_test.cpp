// Tests for allocator/src/vmalloc.cpp: real mappings, guard pages, the vmap-area allocator,
// /proc/vmallocinfo and the misuse reports.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "bug.h"
#include "kernel.h"
#include "kmm/linux.h"
#include "kmm/validate.h"
#include "test_util.h"
#include "vmalloc.h"

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
  EXPECT_NE(info.find("   16384 vmalloc+0x0/0x0 pages=3 vmalloc N0=3\n"), std::string::npos)
      << info;
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

// __might_resched's ratelimit: sixteen page allocations that may sleep, one report; the next
// atomic section reports again.
TEST_F(VmallocTest, SleepingInAtomicIsReportedOncePerAtomicSection) {
  spinlock_t lock;
  spin_lock_init(&lock);
  void* p[2];
  for (int i = 0; i < 2; i++) {
    spin_lock(&lock);
    p[i] = vmalloc(16 * PAGE_SIZE);
    spin_unlock(&lock);
    EXPECT_EQ(kmm::test::count_reports(*m, "BUG: sleeping function called from invalid context"),
              size_t(i + 1));
  }
  vfree(p[0]);
  vfree(p[1]);
  EXPECT_EQ(kmm::test::count_reports(*m, "BUG: sleeping function called from invalid context"), 2u);
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

TEST_F(VmallocTest, GfpVmallocAndVmallocToPfn) {
  // __vmalloc() with the caller's flags: __GFP_ZERO zeroes, GFP_DMA32 keeps every page below
  // 4 GiB (here: inside ZONE_DMA32), and vmalloc_to_pfn() names each page's frame.
  auto* p =
      static_cast<unsigned char*>(__vmalloc(4 * PAGE_SIZE, GFP_KERNEL | __GFP_ZERO | GFP_DMA32));
  ASSERT_NE(p, nullptr);
  for (unsigned long i = 0; i < 4 * PAGE_SIZE; i++) ASSERT_EQ(p[i], 0) << i;
  for (unsigned i = 0; i < 4; i++) {
    unsigned long pfn = vmalloc_to_pfn(p + i * PAGE_SIZE + 17);
    EXPECT_EQ(pfn, page_to_pfn(vmalloc_to_page(p + i * PAGE_SIZE)));
    EXPECT_GE(pfn, 512u); // mem=32M: DMA32 is [2M, 16M) (pfns 512..4095)
    EXPECT_LT(pfn, 4096u);
  }
  EXPECT_EQ(vmalloc_to_pfn(p + 4 * PAGE_SIZE), 0u); // the guard page
  EXPECT_NE(m->proc_read("/proc/vmallocinfo").find(" __vmalloc+0x0/0x0 pages=4 vmalloc N0=4\n"),
            std::string::npos);
  vfree(p);
}

TEST_F(VmallocTest, ZeroAndHugeSizesFail) {
  EXPECT_EQ(vmalloc(0), nullptr);
  EXPECT_EQ(vmalloc(1ul << 40), nullptr);
  EXPECT_EQ(kmm::test::count_reports(*m, "vmalloc error: size"), 1u);
}

// __vmalloc_node_range: WARN_ON_ONCE(!size); a size whose pages exceed totalram_pages() fails
// with the size as asked. The check shifts before it rounds up: rounding SIZE_MAX up to pages
// wrapped to 0, and the warning said "size 0".
TEST_F(VmallocTest, ZeroSizeWarnsOnceAndHugeSizesAreReportedAsAsked) {
  EXPECT_EQ(vmalloc(0), nullptr);
  EXPECT_EQ(vzalloc(0), nullptr);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title, "WARNING: CPU: 0 PID: 1 at mm/vmalloc.c __vmalloc_node_range");
  EXPECT_EQ(vmalloc(SIZE_MAX), nullptr);
  EXPECT_EQ(vzalloc(size_t(1) << 63), nullptr);
  EXPECT_EQ(__vmalloc(SIZE_MAX - PAGE_SIZE + 2, GFP_KERNEL | __GFP_NOWARN), nullptr);
  EXPECT_EQ(__vmalloc(SIZE_MAX - PAGE_SIZE + 2, GFP_KERNEL), nullptr);
  EXPECT_EQ(kmm::test::count_reports(*m, "vmalloc error: size 18446744073709551615, exceeds total "
                                         "pages"),
            1u);
  EXPECT_EQ(kmm::test::count_reports(*m, "vmalloc error: size 9223372036854775808, exceeds total "
                                         "pages"),
            1u);
  EXPECT_EQ(kmm::test::count_reports(*m, "vmalloc error: size 18446744073709547521, exceeds total "
                                         "pages"),
            1u);
  EXPECT_EQ(m->reports().size(), 4u);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

} // namespace

// --- the vmap-area allocator at its limits: vmalloc= sizes the range ---------------------------

TEST(Vmalloc, FullRangeFailsThenLazyAreasArePurgedAndReused) {
  // 64 KiB of vmalloc space: eight one-page areas, each with its guard page.
  auto m = Machine::boot("mem=32M vmalloc=64K");
  kmm::MachineScope scope(*m);
  std::vector<void*> areas;
  for (int i = 0; i < 8; i++) {
    areas.push_back(vmalloc(PAGE_SIZE));
    ASSERT_NE(areas.back(), nullptr) << i;
  }
  EXPECT_EQ(vmalloc(PAGE_SIZE), nullptr);
  EXPECT_NE(m->dmesg().find("vmap allocation for size 8192 failed: use vmalloc=<size> to increase "
                            "size"),
            std::string::npos);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title.rfind("kmm: vmalloc error: size 4096, vm_struct allocation "
                                        "failed, mode:0xcc0(GFP_KERNEL)",
                                        0),
            0u)
      << m->reports()[0].title;
  // __GFP_NOWARN: the same failure is silent.
  EXPECT_EQ(__vmalloc(PAGE_SIZE, GFP_KERNEL | __GFP_NOWARN), nullptr);
  EXPECT_EQ(m->reports().size(), 1u);
  // The kernel prints the size as asked (real_size), not rounded up to pages.
  EXPECT_EQ(vmalloc(100), nullptr);
  ASSERT_EQ(m->reports().size(), 2u);
  EXPECT_EQ(
      m->reports()[1].title.rfind("kmm: vmalloc error: size 100, vm_struct allocation failed", 0),
      0u)
      << m->reports()[1].title;

  // Freed areas wait on the purge list (far below lazy_max_pages()), so the range stays full...
  for (void* p : areas) vfree(p);
  std::string info = m->proc_read("/proc/vmallocinfo");
  EXPECT_EQ(std::count(info.begin(), info.end(), '\n'), 8) << info;
  EXPECT_NE(info.find("0xffffc90000000000-0xffffc90000002000    8192 unpurged vm_area\n"),
            std::string::npos)
      << info;
  EXPECT_TRUE(kmm::validate(*m).empty());
  // ...until an allocation finds no room: the lazy areas are purged, merged back into one free
  // range, and the lowest address is handed out again.
  void* big = vmalloc(7 * PAGE_SIZE);
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(big, areas[0]);
  EXPECT_EQ(m->proc_read("/proc/vmallocinfo"),
            "0xffffc90000000000-0xffffc90000008000   32768 vmalloc+0x0/0x0 pages=7 vmalloc N0=7\n");
  EXPECT_TRUE(kmm::validate(*m).empty());
  vfree(big);
  EXPECT_EQ(m->reports().size(), 2u);
}

TEST(Vmalloc, VfreeBeyondLazyMaxPagesPurgesAtOnce) {
  // nr_cpus=1: lazy_max_pages() is fls(1) * 32 MiB = 8192 pages; one 40 MiB area exceeds it.
  auto m = Machine::boot("mem=64M nr_cpus=1");
  kmm::MachineScope scope(*m);
  void* small = vmalloc(PAGE_SIZE);
  vfree(small);
  EXPECT_NE(m->proc_read("/proc/vmallocinfo").find("unpurged vm_area"), std::string::npos);
  void* p = vmalloc(40ul << 20);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(static_cast<char*>(p) - static_cast<char*>(small), 2 * static_cast<long>(PAGE_SIZE));
  vfree(p);
  EXPECT_EQ(m->proc_read("/proc/vmallocinfo"), "");
  // Everything was purged: the next area starts at VMALLOC_START again.
  void* again = vmalloc(PAGE_SIZE);
  EXPECT_EQ(again, small);
  vfree(again);
  EXPECT_TRUE(kmm::validate(*m).empty());
  EXPECT_TRUE(m->reports().empty());
}

TEST(Vmalloc, PageAllocationFailureGivesEverythingBack) {
  // Without pcp lists every freed page is back in MemFree at once.
  auto m = Machine::boot("mem=32M kmm.pcp=0");
  kmm::MachineScope scope(*m);
  long free_before = kmm::test::proc_value(*m, "/proc/meminfo", "MemFree");
  // Take all but ~1 MiB, then ask vmalloc for 4 MiB: the area is found, its pages are not.
  std::vector<std::pair<struct page*, unsigned>> held;
  for (unsigned order : {9u, 0u})
    while (kmm::test::proc_value(*m, "/proc/meminfo", "MemFree") > (order ? 1024 + 2048 : 1024)) {
      struct page* p = alloc_pages(GFP_KERNEL | __GFP_NOWARN, order);
      if (!p) break;
      held.emplace_back(p, order);
    }
  long free_mid = kmm::test::proc_value(*m, "/proc/meminfo", "MemFree");
  EXPECT_EQ(__vmalloc(4ul << 20, GFP_KERNEL | __GFP_NORETRY), nullptr);
  ASSERT_EQ(m->reports().size(), 1u);
  // The kernel prints area->nr_pages * PAGE_SIZE: the 30 pages it got, not the 4 MiB asked.
  EXPECT_EQ(m->reports()[0].title.rfind("kmm: vmalloc error: size 122880, failed to "
                                        "allocate pages, mode:",
                                        0),
            0u)
      << m->reports()[0].title;
  EXPECT_EQ(kmm::test::proc_value(*m, "/proc/meminfo", "MemFree"), free_mid);
  EXPECT_EQ(kmm::test::proc_value(*m, "/proc/meminfo", "VmallocUsed"), 0);
  // The range went straight back to the free list (no lazy area): the next area is at the start.
  EXPECT_EQ(m->proc_read("/proc/vmallocinfo"), "");
  EXPECT_TRUE(kmm::validate(*m).empty());
  for (auto [p, order] : held) __free_pages(p, order);
  EXPECT_EQ(kmm::test::proc_value(*m, "/proc/meminfo", "MemFree"), free_before);
}

TEST_F(VmallocTest, VmallocAndVunmapInInterruptAreBugs) {
  static void* from_irq;
  from_irq = reinterpret_cast<void*>(1);
  kmm_run_in_irq([](void*) { from_irq = vmalloc(PAGE_SIZE); }, nullptr);
  EXPECT_EQ(from_irq, nullptr);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title, "WARNING: CPU: 0 PID: 1 at mm/vmalloc.c __get_vm_area_node");
  EXPECT_NE(m->reports()[0].text.find("kernel BUG: BUG_ON(in_interrupt())\n"), std::string::npos);

  struct page* pg = alloc_page(GFP_KERNEL);
  static void* mapped;
  mapped = vmap(&pg, 1, VM_MAP, PAGE_KERNEL);
  ASSERT_NE(mapped, nullptr);
  kmm_run_in_irq([](void*) { vunmap(mapped); }, nullptr);
  ASSERT_EQ(m->reports().size(), 2u);
  EXPECT_EQ(m->reports()[1].title, "WARNING: CPU: 0 PID: 1 at mm/vmalloc.c vunmap");
  EXPECT_NE(m->reports()[1].text.find("BUG_ON(in_interrupt())\n"), std::string::npos);
  EXPECT_EQ(vmalloc_to_page(mapped), pg); // still mapped
  vunmap(mapped);
  __free_page(pg);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST_F(VmallocTest, VmapMisuse) {
  struct page* pages[2] = {alloc_page(GFP_KERNEL), alloc_page(GFP_KERNEL)};
  // vmap() may sleep.
  preempt_disable();
  void* v = vmap(pages, 2, VM_MAP, PAGE_KERNEL);
  preempt_enable();
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title,
            "BUG: sleeping function called from invalid context at mm/vmalloc.c");
  ASSERT_NE(v, nullptr);
  vunmap(v);
  // Zero pages, more pages than RAM: NULL, quietly, as the kernel's vmap() does.
  EXPECT_EQ(vmap(pages, 0, VM_MAP, PAGE_KERNEL), nullptr);
  EXPECT_EQ(vmap(pages, 1u << 20, VM_MAP, PAGE_KERNEL), nullptr);
  EXPECT_EQ(m->reports().size(), 1u);
  // A page that is not allocated.
  __free_page(pages[1]);
  EXPECT_EQ(vmap(pages, 2, VM_MAP, PAGE_KERNEL), nullptr);
  ASSERT_EQ(m->reports().size(), 2u);
  EXPECT_EQ(m->reports()[1].title, "WARNING: CPU: 0 PID: 1 at mm/vmalloc.c vmap");
  EXPECT_NE(m->reports()[1].text.find("page 1 is not an allocated page\n"), std::string::npos);
  // vunmap() of a vmalloc() area is not a vmap area.
  void* p = vmalloc(PAGE_SIZE);
  vunmap(p);
  ASSERT_EQ(m->reports().size(), 3u);
  EXPECT_EQ(m->reports()[2].title, "WARNING: CPU: 0 PID: 1 at mm/vmalloc.c vunmap");
  EXPECT_NE(
      m->reports()[2].text.find("Trying to vunmap() nonexistent vm area (ffffc90000003000)\n"),
      std::string::npos)
      << m->reports()[2].text;
  vunmap(nullptr); // a no-op
  EXPECT_EQ(m->reports().size(), 3u);
  vfree(p);
  __free_page(pages[0]);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST_F(VmallocTest, VmapNoGuardAreasAbut) {
  struct page* pg = alloc_page(GFP_KERNEL);
  char* a = static_cast<char*>(vmap(&pg, 1, VM_MAP | VM_NO_GUARD, PAGE_KERNEL));
  char* b = static_cast<char*>(vmap(&pg, 1, VM_MAP, PAGE_KERNEL));
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(b - a, static_cast<long>(PAGE_SIZE)); // no guard page after a
  a[1] = 9;
  EXPECT_EQ(b[1], 9); // both map the same page
  std::string info = m->proc_read("/proc/vmallocinfo");
  EXPECT_NE(
      info.find("0xffffc90000000000-0xffffc90000001000    4096 vmap+0x0/0x0 pages=1 vmap N0=1\n"),
      std::string::npos)
      << info;
  EXPECT_TRUE(kmm::validate(*m).empty());
  vunmap(a);
  vunmap(b);
  __free_page(pg);
  EXPECT_TRUE(m->reports().empty());
}

// --- vmalloc_validate(): each planted corruption is named ---------------------------------------

struct VmallocPlanted : VmallocTest {
  kmm::VmallocState& st() { return *m->kernel().vmalloc; }
  static bool has(const std::vector<std::string>& errors, const std::string& e) {
    return std::find(errors.begin(), errors.end(), e) != errors.end();
  }
  static std::string dump(const std::vector<std::string>& errors) {
    std::string s;
    for (auto& e : errors) s += e + "\n";
    return s;
  }
};

TEST_F(VmallocPlanted, LostAndOverlappingRanges) {
  auto [start, end] = *st().free_ranges.begin(); // the whole reservation
  st().free_ranges.clear();
  auto e = kmm::validate(*m);
  EXPECT_EQ(e, std::vector<std::string>{"vmalloc: ranges do not cover the reservation"}) << dump(e);
  st().free_ranges[start + 2 * PAGE_SIZE] = end;
  e = kmm::validate(*m);
  EXPECT_EQ(e, std::vector<std::string>{"vmalloc: lost range at ffffc90000000000"}) << dump(e);
  // Two free ranges over the same pages, and the second one not merged with the first.
  st().free_ranges[start] = start + 3 * PAGE_SIZE;
  e = kmm::validate(*m);
  EXPECT_EQ(e, std::vector<std::string>{"vmalloc: overlapping ranges at ffffc90000002000"})
      << dump(e);
  st().free_ranges.erase(start + 2 * PAGE_SIZE);
  st().free_ranges[start] = start + 2 * PAGE_SIZE;
  st().free_ranges[start + 2 * PAGE_SIZE] = end;
  e = kmm::validate(*m);
  EXPECT_EQ(e, std::vector<std::string>{"vmalloc: free ranges at ffffc90000002000 not merged"})
      << dump(e);
  st().free_ranges.clear();
  st().free_ranges[start] = end;
  EXPECT_EQ(dump(kmm::validate(*m)), "");
}

TEST_F(VmallocPlanted, EmptyOrUnalignedRange) {
  auto [start, end] = *st().free_ranges.begin();
  st().free_ranges[start] = start + 100;
  st().free_ranges[start + 100] = end;
  auto e = kmm::validate(*m);
  EXPECT_TRUE(has(e, "vmalloc: bad range ffffc90000000000-ffffc90000000064")) << dump(e);
  EXPECT_TRUE(has(e, "vmalloc: free ranges at ffffc90000000064 not merged")) << dump(e);
  st().free_ranges.clear();
  st().free_ranges[start] = end;
  EXPECT_EQ(dump(kmm::validate(*m)), "");
}

TEST_F(VmallocPlanted, AreaPagesAndCounter) {
  void* p = vmalloc(2 * PAGE_SIZE);
  ASSERT_NE(p, nullptr);
  kmm::vmap_area& va = *st().busy.begin()->second;
  ASSERT_EQ(va.pages.size(), 2u);
  struct page* second = va.pages[1];
  unsigned long pfn = page_to_pfn(second);

  second->owner = kmm::PageOwner::KmallocLarge;
  auto e = kmm::validate(*m);
  EXPECT_TRUE(has(e, kmm::strprintf("vmalloc: area ffffc90000000000 page 1 (pfn 0x%lx) is owned by "
                                    "kmalloc-large",
                                    pfn)))
      << dump(e);
  second->owner = kmm::PageOwner::Vmalloc;

  second->flags &= ~kmm::PG_alloc;
  e = kmm::validate(*m);
  EXPECT_TRUE(has(e, kmm::strprintf("vmalloc: area ffffc90000000000 page 1 (pfn 0x%lx) is not "
                                    "allocated",
                                    pfn)))
      << dump(e);
  second->flags |= kmm::PG_alloc;

  va.pages.pop_back();
  e = kmm::validate(*m);
  EXPECT_TRUE(has(e, "vmalloc: area ffffc90000000000 maps 4096 bytes in 12288 with a 4096-byte "
                     "guard"))
      << dump(e);
  EXPECT_TRUE(has(e, "vmalloc: areas hold 1 pages, nr_vmalloc says 2")) << dump(e);
  va.pages.push_back(second);

  EXPECT_EQ(dump(kmm::validate(*m)), "");
  vfree(p);
  EXPECT_TRUE(m->reports().empty());
}
