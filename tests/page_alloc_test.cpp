// Tests for allocator/src/page_alloc.cpp: zone selection from GFP flags and the zonelist
// fallback order, every misuse report of the page allocator (order > MAX_PAGE_ORDER, bad
// frees, page poison, sleeping in atomic context, allocation failure), memory initialisation
// (__GFP_ZERO, init_on_alloc, init_on_free), compound pages, split_page, alloc_pages_exact and
// page references.
#include <gtest/gtest.h>

#include <cstring>

#include "bug.h"
#include "kernel.h"
#include "kmm/pressure.h"
#include "kmm/validate.h"
#include "page_alloc.h"
#include "page_test_util.h"
#include "pcp.h"
#include "recycle.h"

using kmm::Machine;
using kmm::test::buddyinfo;
using kmm::test::drain_machine;
using V = std::vector<long>;

namespace {

bool all_bytes(const void* p, size_t n, uint8_t v) {
  const uint8_t* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; i++)
    if (b[i] != v) return false;
  return true;
}

int zone_of(Machine& m, struct page* p) {
  unsigned long pfn = page_to_pfn(p);
  for (int i = kmm::MAX_NR_ZONES - 1; i >= 0; i--) {
    const kmm::zone& z = m.kernel().zones[i];
    if (z.populated() && pfn >= z.zone_start_pfn && pfn < z.end_pfn()) return i;
  }
  return -1;
}

} // namespace

// ---- zones ----------------------------------------------------------------------------------

TEST(PageAlloc, GfpDmaComesOnlyFromZoneDma) {
  // mem=64M: DMA [0,1024), DMA32 [1024,8192), Normal [8192,16384).
  auto m = Machine::boot("mem=64M nr_cpus=1 kmm.pcp=0");
  kmm::MachineScope scope(*m);
  auto dma = drain_machine(GFP_DMA);
  ASSERT_EQ(dma.size(), 1023u); // every DMA page but the reserved pfn 0, and nothing else
  for (struct page* p : dma) {
    ASSERT_GE(page_to_pfn(p), 1u);
    ASSERT_LT(page_to_pfn(p), 1024u);
  }
  EXPECT_EQ(alloc_pages(GFP_ATOMIC | GFP_DMA | __GFP_MEMALLOC | __GFP_NOWARN, 0), nullptr);
  // DMA32 requests never go above DMA32 (DMA is used up, so they come from [1024,8192)).
  auto dma32 = drain_machine(GFP_DMA32);
  ASSERT_EQ(dma32.size(), 7168u);
  for (struct page* p : dma32) {
    ASSERT_GE(page_to_pfn(p), 1024u);
    ASSERT_LT(page_to_pfn(p), 8192u);
  }
  // What is left is Normal, only reachable without zone modifiers.
  EXPECT_EQ(drain_machine().size(), 8192u);
  EXPECT_TRUE(m->reports().empty());
}

TEST(PageAlloc, Dma32FallsBackToDmaButNeverAbove) {
  auto m = Machine::boot("mem=64M nr_cpus=1 kmm.pcp=0");
  kmm::MachineScope scope(*m);
  auto pages = drain_machine(GFP_DMA32);
  ASSERT_EQ(pages.size(), 1023u + 7168u);
  for (struct page* p : pages) ASSERT_LT(page_to_phys(p), 8192ull << 12);
  EXPECT_EQ(kmm::test::zoneinfo(*m)["Normal"].free, 8192);
}

TEST(PageAlloc, ZonesOnABigMachineSitWhereThePcPutsThem) {
  auto m = Machine::boot("mem=16G nr_cpus=1");
  kmm::MachineScope scope(*m);
  for (int i = 0; i < 64; i++) {
    struct page* d = alloc_pages(GFP_KERNEL | GFP_DMA, 0);
    ASSERT_NE(d, nullptr);
    EXPECT_LT(page_to_phys(d), 16ull << 20); // ZONE_DMA: below 16 MiB
    struct page* d32 = alloc_pages(GFP_KERNEL | GFP_DMA32, 0);
    ASSERT_NE(d32, nullptr);
    EXPECT_GE(page_to_phys(d32), 16ull << 20); // ZONE_DMA32: [16 MiB, 4 GiB)
    EXPECT_LT(page_to_phys(d32), 4ull << 30);
  }
}

TEST(PageAlloc, ZonelistFallbackOrderFollowsTheWatermarks) {
  // GFP_KERNEL walks Normal -> DMA32 -> DMA. The fast path takes each zone down to its LOW mark
  // (plus lowmem_reserve[Normal] in the lower zones), then the slow path takes each down to MIN.
  auto m = Machine::boot("mem=64M nr_cpus=1 kmm.pcp=0");
  kmm::MachineScope scope(*m);
  auto zi = kmm::test::zoneinfo(*m);
  const auto dma = zi["DMA"];
  const auto dma32 = zi["DMA32"];
  const auto normal = zi["Normal"];
  std::vector<int> expected;
  expected.insert(expected.end(), normal.free - normal.low, 2);
  expected.insert(expected.end(), dma32.free - (dma32.low + dma32.protection[2]), 1);
  expected.insert(expected.end(), dma.free - (dma.low + dma.protection[2]), 0);
  expected.insert(expected.end(), normal.low - normal.min, 2);
  expected.insert(expected.end(), dma32.low - dma32.min, 1);
  expected.insert(expected.end(), dma.low - dma.min, 0);
  std::vector<int> got;
  while (struct page* p = alloc_pages(GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN, 0))
    got.push_back(zone_of(*m, p));
  EXPECT_EQ(got, expected);
  zi = kmm::test::zoneinfo(*m);
  EXPECT_EQ(zi["Normal"].free, normal.min);
  EXPECT_EQ(zi["DMA32"].free, dma32.min + dma32.protection[2]);
  EXPECT_EQ(zi["DMA"].free, dma.min + dma.protection[2]);
  EXPECT_TRUE(m->reports().empty());
  EXPECT_EQ(kmm::test::proc_value(*m, "/proc/vmstat", "allocstall_normal"), 1);
}

TEST(PageAlloc, TwoZoneModifiersAreRefused) {
  auto m = Machine::boot("mem=16M");
  kmm::MachineScope scope(*m);
  EXPECT_EQ(alloc_pages(GFP_KERNEL | GFP_DMA | GFP_DMA32, 0), nullptr);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title, "WARNING: CPU: 0 PID: 1 at include/linux/gfp.h gfp_zone");
  EXPECT_NE(m->reports()[0].text.find(
                "GFP_ZONE_BAD: mode:0xcc5(GFP_KERNEL|GFP_DMA|GFP_DMA32) names two zones\n"),
            std::string::npos);
}

// ---- bad requests and bad frees -------------------------------------------------------------

TEST(PageAlloc, OrderAboveMaxWarnsAndFails) {
  auto m = Machine::boot("mem=16M");
  kmm::MachineScope scope(*m);
  EXPECT_EQ(alloc_pages(GFP_KERNEL, 11), nullptr);
  ASSERT_EQ(m->reports().size(), 1u);
  const kmm::Report& r = m->reports()[0];
  EXPECT_EQ(r.kind, kmm::ReportKind::Warn);
  EXPECT_EQ(r.title, "WARNING: CPU: 0 PID: 1 at mm/page_alloc.c __alloc_pages");
  EXPECT_EQ(r.text, "------------[ cut here ]------------\n"
                    "order 11 > MAX_PAGE_ORDER (10)\n"
                    "WARNING: CPU: 0 PID: 1 at mm/page_alloc.c __alloc_pages\n"
                    "CPU: 0 PID: 1 Comm: kmm Not tainted 6.12.0-kmm #1\n"
                    "---[ end trace 0000000000000000 ]---\n");
  EXPECT_EQ(alloc_pages(GFP_KERNEL | __GFP_NOWARN, 11), nullptr);
  EXPECT_EQ(m->reports().size(), 1u);
  // MAX_PAGE_ORDER itself is legal.
  struct page* p = alloc_pages(GFP_KERNEL, 10);
  ASSERT_NE(p, nullptr);
  __free_pages(p, 10);
  EXPECT_EQ(m->reports().size(), 1u);
}

// WARN_ON_ONCE_GFP: a site warns once per boot; a silenced request (__GFP_NOWARN) does not use
// up the warning; kmalloc_large's huge order is the same site; a restored machine warns again.
TEST(PageAlloc, WarnOnceSitesWarnOncePerBoot) {
  auto m = Machine::boot("mem=16M nr_cpus=1");
  kmm::BootImagePtr img = kmm::take_boot_image(m->kernel());
  ASSERT_TRUE(img);
  {
    kmm::MachineScope scope(*m);
    EXPECT_EQ(alloc_pages(GFP_KERNEL | __GFP_NOWARN, 11), nullptr);
    EXPECT_EQ(m->reports().size(), 0u);
    EXPECT_EQ(alloc_pages(GFP_KERNEL, 11), nullptr);
    EXPECT_EQ(alloc_pages(GFP_KERNEL, 12), nullptr);
    EXPECT_EQ(kmalloc(size_t(8) << 20, GFP_KERNEL), nullptr);
    ASSERT_EQ(m->reports().size(), 1u);
    EXPECT_NE(m->reports()[0].text.find("order 11 > MAX_PAGE_ORDER"), std::string::npos);
    // Another site still warns, once.
    void* a = alloc_pages_exact(PAGE_SIZE, GFP_KERNEL | __GFP_HIGHMEM);
    void* b = alloc_pages_exact(PAGE_SIZE, GFP_KERNEL | __GFP_COMP);
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    ASSERT_EQ(m->reports().size(), 2u);
    EXPECT_EQ(m->reports()[1].title, "WARNING: CPU: 0 PID: 1 at mm/page_alloc.c alloc_pages_exact");
    EXPECT_NE(m->reports()[1].text.find("__GFP_HIGHMEM is not allowed"), std::string::npos);
    free_pages_exact(a, PAGE_SIZE);
    free_pages_exact(b, PAGE_SIZE);
  }
  ASSERT_TRUE(kmm::restore_boot_image(m->kernel(), *img));
  kmm::MachineScope scope(*m);
  EXPECT_EQ(alloc_pages(GFP_KERNEL, 11), nullptr);
  EXPECT_EQ(m->reports().size(), 1u) << "a restored machine is a fresh boot: it warns again";
}

// get_order() of a size past 2^63 is order 52 (its shift would wrap further up): kmalloc of
// such a size warns and fails instead of looping.
TEST(PageAlloc, KmallocOfAHugeSizeWarnsAndFails) {
  auto m = Machine::boot("mem=16M nr_cpus=1");
  kmm::MachineScope scope(*m);
  EXPECT_EQ(kmm::get_order(~size_t(0)), 52u);
  EXPECT_EQ(kmm::get_order(size_t(1) << 63), 51u);
  EXPECT_EQ(kmm::get_order(PAGE_SIZE + 1), 1u);
  EXPECT_EQ(kmalloc(~size_t(0), GFP_KERNEL), nullptr);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_NE(m->reports()[0].text.find("order 52 > MAX_PAGE_ORDER (10)"), std::string::npos)
      << m->reports()[0].text;
}

// Free pages, with those on pcp lists.
static long free_and_pcp_pages(Machine& m) {
  long n = 0;
  for (const auto& z : m.kernel().zones) n += z.free_pages() + kmm::zone_pcp_pages(m.kernel(), z);
  return n;
}

// alloc_pages_exact takes get_order(size) as the kernel's does: a huge size is order 52 (the old
// page count wrapped to 0 and handed out a freed page), and so is 0 (the kernel's get_order(0)
// of a run-time size). Both warn at __alloc_pages, once per boot, and fail.
TEST(PageAlloc, AllocPagesExactOfZeroOrAHugeSizeWarnsAndFails) {
  auto m = Machine::boot("mem=16M nr_cpus=1");
  kmm::MachineScope scope(*m);
  const long free_before = free_and_pcp_pages(*m);
  EXPECT_EQ(alloc_pages_exact(~size_t(0), GFP_KERNEL), nullptr);
  EXPECT_EQ(alloc_pages_exact(0, GFP_KERNEL), nullptr);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_NE(m->reports()[0].text.find("order 52 > MAX_PAGE_ORDER (10)"), std::string::npos)
      << m->reports()[0].text;
  EXPECT_EQ(free_and_pcp_pages(*m), free_before);
}

// make_alloc_exact(): the pages past the size go straight back to the buddy lists
// (__free_pages_ok(page, 0, FPI_TO_TAIL)), not to the per-CPU lists, and they merge there at once.
TEST(PageAlloc, AllocPagesExactGivesItsTailToTheBuddyListsNotThePcpLists) {
  auto m = Machine::boot("mem=16M nr_cpus=1");
  kmm::MachineScope scope(*m);
  kmm::drain_all_pages(m->kernel(), nullptr);
  auto pcp = [&] {
    long n = 0;
    for (const auto& z : m->kernel().zones) n += kmm::zone_pcp_pages(m->kernel(), z);
    return n;
  };
  const long free_before = free_and_pcp_pages(*m);
  void* e = alloc_pages_exact(5 * PAGE_SIZE, GFP_KERNEL); // order 3: 3 pages come back
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(pcp(), 0);
  EXPECT_EQ(free_and_pcp_pages(*m), free_before - 5);
  // Page 5 stays alone (page 4 is ours); 6 and 7 merge into an order-1 block.
  const unsigned long pfn = page_to_pfn(virt_to_page(e));
  const struct page* p6 = pfn_to_page(pfn + 6);
  EXPECT_TRUE(kmm::PageBuddy(*pfn_to_page(pfn + 5)));
  EXPECT_EQ(pfn_to_page(pfn + 5)->private_, 0u);
  EXPECT_TRUE(kmm::PageBuddy(*p6));
  EXPECT_EQ(p6->private_, 1u);
  EXPECT_TRUE(kmm::validate(*m).empty());
  free_pages_exact(e, 5 * PAGE_SIZE);
  EXPECT_EQ(free_and_pcp_pages(*m), free_before);
  EXPECT_TRUE(m->reports().empty());
}

// free_pages_exact() frees while addr < addr + PAGE_ALIGN(size), in the kernel's address space:
// a size whose end wraps past 2^64 frees nothing (kmm counted up to 2^52 pages: a hang), and a
// size running past the end of memory stops there with one warning instead of one a page.
TEST(PageAlloc, FreePagesExactOfAHugeSizeFreesNothingAndNeverHangs) {
  auto m = Machine::boot("mem=16M nr_cpus=1");
  kmm::MachineScope scope(*m);
  const long free_before = free_and_pcp_pages(*m);
  void* e = alloc_pages_exact(3 * PAGE_SIZE, GFP_KERNEL);
  ASSERT_NE(e, nullptr);
  for (size_t size : {~size_t(0), ~size_t(0) - 2 * PAGE_SIZE, size_t(1) << 62, size_t(1) << 48})
    free_pages_exact(e, size);
  EXPECT_TRUE(m->reports().empty());
  EXPECT_EQ(free_and_pcp_pages(*m), free_before - 3);
  free_pages_exact(e, 3 * PAGE_SIZE);
  EXPECT_EQ(free_and_pcp_pages(*m), free_before);
  EXPECT_TRUE(m->reports().empty());
  // The last page of memory, freed as two pages: the page past it is not there.
  void* last = page_address(pfn_to_page(m->kernel().mem.nr_pages - 1));
  free_pages_exact(last, 2 * PAGE_SIZE);
  EXPECT_EQ(kmm::test::count_reports(*m, "at mm/page_alloc.c free_pages_exact"), 1u);
}

TEST(PageAlloc, DoubleFreeIsABadPage) {
  auto m = Machine::boot("mem=4M nr_cpus=1");
  kmm::MachineScope scope(*m);
  struct page* p = alloc_pages(GFP_KERNEL, 0);
  ASSERT_EQ(page_to_pfn(p), 512u);
  __free_pages(p, 0); // onto the pcp list
  __free_pages(p, 0);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].kind, kmm::ReportKind::BadPage);
  EXPECT_EQ(m->reports()[0].title, "BUG: Bad page state in process kmm  pfn:00200");
  EXPECT_EQ(m->reports()[0].addr, 512u << 12);
  // Once more after it reached the buddy lists: still a bad page, and the lists are intact.
  kmm::Kernel& k = m->kernel();
  kmm::drain_all_pages(k, nullptr);
  __free_pages(p, 0);
  ASSERT_EQ(m->reports().size(), 2u);
  EXPECT_EQ(m->reports()[1].title, "BUG: Bad page state in process kmm  pfn:00200");
  EXPECT_NE(m->reports()[1].text.find("page_type: buddy\n"), std::string::npos);
  EXPECT_NE(m->reports()[1].text.find("page dumped because: nonzero mapcount\n"),
            std::string::npos);
  EXPECT_TRUE(kmm::validate(*m).empty());
  EXPECT_NE(m->dmesg().find("BUG: Bad page state in process kmm  pfn:00200\n"), std::string::npos);
}

TEST(PageAlloc, FreeingANeverAllocatedOrReservedPageIsABadPage) {
  auto m = Machine::boot("mem=4M nr_cpus=1 kmm.pcp=0");
  kmm::MachineScope scope(*m);
  const std::string before = m->proc_read("/proc/buddyinfo");
  __free_pages(pfn_to_page(600), 0); // inside the free order-9 block at 512
  __free_pages(pfn_to_page(0), 0);   // the reserved first page
  ASSERT_EQ(m->reports().size(), 2u);
  EXPECT_EQ(m->reports()[0].title, "BUG: Bad page state in process kmm  pfn:00258");
  EXPECT_NE(m->reports()[0].text.find("page dumped because: page_ref_count(page) == 0\n"),
            std::string::npos);
  EXPECT_EQ(m->reports()[1].title, "BUG: Bad page state in process kmm  pfn:00000");
  EXPECT_NE(m->reports()[1].text.find("flags: 0x8(reserved|zone=0)\n"), std::string::npos);
  EXPECT_NE(
      m->reports()[1].text.find("page dumped because: PAGE_FLAGS_CHECK_AT_FREE flag(s) set\n"),
      std::string::npos);
  EXPECT_EQ(m->proc_read("/proc/buddyinfo"), before); // nothing was actually freed
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(PageAlloc, FreeingWithTheWrongOrderOrATailIsABadPage) {
  auto m = Machine::boot("mem=4M nr_cpus=1 kmm.pcp=0");
  kmm::MachineScope scope(*m);
  struct page* p = alloc_pages(GFP_KERNEL, 0);
  __free_pages(p, 1);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_NE(
      m->reports()[0].text.find("page dumped because: freed as order 1, allocated as order 0\n"),
      std::string::npos);
  struct page* c = alloc_pages(GFP_KERNEL | __GFP_COMP, 2);
  __free_pages(c + 1, 0);
  ASSERT_EQ(m->reports().size(), 2u);
  EXPECT_NE(m->reports()[1].text.find("page dumped because: freeing a compound tail page\n"),
            std::string::npos);
  __free_pages(p, 0);
  __free_pages(c, 2);
  EXPECT_EQ(m->reports().size(), 2u);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(PageAlloc, PagePoisonCatchesAWriteAfterFree) {
  auto m = Machine::boot("mem=4M nr_cpus=1 kmm.pcp=0 page_poison=1");
  kmm::MachineScope scope(*m);
  struct page* p = alloc_pages(GFP_KERNEL, 0);
  ASSERT_EQ(page_to_pfn(p), 512u);
  uint8_t* mem = static_cast<uint8_t*>(page_address(p));
  __free_pages(p, 0);
  EXPECT_TRUE(all_bytes(mem, PAGE_SIZE, 0xaa)); // poisoned at free
  mem[100] = 0x00;                              // use after free
  mem[103] = 0x11;
  struct page* again = alloc_pages(GFP_KERNEL, 0); // LIFO: the same page
  ASSERT_EQ(again, p);
  ASSERT_EQ(m->reports().size(), 1u);
  const kmm::Report& r = m->reports()[0];
  EXPECT_EQ(r.kind, kmm::ReportKind::PagePoison);
  EXPECT_EQ(r.title, "pagealloc: memory corruption");
  EXPECT_EQ(r.addr, (512u << 12) + 100);
  EXPECT_EQ(r.offset, 100);
  // print_hex_dump of the row holding the corruption, at the direct-map address.
  EXPECT_NE(r.text.find("ffff888000200060: aa aa aa aa 00 aa aa 11 aa aa aa aa aa aa aa aa\n"),
            std::string::npos)
      << r.text;
  __free_pages(again, 0);
  // One flipped bit is told apart.
  mem[7] = 0xab;
  struct page* third = alloc_pages(GFP_KERNEL, 0);
  ASSERT_EQ(third, p);
  ASSERT_EQ(m->reports().size(), 2u);
  EXPECT_EQ(m->reports()[1].title, "pagealloc: single bit error");
  __free_pages(third, 0);
  // A clean reuse reports nothing.
  struct page* fourth = alloc_pages(GFP_KERNEL, 0);
  EXPECT_EQ(m->reports().size(), 2u);
  __free_pages(fourth, 0);
}

TEST(PageAlloc, ZeroingFlagsAndBootParameters) {
  for (const char* cmdline :
       {"mem=4M nr_cpus=1 kmm.pcp=0", "mem=4M nr_cpus=1 kmm.pcp=0 init_on_alloc=1",
        "mem=4M nr_cpus=1 kmm.pcp=0 init_on_free=1"}) {
    SCOPED_TRACE(cmdline);
    auto m = Machine::boot(cmdline);
    kmm::MachineScope scope(*m);
    const bool on_alloc = std::strstr(cmdline, "init_on_alloc");
    const bool on_free = std::strstr(cmdline, "init_on_free");
    struct page* p = alloc_pages(GFP_KERNEL, 1);
    uint8_t* mem = static_cast<uint8_t*>(page_address(p));
    std::memset(mem, 0x5a, 2 * PAGE_SIZE);
    __free_pages(p, 1);
    EXPECT_EQ(all_bytes(mem, 2 * PAGE_SIZE, 0), on_free);
    struct page* q = alloc_pages(GFP_KERNEL, 1); // the same block again
    ASSERT_EQ(q, p);
    EXPECT_EQ(all_bytes(mem, 2 * PAGE_SIZE, 0), on_alloc || on_free);
    EXPECT_EQ(all_bytes(mem, 2 * PAGE_SIZE, 0x5a), !on_alloc && !on_free);
    std::memset(mem, 0x5a, 2 * PAGE_SIZE);
    __free_pages(q, 1);
    // __GFP_ZERO always zeroes, as get_zeroed_page() does.
    struct page* z = alloc_pages(GFP_KERNEL | __GFP_ZERO, 1);
    ASSERT_EQ(z, p);
    EXPECT_TRUE(all_bytes(mem, 2 * PAGE_SIZE, 0));
    std::memset(mem, 0x5a, 2 * PAGE_SIZE);
    __free_pages(z, 1);
    unsigned long addr = get_zeroed_page(GFP_KERNEL);
    EXPECT_EQ(reinterpret_cast<uint8_t*>(addr), mem);
    EXPECT_TRUE(all_bytes(mem, PAGE_SIZE, 0));
    free_page(addr);
    EXPECT_TRUE(m->reports().empty());
  }
}

TEST(PageAlloc, SleepingAllocationInAtomicContextIsReported) {
  auto m = Machine::boot("mem=16M");
  kmm::MachineScope scope(*m);
  spinlock_t lock;
  spin_lock_init(&lock);
  spin_lock(&lock);
  struct page* atomic = alloc_pages(GFP_ATOMIC, 0); // fine under a spinlock
  EXPECT_TRUE(m->reports().empty());
  struct page* p = alloc_pages(GFP_KERNEL, 0); // reported, but the kernel still allocates
  spin_unlock(&lock);
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(m->reports().size(), 1u);
  const kmm::Report& r = m->reports()[0];
  EXPECT_EQ(r.kind, kmm::ReportKind::SleepInAtomic);
  EXPECT_EQ(r.title,
            "BUG: sleeping function called from invalid context at include/linux/sched/mm.h");
  EXPECT_EQ(r.text.substr(r.title.size() + 1),
            "in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: 1, name: kmm\n"
            "preempt_count: 1, expected: 0\n"
            "RCU nest depth: 0, expected: 0\n"
            "CPU: 0 PID: 1 Comm: kmm Not tainted 6.12.0-kmm #1\n");
  // With interrupts off, and in an interrupt handler.
  local_irq_disable();
  struct page* q = alloc_pages(GFP_NOIO, 0);
  local_irq_enable();
  ASSERT_EQ(m->reports().size(), 2u);
  EXPECT_NE(m->reports()[1].text.find("in_atomic(): 0, irqs_disabled(): 1"), std::string::npos);
  static struct page* from_irq;
  kmm_run_in_irq([](void*) { from_irq = alloc_pages(GFP_KERNEL, 0); }, nullptr);
  ASSERT_EQ(m->reports().size(), 3u);
  EXPECT_NE(m->reports()[2].text.find("preempt_count: 10000, expected: 0\n"), std::string::npos);
  // Outside atomic context: nothing.
  struct page* fine = alloc_pages(GFP_KERNEL, 0);
  EXPECT_EQ(m->reports().size(), 3u);
  for (struct page* x : {atomic, p, q, from_irq, fine}) __free_pages(x, 0);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(PageAlloc, AllocationFailureWarningHasTheKernelShape) {
  auto m = Machine::boot("mem=4M nr_cpus=1");
  kmm::MachineScope scope(*m);
  // mem=4M has no order-10 block at all.
  EXPECT_EQ(alloc_pages(GFP_KERNEL | __GFP_ZERO, 10), nullptr);
  ASSERT_EQ(m->reports().size(), 1u);
  const kmm::Report& r = m->reports()[0];
  EXPECT_EQ(r.kind, kmm::ReportKind::AllocFail);
  EXPECT_EQ(r.title, "kmm: page allocation failure: order:10, mode:0xdc0(GFP_KERNEL|__GFP_ZERO), "
                     "nodemask=(null)");
  EXPECT_EQ(r.text.rfind(r.title + ",cpuset=/,mems_allowed=0\n"
                                   "CPU: 0 PID: 1 Comm: kmm Not tainted 6.12.0-kmm #1\n"
                                   "Mem-Info:\n",
                         0),
            0u);
  // show_mem's per-zone free lists: the DMA zone of mem=4M (1+2+4+8+16+32 pages).
  EXPECT_NE(r.text.find("Node 0 DMA: 1*4kB (M) 1*8kB (M) 1*16kB (M) 1*32kB (M) 1*64kB (M) "
                        "1*128kB (M) 0*256kB 0*512kB 0*1024kB 0*2048kB 0*4096kB = 252kB\n"),
            std::string::npos)
      << r.text;
  EXPECT_EQ(alloc_pages(GFP_KERNEL | __GFP_NOWARN, 10), nullptr);
  EXPECT_EQ(alloc_pages(GFP_ATOMIC | __GFP_NOWARN, 10), nullptr);
  EXPECT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(alloc_pages(GFP_ATOMIC, 10), nullptr);
  ASSERT_EQ(m->reports().size(), 2u);
  EXPECT_EQ(m->reports()[1].title,
            "kmm: page allocation failure: order:10, mode:0x820(GFP_ATOMIC), nodemask=(null)");
}

TEST(PageAlloc, OrderZeroGfpKernelWithNothingToReclaimEndsInOom) {
  // "Too small to fail": a blocking order-0 request loops into the OOM killer. With no task to
  // kill the kernel reports it and panics (the machine continues; panic_on_warn would abort).
  auto m = Machine::boot("mem=4M nr_cpus=1 kmm.pcp=0");
  kmm::MachineScope scope(*m);
  auto pages = drain_machine();
  EXPECT_EQ(alloc_pages(GFP_KERNEL, 0), nullptr);
  ASSERT_GE(m->reports().size(), 2u);
  EXPECT_EQ(m->reports()[0].kind, kmm::ReportKind::Oom);
  EXPECT_EQ(m->reports()[0].title, "Out of memory and no killable processes...");
  EXPECT_EQ(
      m->reports()[0].text.rfind(
          "kmm invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0\n", 0),
      0u);
  EXPECT_EQ(m->reports()[1].title, "Kernel panic - not syncing: System is deadlocked on memory");
  for (struct page* p : pages) __free_pages(p, 0);
}

// ---- compound pages, split_page, exact allocations, references ------------------------------

TEST(PageAlloc, CompoundPagesShareTheHeadsReference) {
  auto m = Machine::boot("mem=4M nr_cpus=1 kmm.pcp=0");
  kmm::MachineScope scope(*m);
  const std::string boot = m->proc_read("/proc/buddyinfo");
  struct page* p = alloc_pages(GFP_KERNEL | __GFP_COMP, 2);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(compound_order(p), 2u);
  EXPECT_EQ(compound_order(p + 1), 0u);
  for (int i = 0; i < 4; i++) EXPECT_EQ(compound_head(p + i), p);
  EXPECT_EQ(page_count(p + 3), 1);
  get_page(p + 3); // a tail reference pins the head
  EXPECT_EQ(page_count(p), 2);
  put_page(p + 1);
  EXPECT_EQ(page_count(p), 1);
  EXPECT_NE(m->proc_read("/proc/buddyinfo"), boot);
  put_page(p); // last reference: the whole order-2 block is freed
  EXPECT_EQ(m->proc_read("/proc/buddyinfo"), boot);
  EXPECT_TRUE(m->reports().empty());
  // Not compound without __GFP_COMP (or at order 0).
  struct page* q = alloc_pages(GFP_KERNEL, 2);
  EXPECT_EQ(compound_order(q), 0u);
  EXPECT_EQ(compound_head(q + 1), q + 1);
  __free_pages(q, 2);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(PageAlloc, ExtraReferenceOnANonCompoundBlockKeepsOnlyItsFirstPage) {
  auto m = Machine::boot("mem=4M nr_cpus=1 kmm.pcp=0");
  kmm::MachineScope scope(*m);
  struct page* p = alloc_pages(GFP_KERNEL, 2); // pfn 512, splitting the order-9 block
  ASSERT_EQ(page_to_pfn(p), 512u);
  EXPECT_EQ(buddyinfo(*m, "Normal"), (V{0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0}));
  get_page(p);
  __free_pages(p, 2); // __free_pages(): frees 514-515 and 513, keeps 512 for the other holder
  EXPECT_EQ(page_count(p), 1);
  EXPECT_EQ(buddyinfo(*m, "Normal"), (V{1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}));
  put_page(p);
  EXPECT_EQ(buddyinfo(*m, "Normal"), (V{0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0}));
  EXPECT_TRUE(m->reports().empty());
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(PageAlloc, ReferencesOnFreePagesAreBadPages) {
  auto m = Machine::boot("mem=4M nr_cpus=1 kmm.pcp=0");
  kmm::MachineScope scope(*m);
  get_page(pfn_to_page(700));
  put_page(pfn_to_page(700));
  ASSERT_EQ(m->reports().size(), 2u);
  EXPECT_EQ(m->reports()[0].title, "BUG: Bad page state in process kmm  pfn:002bc");
  EXPECT_NE(m->reports()[0].text.find(
                "page dumped because: get_page() on a page that is not allocated\n"),
            std::string::npos);
  EXPECT_EQ(m->reports()[1].title, "BUG: Bad page state in process kmm  pfn:002bc");
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(PageAlloc, SplitPageMakesIndependentOrderZeroPages) {
  auto m = Machine::boot("mem=4M nr_cpus=1 kmm.pcp=0");
  kmm::MachineScope scope(*m);
  struct page* p = alloc_pages(GFP_KERNEL, 3);
  split_page(p, 3);
  for (int i = 0; i < 8; i++) EXPECT_EQ(page_count(p + i), 1);
  EXPECT_TRUE(kmm::validate(*m).empty());
  for (int i = 7; i >= 0; i--) __free_page(p + i);
  EXPECT_EQ(buddyinfo(*m, "Normal"), (V{0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0}));
  // A compound page cannot be split.
  struct page* c = alloc_pages(GFP_KERNEL | __GFP_COMP, 1);
  split_page(c, 1);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title, "WARNING: CPU: 0 PID: 1 at mm/page_alloc.c split_page");
  __free_pages(c, 1);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(PageAlloc, AllocPagesExactReturnsTheTail) {
  auto m = Machine::boot("mem=4M nr_cpus=1 kmm.pcp=0");
  kmm::MachineScope scope(*m);
  // 5 pages: an order-3 block at 512, pages 517..519 given back (517 as o0, 518 as o1).
  void* v = alloc_pages_exact(5 * PAGE_SIZE - 100, GFP_KERNEL);
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(virt_to_phys(v), 512u << 12);
  EXPECT_EQ(buddyinfo(*m, "Normal"), (V{1, 1, 0, 1, 1, 1, 1, 1, 1, 0, 0}));
  for (int i = 0; i < 5; i++) EXPECT_EQ(page_count(virt_to_page(v) + i), 1);
  free_pages_exact(v, 5 * PAGE_SIZE - 100);
  EXPECT_EQ(buddyinfo(*m, "Normal"), (V{0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0}));
  EXPECT_TRUE(m->reports().empty());
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(PageAlloc, GetFreePagesAndAddressRoundTrips) {
  auto m = Machine::boot("mem=4M nr_cpus=1 kmm.pcp=0");
  kmm::MachineScope scope(*m);
  unsigned long addr = __get_free_pages(GFP_KERNEL, 1);
  ASSERT_NE(addr, 0u);
  void* v = reinterpret_cast<void*>(addr);
  struct page* p = virt_to_page(v);
  EXPECT_EQ(page_address(p), v);
  EXPECT_EQ(page_to_pfn(p), 512u);
  EXPECT_EQ(pfn_to_page(512), p);
  EXPECT_EQ(virt_to_phys(v), 512u << 12);
  EXPECT_EQ(phys_to_virt(512u << 12), v);
  EXPECT_EQ(page_to_phys(p), 512u << 12);
  free_pages(addr, 1);
  EXPECT_EQ(buddyinfo(*m, "Normal"), (V{0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0}));
  free_pages(0, 3); // NULL is ignored, as in the kernel
  EXPECT_TRUE(m->reports().empty());
}

// ---- the slow path's last resorts: __GFP_RETRY_MAYFAIL and __GFP_NOFAIL ----------------------

TEST(PageAlloc, RetryMayfailReclaimsThenFailsWithoutOom) {
  auto m = Machine::boot("mem=4M nr_cpus=1 kmm.pcp=0");
  kmm::MachineScope scope(*m);
  int ino = kmm::file_create(*m, "data");
  ASSERT_EQ(kmm::file_read(*m, ino, 0, 1), 1); // one clean page-cache page
  auto pages = drain_machine();
  // Direct reclaim frees the cached page (progress), but one page is below the min watermark;
  // __GFP_RETRY_MAYFAIL keeps the OOM killer out, so the request fails with the warning.
  EXPECT_EQ(alloc_pages(GFP_KERNEL | __GFP_RETRY_MAYFAIL, 0), nullptr);
  EXPECT_EQ(kmm::file_cached_pages(*m, ino), 0);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title, "kmm: page allocation failure: order:0, "
                                   "mode:0x4cc0(GFP_KERNEL|__GFP_RETRY_MAYFAIL), nodemask=(null)");
  EXPECT_EQ(kmm::test::count_reports(*m, "oom"), 0u);
  EXPECT_GE(kmm::test::proc_value(*m, "/proc/vmstat", "allocstall_normal"), 1);
  for (struct page* p : pages) __free_pages(p, 0);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(PageAlloc, NofailWithoutDirectReclaimWarnsAndFails) {
  auto m = Machine::boot("mem=4M nr_cpus=1 kmm.pcp=0");
  kmm::MachineScope scope(*m);
  auto pages = drain_machine();
  EXPECT_EQ(alloc_pages(GFP_ATOMIC | __GFP_NOFAIL, 0), nullptr);
  ASSERT_EQ(m->reports().size(), 2u);
  EXPECT_EQ(m->reports()[0].title,
            "WARNING: CPU: 0 PID: 1 at mm/page_alloc.c __alloc_pages_slowpath");
  EXPECT_NE(m->reports()[0].text.find("__GFP_NOFAIL without __GFP_DIRECT_RECLAIM\n"),
            std::string::npos);
  EXPECT_EQ(m->reports()[1].title.rfind("kmm: page allocation failure: order:0, mode:0x8820(", 0),
            0u)
      << m->reports()[1].title;
  for (struct page* p : pages) __free_pages(p, 0);
}

TEST(PageAlloc, NofailCostlyOrderWarnsThenDipsIntoTheReserve) {
  auto m = Machine::boot("mem=4M nr_cpus=1 kmm.pcp=0");
  kmm::MachineScope scope(*m);
  // Order-4 blocks down to the min watermark: a plain costly request fails now...
  std::vector<struct page*> blocks;
  while (struct page* p = alloc_pages(GFP_KERNEL | __GFP_NOWARN, 4)) blocks.push_back(p);
  auto zones_before = kmm::test::zoneinfo(*m);
  EXPECT_TRUE(m->reports().empty());
  // ...__GFP_NOFAIL for a costly order is warned about, then served from below the min mark
  // (__alloc_pages_cpuset_fallback with ALLOC_MIN_RESERVE).
  struct page* p = alloc_pages(GFP_KERNEL | __GFP_NOFAIL, 4);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title,
            "WARNING: CPU: 0 PID: 1 at mm/page_alloc.c __alloc_pages_slowpath");
  EXPECT_NE(m->reports()[0].text.find("__GFP_NOFAIL for a costly order\n"), std::string::npos);
  ASSERT_NE(p, nullptr);
  auto zones_after = kmm::test::zoneinfo(*m);
  long taken = 0;
  for (auto& [name, z] : zones_before) taken += z.free - zones_after[name].free;
  EXPECT_EQ(taken, 16);
  __free_pages(p, 4);
  for (struct page* b : blocks) __free_pages(b, 4);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

// ---- misuse of the free and split helpers -----------------------------------------------------

TEST(PageAlloc, SplitPageOfTheWrongOrderIsABadPage) {
  auto m = Machine::boot("mem=4M nr_cpus=1 kmm.pcp=0");
  kmm::MachineScope scope(*m);
  struct page* p = alloc_pages(GFP_KERNEL, 1);
  ASSERT_NE(p, nullptr);
  split_page(p, 2);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title,
            kmm::strprintf("BUG: Bad page state in process kmm  pfn:%05lx", page_to_pfn(p)));
  EXPECT_NE(
      m->reports()[0].text.find(
          "page dumped because: split_page() of a block that is not allocated at this order\n"),
      std::string::npos);
  // Nothing was split: the block is still one order-1 allocation.
  __free_pages(p, 1);
  EXPECT_EQ(m->reports().size(), 1u);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(PageAlloc, FreePagesExactOutsideTheDirectMap) {
  auto m = Machine::boot("mem=4M nr_cpus=1 kmm.pcp=0");
  kmm::MachineScope scope(*m);
  void* v = vmalloc(PAGE_SIZE);
  ASSERT_NE(v, nullptr);
  free_pages_exact(v, PAGE_SIZE);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title, "WARNING: CPU: 0 PID: 1 at mm/page_alloc.c free_pages_exact");
  EXPECT_NE(m->reports()[0].text.find("not a direct-map address\n"), std::string::npos);
  vfree(v); // still a live vmalloc area
  EXPECT_TRUE(kmm::validate(*m).empty());
}
