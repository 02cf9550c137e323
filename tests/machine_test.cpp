// Tests for allocator/src/machine.cpp and bootparams.cpp: booting, parameters, scopes, dmesg.
#include <gtest/gtest.h>

#include "kernel.h"
#include "kmm/linux.h"
#include "kmm/machine.h"
#include "kmm/validate.h"

using kmm::Machine;

TEST(Boot, DefaultMachineBootsClean) {
  auto m = Machine::boot();
  EXPECT_EQ(m->mem_bytes(), 32ull << 20);
  EXPECT_EQ(m->nr_cpus(), 2u);
  EXPECT_TRUE(kmm::validate(*m).empty());
  EXPECT_NE(m->dmesg().find("Zone ranges:"), std::string::npos);
  EXPECT_TRUE(m->reports().empty());
}

TEST(Boot, UnknownParameterIsNamed) {
  try {
    Machine::boot("mem=64M frobnicate=3");
    FAIL() << "expected BootError";
  } catch (const kmm::BootError& e) {
    EXPECT_STREQ(e.what(), "unknown boot parameter 'frobnicate'");
  }
}

TEST(Boot, MalformedSizeIsNamed) {
  try {
    Machine::boot("mem=64Q");
    FAIL() << "expected BootError";
  } catch (const kmm::BootError& e) {
    EXPECT_STREQ(e.what(),
                 "boot parameter 'mem=64Q': expected a size such as 64M (suffixes K, M, G, T)");
  }
}

TEST(Boot, OutOfRangeIsNamed) {
  EXPECT_THROW(Machine::boot("nr_cpus=0"), kmm::BootError);
  EXPECT_THROW(Machine::boot("nr_cpus=65"), kmm::BootError);
  EXPECT_THROW(Machine::boot("mem=2M"), kmm::BootError);
  EXPECT_THROW(Machine::boot("watermark_scale_factor=3001"), kmm::BootError);
  EXPECT_THROW(Machine::boot("kasan.fault=maybe"), kmm::BootError);
  EXPECT_THROW(Machine::boot("page_poison=perhaps"), kmm::BootError);
  EXPECT_THROW(Machine::boot("mem"), kmm::BootError);
}

TEST(Boot, SizeSuffixesAsMemparse) {
  EXPECT_EQ(Machine::boot("mem=4096K")->mem_bytes(), 4ull << 20);
  EXPECT_EQ(Machine::boot("mem=1G")->mem_bytes(), 1ull << 30);
}

TEST(Boot, SixteenGigabytesBootsLazily) {
  auto m = Machine::boot("mem=16G nr_cpus=4");
  EXPECT_EQ(m->mem_bytes(), 16ull << 30);
  kmm::MachineScope scope(*m);
  struct page* p = alloc_pages(GFP_KERNEL, 10);
  ASSERT_NE(p, nullptr);
  // Normal zone exists above 4 GiB on a machine this size; GFP_KERNEL prefers it.
  EXPECT_GE(page_to_phys(p), 4ull << 30);
  __free_pages(p, 10);
}

TEST(Scope, CurrentMachineFollowsScopes) {
  auto a = Machine::boot();
  auto b = Machine::boot();
  EXPECT_EQ(kmm::current_machine(), nullptr);
  {
    kmm::MachineScope sa(*a);
    EXPECT_EQ(kmm::current_machine(), a.get());
    {
      kmm::CpuScope sb(*b, 1);
      EXPECT_EQ(kmm::current_machine(), b.get());
      EXPECT_EQ(smp_processor_id(), 1);
    }
    EXPECT_EQ(kmm::current_machine(), a.get());
    EXPECT_EQ(smp_processor_id(), 0);
  }
  EXPECT_EQ(kmm::current_machine(), nullptr);
  EXPECT_THROW(kmm::CpuScope(*a, 2), std::out_of_range);
}

TEST(Scope, ApiWithoutMachineThrows) { EXPECT_THROW(alloc_pages(GFP_KERNEL, 0), std::logic_error); }

TEST(Dmesg, TimestampsAreVirtualAndDeterministic) {
  auto a = Machine::boot("mem=16M");
  auto b = Machine::boot("mem=16M");
  EXPECT_EQ(a->dmesg(), b->dmesg());
  EXPECT_EQ(a->dmesg().rfind("[    0.000000] Linux version", 0), 0u);
}

TEST(Proc, UnknownPaths) {
  auto m = Machine::boot();
  EXPECT_THROW(m->proc_read("/proc/nonexistent"), std::invalid_argument);
  EXPECT_EQ(m->proc_write("/proc/nonexistent", "1"), -ENOENT);
  EXPECT_EQ(m->proc_write("/proc/buddyinfo", "1"), -EACCES);
}
