// Tests for allocator/src/dma.cpp: coherent buffers inside the device's mask, from CMA when
// there is one, zeroed, and freed back to where they came from.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "kmm/device.h"
#include "kmm/linux.h"
#include "kmm/validate.h"
#include "test_util.h"

using kmm::Machine;

namespace {

TEST(Dma, MasksChooseTheZone) {
  auto m = Machine::boot("mem=64M");
  kmm::MachineScope scope(*m);
  kmm::Device isa(*m, "isa-dma", 24);
  kmm::Device pci(*m, "pci32", 32);
  for (int i = 0; i < 50; i++) {
    dma_addr_t h24 = 0, h32 = 0;
    void* a = dma_alloc_coherent(&isa, 3 * PAGE_SIZE, &h24, GFP_KERNEL);
    void* b = dma_alloc_coherent(&pci, PAGE_SIZE, &h32, GFP_KERNEL);
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    EXPECT_LE(h24 + 3 * PAGE_SIZE - 1, DMA_BIT_MASK(24));
    EXPECT_LE(h32 + PAGE_SIZE - 1, DMA_BIT_MASK(32));
    EXPECT_EQ(virt_to_phys(a), h24);
    // ZONE_DMA on this machine is the first mem/16 = 4 MiB.
    EXPECT_LT(h24, 4ull << 20);
    EXPECT_EQ(static_cast<char*>(a)[3 * PAGE_SIZE - 1], 0);
    std::memset(a, 0x33, 3 * PAGE_SIZE);
  }
  EXPECT_TRUE(kmm::validate(*m).empty());
  EXPECT_TRUE(m->reports().empty());
  // A buffer freed again leaves the machine consistent.
  dma_addr_t h = 0;
  void* c = dma_alloc_coherent(&isa, 100, &h, GFP_KERNEL);
  dma_free_coherent(&isa, 100, c, h);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Dma, FromCmaWhenPresent) {
  auto m = Machine::boot("mem=32M cma=8M");
  kmm::MachineScope scope(*m);
  kmm::Device dev(*m, "camera", 32);
  struct cma* area = dev_get_cma_area(&dev);
  ASSERT_NE(area, nullptr);
  dma_addr_t h = 0;
  void* buf = dma_alloc_coherent(&dev, 1 << 20, &h, GFP_KERNEL);
  ASSERT_NE(buf, nullptr);
  EXPECT_GE(h, 0x1800000u);     // the CMA area is [24M, 32M)
  EXPECT_EQ(h % (1 << 20), 0u); // aligned to get_order(1M) = 8
  EXPECT_EQ(m->proc_read("/sys/kernel/debug/cma/reserved/used"), "256\n");
  EXPECT_TRUE(kmm::validate(*m).empty());
  dma_free_coherent(&dev, 1 << 20, buf, h);
  EXPECT_EQ(m->proc_read("/sys/kernel/debug/cma/reserved/used"), "0\n");
  // A single page does not use the global CMA area (dma_alloc_contiguous skips it).
  void* one = dma_alloc_coherent(&dev, PAGE_SIZE, &h, GFP_KERNEL);
  EXPECT_EQ(m->proc_read("/sys/kernel/debug/cma/reserved/used"), "0\n");
  dma_free_coherent(&dev, PAGE_SIZE, one, h);
  // Atomic callers cannot use CMA either.
  void* atomic = dma_alloc_coherent(&dev, 1 << 16, &h, GFP_ATOMIC);
  ASSERT_NE(atomic, nullptr);
  EXPECT_EQ(m->proc_read("/sys/kernel/debug/cma/reserved/used"), "0\n");
  dma_free_coherent(&dev, 1 << 16, atomic, h);
  EXPECT_TRUE(kmm::validate(*m).empty());
  EXPECT_TRUE(m->reports().empty());
}

TEST(Dma, ImpossibleRequestsAreNullWithTheWarning) {
  auto m = Machine::boot("mem=16M");
  kmm::MachineScope scope(*m);
  kmm::Device dev(*m, "isa", 24);
  dma_addr_t h = 0;
  // ZONE_DMA is 1 MiB here: 2 MiB cannot fit below the mask.
  EXPECT_EQ(dma_alloc_coherent(&dev, 2 << 20, &h, GFP_KERNEL), nullptr);
  EXPECT_EQ(kmm::test::count_reports(*m, "page allocation failure: order:9"), 1u);
  EXPECT_EQ(dma_set_mask_and_coherent(&dev, DMA_BIT_MASK(20)), -5);
  void* p = dma_alloc_coherent(&dev, 64, &h, GFP_KERNEL);
  dma_free_coherent(&dev, 64, p, h + PAGE_SIZE); // wrong handle: a warning, nothing freed
  EXPECT_EQ(kmm::test::count_reports(*m, "WARNING"), 1u);
  dma_free_coherent(&dev, 64, p, h);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Dma, MaskInsideZoneDma32RetriesLower) {
  // mem=256M: DMA [0, 16M), DMA32 [16M, 128M). A 26-bit device reaches only [0, 64M): DMA32
  // pages above 64M are given back and the request retried in ZONE_DMA, until that is full too.
  auto m = Machine::boot("mem=256M");
  kmm::MachineScope scope(*m);
  kmm::Device dev(*m, "dma26", 32);
  EXPECT_EQ(dma_set_mask_and_coherent(&dev, DMA_BIT_MASK(26)), 0);
  EXPECT_EQ(dev.coherent_dma_mask, DMA_BIT_MASK(26));
  EXPECT_EQ(dev.dma_mask, DMA_BIT_MASK(26));
  std::vector<std::pair<void*, dma_addr_t>> bufs;
  for (;;) {
    dma_addr_t h = 0;
    void* p = dma_alloc_coherent(&dev, 2 << 20, &h, GFP_KERNEL | __GFP_NOWARN);
    if (!p) break;
    EXPECT_LE(h + (2 << 20) - 1, DMA_BIT_MASK(26));
    bufs.emplace_back(p, h);
    ASSERT_LT(bufs.size(), 64u);
  }
  // 48 MiB of DMA32 below the mask and most of the 16 MiB of ZONE_DMA: at least 24 + 4 buffers.
  EXPECT_GE(bufs.size(), 28u);
  size_t in_dma = 0;
  for (auto& [p, h] : bufs) in_dma += h < (16u << 20);
  EXPECT_GE(in_dma, 4u);
  EXPECT_TRUE(m->reports().empty());
  for (auto& [p, h] : bufs) dma_free_coherent(&dev, 2 << 20, p, h);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Dma, NoDeviceOrHandleIsAWarning) {
  auto m = Machine::boot("mem=16M");
  kmm::MachineScope scope(*m);
  kmm::Device dev(*m, "dev", 32);
  dma_addr_t h = 0;
  EXPECT_EQ(dma_alloc_coherent(nullptr, 64, &h, GFP_KERNEL), nullptr);
  EXPECT_EQ(dma_alloc_coherent(&dev, 64, nullptr, GFP_KERNEL), nullptr);
  ASSERT_EQ(m->reports().size(), 2u);
  for (auto& r : m->reports()) {
    EXPECT_EQ(r.title, "WARNING: CPU: 0 PID: 1 at kernel/dma/mapping.c dma_alloc_attrs");
    EXPECT_NE(r.text.find("dma_alloc_coherent() without a device or handle\n"), std::string::npos);
  }
}

// The kernel has no size check of its own: dma_direct_alloc() page-aligns the size and asks for
// get_order() of it, order 52 for 0 (and for SIZE_MAX, which aligns to 0), so both fail with
// __alloc_pages' WARN_ON_ONCE_GFP. kmm had a warning of its own for 0.
TEST(Dma, ZeroOrHugeSizeFailsWithThePageAllocatorsOrderWarning) {
  auto m = Machine::boot("mem=32M cma=8M");
  kmm::MachineScope scope(*m);
  kmm::Device dev(*m, "dev", 32);
  dma_addr_t h = 0;
  EXPECT_EQ(dma_alloc_coherent(&dev, 0, &h, GFP_KERNEL), nullptr);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title, "WARNING: CPU: 0 PID: 1 at mm/page_alloc.c __alloc_pages");
  EXPECT_NE(m->reports()[0].text.find("order 52 > MAX_PAGE_ORDER (10)"), std::string::npos);
  EXPECT_EQ(dma_alloc_coherent(&dev, SIZE_MAX, &h, GFP_KERNEL), nullptr);
  EXPECT_EQ(dma_alloc_coherent(&dev, SIZE_MAX - PAGE_SIZE + 2, &h, GFP_KERNEL), nullptr);
  EXPECT_EQ(m->reports().size(), 1u); // WARN_ON_ONCE
  EXPECT_EQ(m->proc_read("/sys/kernel/debug/cma/reserved/used"), "0\n");
  EXPECT_TRUE(kmm::validate(*m).empty());
}

// A four-page coherent buffer from the CMA area of a 32M machine, to be freed with a wrong size.
class DmaCmaBuffer : public ::testing::Test {
protected:
  void SetUp() override { ASSERT_NE(buf, nullptr); }
  std::unique_ptr<Machine> m = Machine::boot("mem=32M cma=8M");
  kmm::MachineScope scope{*m};
  kmm::Device dev{*m, "camera", 32};
  dma_addr_t h = 0;
  void* buf = dma_alloc_coherent(&dev, 4 * PAGE_SIZE, &h, GFP_KERNEL);
};

// dma_free_coherent() of a CMA buffer with a size running past the area is cma_release's
// VM_BUG_ON: kmm first handed the pages back to CMA one by one, count of them, walking off the
// end of the memmap (a crash for a huge size).
TEST_F(DmaCmaBuffer, FreeWithAHugeSizeIsABugNotACrash) {
  EXPECT_EQ(m->proc_read("/sys/kernel/debug/cma/reserved/used"), "4\n");
  dma_free_coherent(&dev, size_t(1) << 62, buf, h);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title, "WARNING: CPU: 0 PID: 1 at mm/cma.c cma_release");
  EXPECT_EQ(m->proc_read("/sys/kernel/debug/cma/reserved/used"), "4\n");
  EXPECT_TRUE(kmm::validate(*m).empty());
  dma_free_coherent(&dev, 4 * PAGE_SIZE, buf, h); // the buffer is still whole
  EXPECT_EQ(m->proc_read("/sys/kernel/debug/cma/reserved/used"), "0\n");
  EXPECT_EQ(m->reports().size(), 1u);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

// A CMA buffer freed with a size larger than it, but inside the area, frees pages that are free:
// bad pages. The pages past the buffer keep their owners (kmm relabelled every page of the count as
// CMA's, free ones included, which a restore to the boot image did not take back).
TEST_F(DmaCmaBuffer, FreeWithATooLargeSizeLeavesOtherPagesAlone) {
  struct page* page = virt_to_page(buf);
  ASSERT_EQ((page + 4)->owner, kmm::PageOwner::None);
  dma_free_coherent(&dev, 64 * PAGE_SIZE, buf, h); // page 4 on is free: a bad page
  ASSERT_FALSE(m->reports().empty());
  EXPECT_EQ(m->reports()[0].title.rfind("BUG: Bad page state in process kmm", 0), 0u);
  for (int i = 4; i < 64; i++) EXPECT_EQ((page + i)->owner, kmm::PageOwner::None) << "page " << i;
  EXPECT_TRUE(kmm::validate(*m).empty());
}

// dma_alloc_attrs() refuses __GFP_COMP with WARN_ON_ONCE (kernel 6.2 on): kmm stripped the flag
// and handed out a buffer.
TEST(Dma, CompoundGfpWarnsOnceAndFails) {
  auto m = Machine::boot("mem=16M nr_cpus=1");
  kmm::MachineScope scope(*m);
  kmm::Device dev(*m, "dev", 32);
  auto pgalloc = [&] {
    long n = 0;
    for (const char* z : {"pgalloc_dma", "pgalloc_dma32", "pgalloc_normal"})
      n += kmm::test::proc_value(*m, "/proc/vmstat", z);
    return n;
  };
  const long pgalloc_before = pgalloc();
  dma_addr_t h = 0;
  EXPECT_EQ(dma_alloc_coherent(&dev, PAGE_SIZE, &h, GFP_KERNEL | __GFP_COMP), nullptr);
  EXPECT_EQ(dma_alloc_coherent(&dev, 4 * PAGE_SIZE, &h, GFP_KERNEL | __GFP_COMP), nullptr);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title,
            "WARNING: CPU: 0 PID: 1 at kernel/dma/mapping.c dma_alloc_attrs");
  EXPECT_EQ(pgalloc(), pgalloc_before); // no page was handed out
  EXPECT_TRUE(kmm::validate(*m).empty());
}

} // namespace
