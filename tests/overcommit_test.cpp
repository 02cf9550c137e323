// Tests for allocator/src/overcommit.cpp: Committed_AS, CommitLimit and the three policies.
#include <gtest/gtest.h>

#include "kmm/machine.h"
#include "kmm/pressure.h"
#include "kmm/validate.h"
#include "test_util.h"

using kmm::Machine;
using kmm::test::proc_value;

TEST(Overcommit, NeverRefusesPastCommitLimit) {
  auto m = Machine::boot("mem=64M vm.overcommit_memory=2");
  const long totalram = proc_value(*m, "/proc/meminfo", "MemTotal") / 4;
  const long limit = totalram * 50 / 100;
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "CommitLimit"), limit * 4);
  EXPECT_EQ(m->proc_read("/proc/sys/vm/overcommit_memory"), "2\n");
  int pid = kmm::task_spawn(*m, "hog", 0);
  EXPECT_EQ(kmm::task_mmap(*m, pid, static_cast<unsigned long>(limit)), 0); // exactly the limit
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "Committed_AS"), limit * 4);
  EXPECT_EQ(kmm::task_mmap(*m, pid, 1), -ENOMEM);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "Committed_AS"), limit * 4); // nothing charged
  EXPECT_NE(m->dmesg().find("__vm_enough_memory: pid: 100, comm: hog, bytes: 4096 not enough "
                            "memory for the allocation\n"),
            std::string::npos);
  int other = kmm::task_spawn(*m, "other", 0);
  EXPECT_EQ(kmm::task_touch(*m, other, 1), -ENOMEM);
  // A larger ratio raises the limit.
  EXPECT_EQ(m->proc_write("/proc/sys/vm/overcommit_ratio", "60"), 0);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "CommitLimit"), totalram * 60 / 100 * 4);
  EXPECT_EQ(kmm::task_touch(*m, other, 10), 10);
  EXPECT_EQ(kmm::task_exit(*m, pid), 0);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "Committed_AS"), 10 * 4);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Overcommit, GuessAndAlways) {
  auto m = Machine::boot("mem=64M");
  const long totalram = proc_value(*m, "/proc/meminfo", "MemTotal") / 4;
  int pid = kmm::task_spawn(*m, "p", 0);
  EXPECT_EQ(kmm::task_mmap(*m, pid, static_cast<unsigned long>(totalram) + 1), -ENOMEM);
  EXPECT_EQ(kmm::task_mmap(*m, pid, static_cast<unsigned long>(totalram)), 0);
  EXPECT_EQ(kmm::task_mmap(*m, pid, static_cast<unsigned long>(totalram)), 0); // per request
  EXPECT_EQ(m->proc_write("/proc/sys/vm/overcommit_memory", "1"), 0);
  EXPECT_EQ(kmm::task_mmap(*m, pid, 1ul << 30), 0);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "Committed_AS"), (2 * totalram + (1l << 30)) * 4);
  EXPECT_EQ(m->proc_write("/proc/sys/vm/overcommit_memory", "3"), -EINVAL);
  EXPECT_THROW(Machine::boot("vm.overcommit_memory=3"), kmm::BootError);
  EXPECT_EQ(kmm::task_exit(*m, pid), 0);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "Committed_AS"), 0);
}
