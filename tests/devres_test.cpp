// Tests for allocator/src/devres.cpp: devm_kmalloc/devm_kzalloc/devm_kfree on a kmm::Device,
// released when the device is destroyed.
#include <gtest/gtest.h>

#include <cstring>

#include "kernel.h"
#include "kmm/linux.h"
#include "kmm/validate.h"
#include "slub.h"
#include "test_util.h"

using kmm::Machine;

TEST(Devres, ManagedAllocationsAreFreedWithTheDevice) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  long before = kmm::test::proc_value(*m, "/proc/meminfo", "SUnreclaim"), during = 0;
  {
    kmm::Device dev(*m, "probe0", 32);
    EXPECT_STREQ(dev.name(), "probe0");
    EXPECT_EQ(dev.dma_mask, 0xffffffffull);
    EXPECT_EQ(dev.coherent_dma_mask, 0xffffffffull);
    auto* a = static_cast<uint8_t*>(devm_kzalloc(&dev, 100, GFP_KERNEL));
    for (int i = 0; i < 100; i++) ASSERT_EQ(a[i], 0);
    void* big = devm_kmalloc(&dev, 40000, GFP_KERNEL); // large kmalloc, also managed
    ASSERT_NE(big, nullptr);
    char* name = devm_kstrdup(&dev, "eth0", GFP_KERNEL);
    EXPECT_STREQ(name, "eth0");
    EXPECT_EQ(dev.devres_count(), 3u);
    during = kmm::test::proc_value(*m, "/proc/meminfo", "SUnreclaim");
    EXPECT_GE(during - before, 64); // the 40000-byte kmalloc is an order-4 block
  }                                 // remove(): devres_release_all
  // The large block went back; the small objects went back to their (kept) slabs.
  EXPECT_EQ(kmm::test::proc_value(*m, "/proc/meminfo", "SUnreclaim"), during - 64);
  kmem_cache_shrink(m->kernel().kmalloc_caches[0][7]); // kmalloc-128
  kmem_cache_shrink(m->kernel().kmalloc_caches[0][3]); // kmalloc-8
  EXPECT_EQ(kmm::test::proc_value(*m, "/proc/meminfo", "SUnreclaim"), before);
  EXPECT_TRUE(m->reports().empty());
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Devres, DevmKfreeFreesNowAndWarnsOnUnmanaged) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  kmm::Device dev(*m, "probe1", 24);
  EXPECT_EQ(dev.dma_mask, 0xffffffull);
  void* a = devm_kmalloc(&dev, 64, GFP_KERNEL);
  void* b = devm_kmalloc(&dev, 64, GFP_KERNEL);
  devm_kfree(&dev, a);
  EXPECT_EQ(dev.devres_count(), 1u);
  EXPECT_EQ(kmalloc(64, GFP_KERNEL), a); // really freed: the next kmalloc-64 reuses it
  devm_kfree(&dev, a);                   // not managed any more
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_NE(m->reports()[0].text.find("devm_kfree() of memory that is not managed by this device"),
            std::string::npos);
  kfree(a);
  (void)b;
}

TEST(Devres, ReleaseRunsWithTheMachineCurrentEvenWithoutAScope) {
  auto m = Machine::boot("");
  auto dev = std::make_unique<kmm::Device>(*m, "late", 32);
  {
    kmm::MachineScope scope(*m);
    devm_kmalloc(dev.get(), 128, GFP_KERNEL);
  }
  dev.reset(); // no current machine on this thread: the device makes its own current
  EXPECT_EQ(kmm::current_machine(), nullptr);
  EXPECT_TRUE(m->reports().empty());
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Devres, DevmKcallocZeroesAndChecksOverflow) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  kmm::Device dev(*m, "probe2", 32);
  auto* a = static_cast<unsigned char*>(kmalloc(96, GFP_KERNEL));
  std::memset(a, 0xee, 96);
  kfree(a);
  auto* z = static_cast<unsigned char*>(devm_kcalloc(&dev, 12, 8, GFP_KERNEL));
  ASSERT_NE(z, nullptr);
  EXPECT_EQ(ksize(z), 96u);
  for (int i = 0; i < 96; i++) EXPECT_EQ(z[i], 0) << i;
  EXPECT_EQ(dev.devres_count(), 1u);
  EXPECT_EQ(devm_kcalloc(&dev, SIZE_MAX / 2, 4, GFP_KERNEL), nullptr); // n * size overflows
  EXPECT_EQ(dev.devres_count(), 1u);
  EXPECT_TRUE(m->reports().empty());
}

TEST(Devres, DevmKmallocWithoutADeviceIsAWarning) {
  auto m = Machine::boot("");
  kmm::MachineScope scope(*m);
  EXPECT_EQ(devm_kmalloc(nullptr, 64, GFP_KERNEL), nullptr);
  ASSERT_EQ(m->reports().size(), 1u);
  EXPECT_EQ(m->reports()[0].title, "WARNING: CPU: 0 PID: 1 at drivers/base/devres.c devm_kmalloc");
  EXPECT_NE(m->reports()[0].text.find("devm_kmalloc() without a device\n"), std::string::npos);
}
