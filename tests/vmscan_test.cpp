// Tests for allocator/src/vmscan.cpp: the watermark walk that wakes kswapd at low and stops it at
// high, direct reclaim, the LRU second chance, and the threaded kswapd.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <thread>

#include "bug.h"
#include "kernel.h"
#include "kmm/linux.h"
#include "kmm/machine.h"
#include "kmm/pressure.h"
#include "kmm/validate.h"
#include "test_util.h"
#include "vmscan.h"

using kmm::Machine;
using kmm::test::proc_value;

namespace {

long vmstat(Machine& m, const char* key) { return proc_value(m, "/proc/vmstat", key); }

struct ZoneMarks {
  std::string name;
  long free = 0, min = 0, low = 0, high = 0, managed = 0, reserve_normal = 0;
};

// The populated zones of /proc/zoneinfo with their free pages, watermarks and the
// lowmem_reserve a Normal-zone allocation must leave (protection[ZONE_NORMAL]).
std::vector<ZoneMarks> zoneinfo(Machine& m) {
  std::vector<ZoneMarks> zones;
  std::istringstream in(m.proc_read("/proc/zoneinfo"));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream w(line);
    std::string a, b;
    w >> a;
    if (a == "Node") {
      std::string zone_word, name;
      w >> b >> zone_word >> name;
      zones.push_back(ZoneMarks{name});
      continue;
    }
    if (zones.empty()) continue;
    ZoneMarks& z = zones.back();
    if (a == "pages") {
      w >> b >> z.free;
    } else if (a == "min") {
      w >> z.min;
    } else if (a == "low") {
      w >> z.low;
    } else if (a == "high") {
      w >> z.high;
    } else if (a == "managed") {
      w >> z.managed;
    } else if (a == "protection:") {
      std::string rest;
      std::getline(w, rest); // " (a, b, c, d)"
      long v[4] = {};
      std::sscanf(rest.c_str(), " (%ld, %ld, %ld, %ld)", &v[0], &v[1], &v[2], &v[3]);
      z.reserve_normal = v[2];
    }
  }
  std::vector<ZoneMarks> populated;
  for (auto& z : zones)
    if (z.managed) populated.push_back(z);
  return populated;
}

} // namespace

TEST(Vmscan, KswapdWakesAtLowAndStopsAtHigh) {
  auto m = Machine::boot("mem=64M nr_cpus=1");
  int ino = kmm::file_create(*m, "data");
  std::vector<ZoneMarks> before;
  long cached_before = 0;
  unsigned long i = 0;
  for (; i < 100000 && vmstat(*m, "pageoutrun") == 0; i++) {
    before = zoneinfo(*m);
    cached_before = proc_value(*m, "/proc/meminfo", "Cached");
    ASSERT_EQ(vmstat(*m, "pgscan_kswapd"), 0);
    ASSERT_EQ(kmm::file_read(*m, ino, i, 1), 1);
  }
  ASSERT_EQ(vmstat(*m, "pageoutrun"), 1) << "kswapd never woke";
  // Woken only once the fast path (LOW watermark) failed in every zone...
  for (auto& z : before)
    EXPECT_LE(z.free, z.low + z.reserve_normal) << z.name << " was above low when kswapd woke";
  // ...and it stopped as soon as one zone was above its high watermark again.
  bool balanced = false;
  for (auto& z : zoneinfo(*m)) balanced |= z.free > z.high + z.reserve_normal;
  EXPECT_TRUE(balanced);
  EXPECT_GT(vmstat(*m, "pgscan_kswapd"), 0);
  EXPECT_GT(vmstat(*m, "pgsteal_kswapd"), 0);
  EXPECT_EQ(vmstat(*m, "pgsteal_kswapd"), vmstat(*m, "pgsteal_file"));
  EXPECT_EQ(vmstat(*m, "pgscan_direct"), 0);
  EXPECT_EQ(vmstat(*m, "allocstall_normal"), 0);
  // It reclaimed what balancing needed, not the whole cache.
  long cached_after = proc_value(*m, "/proc/meminfo", "Cached");
  EXPECT_EQ(cached_after, cached_before + 4 - vmstat(*m, "pgsteal_kswapd") * 4);
  EXPECT_GT(cached_after, cached_before / 2);
  EXPECT_EQ(kmm::file_cached_pages(*m, ino) * 4, cached_after);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Vmscan, DirectReclaimFreesCleanBeforeDirty) {
  auto m = Machine::boot("mem=64M nr_cpus=1");
  int dirty = kmm::file_create(*m, "dirty");
  int clean = kmm::file_create(*m, "clean");
  ASSERT_EQ(kmm::file_write(*m, dirty, 0, 2000), 2000); // older: at the tail of the inactive list
  ASSERT_EQ(kmm::file_read(*m, clean, 0, 2000), 2000);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "Dirty"), 2000 * 4);
  unsigned long got = kmm::reclaim(*m, 500);
  EXPECT_GE(got, 500u);
  EXPECT_LT(got, 2000u);
  EXPECT_EQ(kmm::file_cached_pages(*m, dirty), 2000);
  EXPECT_EQ(kmm::file_cached_pages(*m, clean), 2000 - static_cast<long>(got));
  EXPECT_EQ(vmstat(*m, "pgsteal_direct"), static_cast<long>(got));
  EXPECT_EQ(vmstat(*m, "pgsteal_kswapd"), 0);
  // The dirty pages reclaim met were activated and handed to the flusher, never freed unwritten.
  EXPECT_EQ(vmstat(*m, "pgactivate"), 2000);
  // Aging may have moved some back to the inactive list, behind the clean ones.
  EXPECT_GT(proc_value(*m, "/proc/meminfo", "Active(file)"), 0);
  EXPECT_EQ(vmstat(*m, "pgpgout"), (2000 - proc_value(*m, "/proc/meminfo", "Dirty") / 4) * 4);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Vmscan, SecondAccessActivatesAndProtects) {
  auto m = Machine::boot("mem=64M nr_cpus=1");
  int hot = kmm::file_create(*m, "hot");
  int cold = kmm::file_create(*m, "cold");
  ASSERT_EQ(kmm::file_read(*m, hot, 0, 300), 300);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "Inactive(file)"), 300 * 4); // referenced once
  ASSERT_EQ(kmm::file_read(*m, hot, 0, 300), 300);                       // second access
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "Active(file)"), 300 * 4);
  EXPECT_EQ(vmstat(*m, "pgactivate"), 300);
  ASSERT_EQ(kmm::file_read(*m, cold, 0, 1000), 1000);
  EXPECT_GE(kmm::reclaim(*m, 600), 600u);
  EXPECT_EQ(kmm::file_cached_pages(*m, hot), 300);
  EXPECT_LE(kmm::file_cached_pages(*m, cold), 400);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Vmscan, DirectReclaimUnderAllocationPressure) {
  // Fill the machine with clean cache, then allocate anonymous memory: the allocations reclaim
  // the cache (kswapd and direct) instead of OOM-killing.
  auto m = Machine::boot("mem=64M nr_cpus=1");
  int ino = kmm::file_create(*m, "cache");
  kmm::file_read(*m, ino, 0, 12000);
  int pid = kmm::task_spawn(*m, "eater", 0);
  EXPECT_EQ(kmm::task_touch(*m, pid, 12000), 12000);
  EXPECT_EQ(vmstat(*m, "oom_kill"), 0);
  EXPECT_GT(vmstat(*m, "pgsteal_kswapd") + vmstat(*m, "pgsteal_direct"), 8000);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Vmscan, AtomicAllocationsNeverReclaim) {
  auto m = Machine::boot("mem=64M nr_cpus=1");
  kmm::MachineScope scope(*m);
  int ino = kmm::file_create(*m, "cache");
  kmm::file_read(*m, ino, 0, 14000);
  const long direct = vmstat(*m, "pgscan_direct");
  std::vector<struct page*> pages;
  for (int i = 0; i < 2000; i++) {
    struct page* p = alloc_pages(GFP_ATOMIC | __GFP_NOWARN, 0);
    if (!p) break;
    pages.push_back(p);
  }
  EXPECT_EQ(vmstat(*m, "pgscan_direct"), direct);
  EXPECT_EQ(vmstat(*m, "allocstall_normal"), 0);
  for (auto* p : pages) __free_pages(p, 0);
}

TEST(Vmscan, ThreadedKswapd) {
  auto m = Machine::boot("mem=64M nr_cpus=2 kmm.kswapd=thread");
  int files[2] = {kmm::file_create(*m, "a"), kmm::file_create(*m, "b")};
  std::vector<std::thread> cpus;
  for (unsigned c = 0; c < 2; c++)
    cpus.emplace_back([&, c] {
      kmm::CpuScope scope(*m, c);
      for (unsigned long i = 0; i < 12000; i += 4) kmm::file_read(*m, files[c], i, 4);
      int pid = kmm::task_spawn(*m, c ? "t1" : "t0", 0);
      kmm::task_touch(*m, pid, 1000);
      kmm::task_exit(*m, pid);
    });
  for (auto& t : cpus) t.join();
  kmm::kswapd_wait_idle(*m);
  EXPECT_GE(vmstat(*m, "pageoutrun"), 1); // kswapd ran on its own thread
  // Who reclaimed depends on timing: kswapd, or the allocating CPUs directly when they got
  // below min first. Together they freed what the 24000 pages needed on a 16383-page machine.
  EXPECT_GT(vmstat(*m, "pgsteal_kswapd") + vmstat(*m, "pgsteal_direct"), 8000);
  EXPECT_EQ(vmstat(*m, "oom_kill"), 0);
  EXPECT_EQ(kmm::file_cached_pages(*m, files[0]) + kmm::file_cached_pages(*m, files[1]),
            proc_value(*m, "/proc/meminfo", "Cached") / 4);
  EXPECT_EQ(kmm::kswapd_run(*m), 0u); // threaded: the step only waits
  auto errors = kmm::validate(*m);
  EXPECT_TRUE(errors.empty()) << errors.front();
}

TEST(Vmscan, KswapdModeIsABootParameter) {
  EXPECT_THROW(Machine::boot("kmm.kswapd=sometimes"), kmm::BootError);
  EXPECT_THROW(Machine::boot("nr_cpus=64 kmm.kswapd=thread"), kmm::BootError);
  EXPECT_NO_THROW(Machine::boot("nr_cpus=63 kmm.kswapd=thread"));
}

TEST(Vmscan, LruValidateNamesEachPlantedCorruption) {
  auto m = Machine::boot("mem=16M");
  kmm::Kernel& k = m->kernel();
  int ino = kmm::file_create(*m, "f");
  ASSERT_EQ(kmm::file_read(*m, ino, 0, 3), 3); // three pages on the inactive file list
  ASSERT_TRUE(kmm::validate(*m).empty());
  kmm::pfn_list& l = k.reclaim->lru.lists[kmm::LRU_INACTIVE_FILE];
  auto has = [](const std::vector<std::string>& v, const std::string& e) {
    return std::find(v.begin(), v.end(), e) != v.end();
  };

  k.reclaim->lru.nr[kmm::LRU_INACTIVE_FILE]++;
  EXPECT_TRUE(has(kmm::validate(*m), "lru: inactive_file holds 3 pages, nr says 4"));
  k.reclaim->lru.nr[kmm::LRU_INACTIVE_FILE]--;

  k.mod_node_page_state(kmm::NR_INACTIVE_FILE, 1);
  EXPECT_TRUE(has(kmm::validate(*m),
                  "lru: inactive_file holds 3 pages, node counter nr_inactive_file says 4"));
  k.mod_node_page_state(kmm::NR_INACTIVE_FILE, -1);

  uint32_t tail = l.tail;
  l.tail = l.head;
  EXPECT_TRUE(has(kmm::validate(*m), "lru: inactive_file: tail is not the last page"));
  l.tail = tail;

  uint32_t second = k.mem.mem_map[l.head].lru_next;
  k.mem.mem_map[second].lru_prev = kmm::PFN_NIL;
  EXPECT_TRUE(has(kmm::validate(*m),
                  kmm::strprintf("lru: inactive_file: pfn 0x%x has a bad back link", second)));
  k.mem.mem_map[second].lru_prev = l.head;

  k.mem.mem_map[tail].lru_next = l.head;
  EXPECT_TRUE(has(kmm::validate(*m), "lru: inactive_file list is cyclic"));
  k.mem.mem_map[tail].lru_next = kmm::PFN_NIL;
  EXPECT_TRUE(kmm::validate(*m).empty());
}
