// Tests for allocator/src/task.cpp: spawn, touch, exit, page tables and their accounting.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "bug.h"
#include "kernel.h"
#include "kmm/machine.h"
#include "kmm/pressure.h"
#include "kmm/validate.h"
#include "task.h"
#include "test_util.h"

using kmm::test::has;

using kmm::Machine;
using kmm::test::proc_value;

TEST(Task, SpawnTouchExitAccountsEveryPage) {
  auto m = Machine::boot("mem=64M");
  const long free0 = proc_value(*m, "/proc/meminfo", "MemFree");
  int pid = kmm::task_spawn(*m, "worker", 0);
  EXPECT_EQ(pid, 100);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "PageTables"), 4); // the pgd
  EXPECT_EQ(kmm::task_touch(*m, pid, 1025), 1025);
  // 1025 pages: PUD + PMD + 3 PTE pages, plus the pgd.
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "PageTables"), 6 * 4);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "AnonPages"), 1025 * 4);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "Inactive(anon)"), 1025 * 4);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "Committed_AS"), 1025 * 4);
  EXPECT_EQ(proc_value(*m, "/proc/vmstat", "pgfault"), 1025);
  auto tasks = kmm::task_list(*m);
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].comm, "worker");
  EXPECT_EQ(tasks[0].rss_anon, 1025u);
  EXPECT_EQ(tasks[0].total_vm, 1025u);
  EXPECT_EQ(tasks[0].pgtables_bytes, 5u * 4096);
  EXPECT_TRUE(kmm::validate(*m).empty());

  EXPECT_EQ(kmm::task_exit(*m, pid), 0);
  EXPECT_FALSE(kmm::task_alive(*m, pid));
  EXPECT_EQ(kmm::task_exit(*m, pid), -ESRCH);
  EXPECT_EQ(kmm::task_touch(*m, pid, 1), -ESRCH);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "AnonPages"), 0);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "PageTables"), 0);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "Committed_AS"), 0);
  // Everything came back (some of it may sit on the per-CPU lists).
  EXPECT_GE(proc_value(*m, "/proc/meminfo", "MemFree"), free0 - 2048);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Task, BadOomScoreAdjIsRefused) {
  auto m = Machine::boot("mem=32M");
  EXPECT_EQ(kmm::task_spawn(*m, "x", 1001), -EINVAL);
  EXPECT_EQ(kmm::task_spawn(*m, "x", -1001), -EINVAL);
  EXPECT_EQ(kmm::task_spawn(*m, "a-very-long-command-name", 1000), 100);
  EXPECT_EQ(kmm::task_list(*m)[0].comm, "a-very-long-com"); // TASK_COMM_LEN - 1
}

TEST(Task, PageTablesForLargeAddressSpaces) {
  auto m = Machine::boot("mem=2G");
  int pid = kmm::task_spawn(*m, "big", 0);
  // 262145 pages: index 262144 needs a second PMD page. 513 PTE pages, 2 PMDs, 1 PUD, pgd.
  ASSERT_EQ(kmm::task_touch(*m, pid, 262145), 262145);
  EXPECT_EQ(kmm::task_list(*m)[0].pgtables_bytes, (513u + 2 + 1) * 4096);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "PageTables"), (513 + 2 + 1 + 1) * 4);
  EXPECT_EQ(kmm::task_exit(*m, pid), 0);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Task, ValidateNamesEachPlantedCorruption) {
  auto m = Machine::boot("mem=16M");
  kmm::Kernel& k = m->kernel();
  int pid = kmm::task_spawn(*m, "t", 0);
  ASSERT_EQ(kmm::task_touch(*m, pid, 3), 3); // 3 pages, pgd + PUD + PMD + PTE
  ASSERT_TRUE(kmm::validate(*m).empty());
  kmm::Task& t = *k.tasks->tasks.at(pid);
  ASSERT_EQ(t.pgtables.size(), 4u);

  uint32_t pte = t.pgtables.back();
  k.mem.mem_map[pte].owner_data = 12345; // owned by another pid
  EXPECT_TRUE(
      has(kmm::validate(*m),
          kmm::strprintf("task: pid %d page table pfn 0x%x is not its page table", pid, pte)));
  k.mem.mem_map[pte].owner_data = static_cast<uint32_t>(pid);

  t.nr_ptes++;
  EXPECT_TRUE(has(kmm::validate(*m),
                  kmm::strprintf("task: pid %d has 4 page-table pages, counts say 5", pid)));
  t.nr_ptes--;

  unsigned long total_vm = t.total_vm;
  t.total_vm = 2;
  EXPECT_TRUE(
      has(kmm::validate(*m), kmm::strprintf("task: pid %d has 3 pages but reserved only 2", pid)));
  t.total_vm = total_vm;

  k.mod_node_page_state(kmm::NR_ANON_MAPPED, 1);
  EXPECT_TRUE(has(kmm::validate(*m), "task: tasks hold 3 anonymous pages, nr_anon_pages says 4"));
  k.mod_node_page_state(kmm::NR_ANON_MAPPED, -1);

  k.mod_node_page_state(kmm::NR_PAGETABLE, 1);
  EXPECT_TRUE(
      has(kmm::validate(*m), "task: tasks hold 4 page-table pages, nr_page_table_pages says 5"));
  k.mod_node_page_state(kmm::NR_PAGETABLE, -1);

  EXPECT_TRUE(kmm::validate(*m).empty());
  EXPECT_EQ(kmm::task_exit(*m, pid), 0);
}
