// Tests for allocator/src/oom_kill.cpp: victim selection by the kernel's badness, the report
// lines, the reap, /proc/<pid>/oom_score, sysrq 'f' and the no-victim panic.
#include <gtest/gtest.h>

#include <climits>

#include "kernel.h"
#include "kmm/machine.h"
#include "kmm/pressure.h"
#include "kmm/validate.h"
#include "oom_kill.h"
#include "task.h"
#include "test_util.h"

using kmm::Machine;
using kmm::test::proc_value;

namespace {

long vmstat(Machine& m, const char* key) { return proc_value(m, "/proc/vmstat", key); }
long totalpages(Machine& m) { return proc_value(m, "/proc/meminfo", "MemTotal") / 4; }

// Touches one page at a time in `pid` until the OOM killer has run once; returns the last
// task_touch result (1: the allocation that invoked the killer succeeded after the kill).
long touch_until_oom(Machine& m, int pid) {
  const long kills = vmstat(m, "oom_kill");
  long r = 0;
  for (int i = 0; i < 100000 && vmstat(m, "oom_kill") == kills; i++) r = kmm::task_touch(m, pid, 1);
  return r;
}

const kmm::Report* oom_report(Machine& m) {
  for (auto& r : m.reports())
    if (r.kind == kmm::ReportKind::Oom) return &r;
  return nullptr;
}

} // namespace

TEST(OomKill, PicksTheLargestTask) {
  auto m = Machine::boot("mem=64M nr_cpus=1");
  int small = kmm::task_spawn(*m, "small", 0);
  int big = kmm::task_spawn(*m, "big", 0);
  int medium = kmm::task_spawn(*m, "medium", 0);
  int trigger = kmm::task_spawn(*m, "trigger", -1000);
  ASSERT_EQ(kmm::task_touch(*m, small, 2000), 2000);
  ASSERT_EQ(kmm::task_touch(*m, big, 6000), 6000);
  ASSERT_EQ(kmm::task_touch(*m, medium, 4000), 4000);
  EXPECT_EQ(touch_until_oom(*m, trigger), 1); // the allocation succeeded after the kill
  EXPECT_EQ(vmstat(*m, "oom_kill"), 1);
  EXPECT_FALSE(kmm::task_alive(*m, big));
  EXPECT_TRUE(kmm::task_alive(*m, small));
  EXPECT_TRUE(kmm::task_alive(*m, medium));
  EXPECT_TRUE(kmm::task_alive(*m, trigger));
  // The victim's 6000 pages are free again: only the survivors' pages are anonymous memory.
  const auto tasks = kmm::task_list(*m);
  ASSERT_EQ(tasks.size(), 3u);
  EXPECT_EQ(tasks[2].pid, trigger);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "AnonPages"),
            static_cast<long>(2000 + 4000 + tasks[2].rss_anon) * 4);
  EXPECT_GE(proc_value(*m, "/proc/meminfo", "MemFree"), 6000 * 4 - 2048);

  const kmm::Report* r = oom_report(*m);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->title, "Out of memory: Killed process " + std::to_string(big) + " (big)");
  EXPECT_EQ(r->text.rfind("trigger invoked oom-killer: gfp_mask=0x", 0), 0u) << r->text;
  EXPECT_NE(r->text.find(", order=0, oom_score_adj=-1000\n"), std::string::npos);
  EXPECT_NE(r->text.find("Mem-Info:\n"), std::string::npos);
  EXPECT_NE(r->text.find("Tasks state (memory values in pages):\n[  pid  ]   uid  tgid total_vm"
                         "      rss rss_anon rss_file rss_shmem pgtables_bytes swapents "
                         "oom_score_adj name\n"),
            std::string::npos);
  // big: 6000 pages, page tables PUD + PMD + 12 PTE pages = 14 pages = 57344 bytes.
  EXPECT_NE(r->text.find("[    101]     0   101     6000     6000     6000        0         0"
                         "    57344        0             0 big\n"),
            std::string::npos)
      << r->text;
  EXPECT_NE(r->text.find("oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,"
                         "mems_allowed=0,global_oom,task_memcg=/,task=big,pid=101,uid=0\n"),
            std::string::npos);
  EXPECT_NE(r->text.find("Out of memory: Killed process 101 (big) total-vm:24000kB, "
                         "anon-rss:24000kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:56kB "
                         "oom_score_adj:0\n"),
            std::string::npos);
  EXPECT_NE(m->dmesg().find("oom_reaper: reaped process 101 (big), now anon-rss:0kB, "
                            "file-rss:0kB, shmem-rss:0kB\n"),
            std::string::npos);
  EXPECT_EQ(kmm::test::count_reports(*m, "Kernel panic"), 0u);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(OomKill, NeverPicksOomScoreAdjMin) {
  auto m = Machine::boot("mem=64M nr_cpus=1");
  int immortal = kmm::task_spawn(*m, "immortal", -1000);
  int a = kmm::task_spawn(*m, "a", 0);
  int b = kmm::task_spawn(*m, "b", 0);
  int trigger = kmm::task_spawn(*m, "trigger", 0);
  ASSERT_EQ(kmm::task_touch(*m, immortal, 8000), 8000); // the largest by far
  ASSERT_EQ(kmm::task_touch(*m, a, 2000), 2000);
  ASSERT_EQ(kmm::task_touch(*m, b, 3000), 3000);
  EXPECT_EQ(touch_until_oom(*m, trigger), 1);
  EXPECT_TRUE(kmm::task_alive(*m, immortal));
  EXPECT_FALSE(kmm::task_alive(*m, b));
  EXPECT_TRUE(kmm::task_alive(*m, a));
  EXPECT_EQ(oom_report(*m)->title, "Out of memory: Killed process " + std::to_string(b) + " (b)");
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(OomKill, PositiveAdjOutweighsSize) {
  auto m = Machine::boot("mem=64M nr_cpus=1");
  int favoured = kmm::task_spawn(*m, "favoured", 500);
  int large = kmm::task_spawn(*m, "large", 0);
  int trigger = kmm::task_spawn(*m, "trigger", -1000);
  ASSERT_EQ(kmm::task_touch(*m, favoured, 2000), 2000);
  ASSERT_EQ(kmm::task_touch(*m, large, 6000), 6000);
  // badness: favoured 2000 + 6 + 500 * (totalpages / 1000), large 6000 + 14.
  EXPECT_EQ(touch_until_oom(*m, trigger), 1);
  EXPECT_FALSE(kmm::task_alive(*m, favoured));
  EXPECT_TRUE(kmm::task_alive(*m, large));
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(OomKill, OomScoreFollowsTheKernelFormula) {
  auto m = Machine::boot("mem=64M nr_cpus=1");
  const long total = totalpages(*m);
  int pid = kmm::task_spawn(*m, "worker", 0);
  ASSERT_EQ(kmm::task_touch(*m, pid, 1000), 1000);
  const std::string dir = "/proc/" + std::to_string(pid) + "/";
  // points = 1000 rss + 4 page-table pages (PUD, PMD, 2 PTE pages).
  auto expected = [&](long adj) {
    long badness = 1004 + adj * (total / 1000);
    return (1000 + badness * 1000 / total) * 2 / 3;
  };
  EXPECT_EQ(total, 16383); // mem=64M: every page but pfn 0
  EXPECT_EQ(m->proc_read(dir + "oom_score"), std::to_string(expected(0)) + "\n");
  EXPECT_EQ(m->proc_read(dir + "oom_score"), "707\n"); // (1000 + 1004000 / 16383) * 2 / 3
  EXPECT_EQ(m->proc_read(dir + "oom_score_adj"), "0\n");
  EXPECT_EQ(m->proc_write(dir + "oom_score_adj", "500\n"), 0);
  EXPECT_EQ(m->proc_read(dir + "oom_score"), std::to_string(expected(500)) + "\n");
  EXPECT_EQ(m->proc_write(dir + "oom_score_adj", "-999"), 0);
  EXPECT_EQ(m->proc_read(dir + "oom_score"), std::to_string(expected(-999)) + "\n");
  EXPECT_EQ(m->proc_write(dir + "oom_score_adj", "-1000"), 0);
  EXPECT_EQ(m->proc_read(dir + "oom_score"), "0\n");
  EXPECT_EQ(m->proc_write(dir + "oom_score_adj", "1001"), -EINVAL);
  EXPECT_EQ(m->proc_write(dir + "oom_score_adj", "-1001"), -EINVAL);
  EXPECT_EQ(m->proc_write(dir + "oom_score_adj", "ten"), -EINVAL);
  EXPECT_EQ(m->proc_read(dir + "oom_score_adj"), "-1000\n");
  EXPECT_EQ(m->proc_write("/proc/99999/oom_score_adj", "0"), -ENOENT);
  EXPECT_THROW(m->proc_read("/proc/99999/oom_score"), std::invalid_argument);
}

TEST(OomKill, BadnessArithmetic) {
  kmm::Task t;
  t.anon.resize(3000);
  t.nr_ptes = 6;
  t.nr_pmds = 1;
  t.nr_puds = 1;
  EXPECT_EQ(kmm::oom_badness(t, 262144), 3008);
  t.oom_score_adj = -500; // -500 * (262144 / 1000) = -500 * 262
  EXPECT_EQ(kmm::oom_badness(t, 262144), 3008 - 131000);
  EXPECT_EQ(kmm::oom_score(t, 262144), (1000 + (3008 - 131000) * 1000 / 262144) * 2 / 3);
  t.oom_score_adj = -1000;
  EXPECT_EQ(kmm::oom_badness(t, 262144), LONG_MIN);
  EXPECT_EQ(kmm::oom_score(t, 262144), 0);
}

TEST(OomKill, SysrqKillsTheLargestWithoutPanic) {
  auto m = Machine::boot("mem=64M nr_cpus=1");
  EXPECT_EQ(m->proc_write("/proc/sysrq-trigger", "f"), 0);
  EXPECT_NE(m->dmesg().find("sysrq: Manual OOM execution\n"), std::string::npos);
  EXPECT_NE(m->dmesg().find("kmm invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=-1, "
                            "oom_score_adj=0\n"),
            std::string::npos);
  EXPECT_NE(m->dmesg().find("Out of memory and no killable processes...\n"), std::string::npos);
  EXPECT_NE(m->dmesg().find("OOM request ignored. No task eligible\n"), std::string::npos);
  EXPECT_EQ(kmm::test::count_reports(*m, "Kernel panic"), 0u);

  int a = kmm::task_spawn(*m, "a", 0);
  int b = kmm::task_spawn(*m, "b", 0);
  kmm::task_touch(*m, a, 100);
  kmm::task_touch(*m, b, 50);
  EXPECT_EQ(m->proc_write("/proc/sysrq-trigger", "f\n"), 0);
  EXPECT_FALSE(kmm::task_alive(*m, a));
  EXPECT_TRUE(kmm::task_alive(*m, b));
  EXPECT_EQ(vmstat(*m, "oom_kill"), 1);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(OomKill, NoVictimPanics) {
  auto m = Machine::boot("mem=32M nr_cpus=1 vm.overcommit_memory=1");
  int pid = kmm::task_spawn(*m, "unkillable", -1000);
  long touched = kmm::task_touch(*m, pid, 100000);
  EXPECT_GT(touched, 0);
  EXPECT_LT(touched, 100000);
  EXPECT_EQ(kmm::test::count_reports(*m, "Out of memory and no killable processes..."), 1u);
  ASSERT_EQ(
      kmm::test::count_reports(*m, "Kernel panic - not syncing: System is deadlocked on memory"),
      1u);
  EXPECT_EQ(m->reports().back().kind, kmm::ReportKind::Panic);
  EXPECT_TRUE(kmm::task_alive(*m, pid));
  EXPECT_EQ(vmstat(*m, "oom_kill"), 0);
}
