// Tests for allocator/src/shrinker.cpp: do_shrink_slab arithmetic, drop_slab, registration.
#include <gtest/gtest.h>

#include "kmm/machine.h"
#include "kmm/pressure.h"
#include "kmm/validate.h"
#include "test_util.h"

using kmm::Machine;
using kmm::test::proc_value;

namespace {

struct FakeCache {
  unsigned long objects = 0;
  std::vector<unsigned long> scans; // nr_to_scan of each call
};

unsigned long fake_count(struct shrinker* s, struct shrink_control*) {
  auto* c = static_cast<FakeCache*>(s->private_data);
  return c->objects ? c->objects : SHRINK_EMPTY;
}

unsigned long fake_scan(struct shrinker* s, struct shrink_control* sc) {
  auto* c = static_cast<FakeCache*>(s->private_data);
  c->scans.push_back(sc->nr_to_scan);
  unsigned long freed = std::min(c->objects, sc->nr_to_scan);
  c->objects -= freed;
  return freed;
}

} // namespace

TEST(Shrinker, DropSlabArithmetic) {
  auto m = Machine::boot("mem=64M");
  kmm::MachineScope scope(*m);
  FakeCache cache;
  cache.objects = 1000;
  struct shrinker* s = shrinker_alloc(0, "fake");
  s->count_objects = fake_count;
  s->scan_objects = fake_scan;
  s->private_data = &cache;
  EXPECT_EQ(s->seeks, DEFAULT_SEEKS);
  shrinker_register(s);
  // Priority 0: delta = 1000 * 4 / 2 = 2000, total_scan = min(2000, 2 * 1000) = 2000: fifteen
  // batches of 128 (1920), then 80 < 128 and < 1000 stop the loop; 80 are deferred.
  EXPECT_EQ(m->proc_write("/proc/sys/vm/drop_caches", "2"), 0);
  EXPECT_EQ(cache.objects, 0u);
  ASSERT_EQ(cache.scans.size(), 15u);
  EXPECT_EQ(cache.scans.front(), 128u);
  EXPECT_EQ(proc_value(*m, "/proc/vmstat", "slabs_scanned"), 1920);
  EXPECT_EQ(proc_value(*m, "/proc/vmstat", "drop_slab"), 1);
  EXPECT_EQ(s->nr_deferred, 80);
  EXPECT_NE(m->dmesg().find("kmm (1): drop_caches: 2\n"), std::string::npos);
  shrinker_free(s);
}

TEST(Shrinker, LightTouchAtHighPriority) {
  auto m = Machine::boot("mem=64M");
  kmm::MachineScope scope(*m);
  FakeCache cache;
  cache.objects = 1000;
  struct shrinker s = {};
  s.count_objects = fake_count;
  s.scan_objects = fake_scan;
  s.seeks = DEFAULT_SEEKS;
  s.batch = 100;
  s.private_data = &cache;
  EXPECT_EQ(register_shrinker(&s, "fake-%d"), 0);
  // Direct reclaim of one page with an empty page cache walks priority 12 -> 0. At 12..9
  // (1000 >> p) * 4 / 2 is 0; at 8 it is 6, at 7 14, at 6 30, at 5 62, at 4 124: deferred work
  // accumulates until total_scan reaches the batch of 100.
  kmm::reclaim(*m, 1);
  EXPECT_FALSE(cache.scans.empty());
  for (unsigned long n : cache.scans) EXPECT_EQ(n, 100u);
  EXPECT_EQ(proc_value(*m, "/proc/vmstat", "slabs_scanned"),
            static_cast<long>(cache.scans.size() * 100));
  unregister_shrinker(&s);
  const size_t calls = cache.scans.size();
  kmm::reclaim(*m, 1);
  EXPECT_EQ(cache.scans.size(), calls); // unregistered: not called again
}
