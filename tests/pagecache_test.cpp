// Tests for allocator/src/pagecache.cpp: clean and dirty pages, writeback, meminfo lines.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "bug.h"
#include "kernel.h"
#include "kmm/machine.h"
#include "kmm/pressure.h"
#include "kmm/validate.h"
#include "pagecache.h"
#include "test_util.h"

using kmm::test::has;

using kmm::Machine;
using kmm::test::proc_value;

TEST(PageCache, ReadWriteWritebackDelete) {
  auto m = Machine::boot("mem=64M");
  int a = kmm::file_create(*m, "a");
  int b = kmm::file_create(*m, "b");
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 2);
  EXPECT_EQ(kmm::file_read(*m, a, 0, 100), 100);
  EXPECT_EQ(kmm::file_write(*m, b, 10, 50), 50);
  EXPECT_EQ(kmm::file_write(*m, a, 90, 20), 20); // 10 cached pages dirtied, 10 new
  EXPECT_EQ(kmm::file_cached_pages(*m, a), 110);
  EXPECT_EQ(kmm::file_cached_pages(*m, b), 50);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "Cached"), 160 * 4);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "Buffers"), 0);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "Dirty"), 70 * 4);
  EXPECT_EQ(proc_value(*m, "/proc/vmstat", "nr_dirty"), 70);
  EXPECT_EQ(proc_value(*m, "/proc/vmstat", "nr_zone_write_pending"), 70);
  // Pages 90..99 were accessed twice: active. The rest once: inactive.
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "Active(file)"), 10 * 4);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "Inactive(file)"), 150 * 4);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "Active"), 10 * 4);
  EXPECT_TRUE(kmm::validate(*m).empty());

  EXPECT_EQ(kmm::writeback(*m, b), 50);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "Dirty"), 20 * 4);
  EXPECT_EQ(kmm::writeback(*m), 20);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "Dirty"), 0);
  EXPECT_EQ(proc_value(*m, "/proc/vmstat", "pgpgout"), 70 * 4);

  EXPECT_EQ(kmm::file_delete(*m, a), 0);
  EXPECT_EQ(kmm::file_delete(*m, a), -ENOENT);
  EXPECT_EQ(kmm::file_read(*m, a, 0, 1), -ENOENT);
  EXPECT_EQ(kmm::writeback(*m, a), -ENOENT);
  EXPECT_EQ(proc_value(*m, "/proc/meminfo", "Cached"), 50 * 4);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(PageCache, ValidateNamesEachPlantedCorruption) {
  auto m = Machine::boot("mem=16M");
  kmm::Kernel& k = m->kernel();
  int ino = kmm::file_create(*m, "f");
  ASSERT_EQ(kmm::file_write(*m, ino, 0, 2), 2); // two dirty pages
  ASSERT_TRUE(kmm::validate(*m).empty());
  kmm::File& f = *k.pagecache->files.at(ino);

  f.nr_dirty++;
  EXPECT_TRUE(has(kmm::validate(*m), "pagecache: file 1 has 2 dirty pages, nr_dirty says 3"));
  f.nr_dirty--;

  k.mod_node_page_state(kmm::NR_FILE_DIRTY, 1);
  EXPECT_TRUE(has(kmm::validate(*m), "pagecache: 2 dirty pages, nr_dirty says 3"));
  k.mod_node_page_state(kmm::NR_FILE_DIRTY, -1);

  k.mod_node_page_state(kmm::NR_FILE_PAGES, -1);
  EXPECT_TRUE(has(kmm::validate(*m), "pagecache: files hold 2 pages, nr_file_pages says 1"));
  k.mod_node_page_state(kmm::NR_FILE_PAGES, 1);

  uint32_t pfn = f.pages.at(1);
  struct page& p = k.mem.mem_map[pfn];
  p.mapped.index = 7; // the page thinks it is index 7 of its file
  EXPECT_TRUE(has(kmm::validate(*m),
                  kmm::strprintf("pagecache: file 1 index 1: pfn 0x%x is not its page (flags 0x%x "
                                 "owner pagecache)",
                                 pfn, p.flags)));
  p.mapped.index = 1;
  EXPECT_TRUE(kmm::validate(*m).empty());
}
