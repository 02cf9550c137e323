// Tests for allocator/src/migrate.cpp: migrate_page_owner for anonymous and page-cache pages.
#include <gtest/gtest.h>

#include <cstring>

#include "kernel.h"
#include "kmm/linux.h"
#include "kmm/pressure.h"
#include "kmm/validate.h"
#include "migrate.h"
#include "pagecache.h"
#include "task.h"
#include "vmscan.h"

using kmm::Machine;

namespace {

struct page* owned_page(kmm::Kernel& k, kmm::PageOwner owner) {
  for (unsigned long pfn = 0; pfn < k.mem.nr_pages; pfn++) {
    struct page* p = k.mem.pfn_to_page(pfn);
    if ((p->flags & kmm::PG_alloc) && p->owner == owner) return p;
  }
  return nullptr;
}

void migrate_one(Machine& m, kmm::PageOwner owner) {
  kmm::Kernel& k = m.kernel();
  struct page* old_page = owned_page(k, owner);
  ASSERT_NE(old_page, nullptr);
  struct page* new_page = alloc_page(GFP_HIGHUSER_MOVABLE);
  ASSERT_NE(new_page, nullptr);
  const uint32_t flags = old_page->flags;
  void* mapping = old_page->mapped.mapping;
  const uint64_t index = old_page->mapped.index;
  std::vector<uint8_t> bytes(PAGE_SIZE);
  std::memcpy(bytes.data(), page_address(old_page), PAGE_SIZE);

  get_page(old_page); // pinned: refused, nothing changes
  EXPECT_FALSE(kmm::migrate_page_owner(k, old_page, new_page));
  EXPECT_EQ(old_page->owner, owner);
  put_page(old_page);

  ASSERT_TRUE(kmm::migrate_page_owner(k, old_page, new_page));
  EXPECT_EQ(std::memcmp(page_address(new_page), bytes.data(), PAGE_SIZE), 0);
  EXPECT_EQ(new_page->owner, owner);
  EXPECT_EQ(new_page->flags & ~kmm::PG_alloc, flags & ~kmm::PG_alloc);
  EXPECT_EQ(new_page->mapped.mapping, mapping);
  EXPECT_EQ(new_page->mapped.index, index);
  const uint32_t new_pfn = static_cast<uint32_t>(page_to_pfn(new_page));
  if (owner == kmm::PageOwner::Anon)
    EXPECT_EQ(static_cast<kmm::Task*>(mapping)->anon[index], new_pfn);
  else EXPECT_EQ(static_cast<kmm::File*>(mapping)->pages[index], new_pfn);
  EXPECT_EQ(old_page->owner, kmm::PageOwner::Kernel);
  EXPECT_EQ(page_count(old_page), 1);
  EXPECT_FALSE(kmm::migrate_page_owner(k, old_page, new_page)); // no longer an owned page
  __free_page(old_page);
  auto errors = kmm::validate(m);
  EXPECT_TRUE(errors.empty()) << errors.front();
}

} // namespace

TEST(Migrate, AnonPageMovesWithItsTask) {
  auto m = Machine::boot("mem=64M");
  kmm::MachineScope scope(*m);
  int pid = kmm::task_spawn(*m, "t", 0);
  ASSERT_EQ(kmm::task_touch(*m, pid, 20), 20);
  migrate_one(*m, kmm::PageOwner::Anon);
  EXPECT_EQ(kmm::task_exit(*m, pid), 0);
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(Migrate, PageCachePageKeepsItsLruPositionAndDirtiness) {
  auto m = Machine::boot("mem=64M");
  kmm::MachineScope scope(*m);
  int ino = kmm::file_create(*m, "f");
  ASSERT_EQ(kmm::file_write(*m, ino, 0, 5), 5);
  migrate_one(*m, kmm::PageOwner::PageCache);
}
