// NodePool (node_pool.h): a map's erased nodes come back with new keys and fresh values, the map
// behaves as a std::map throughout, and the pool is bounded.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "kmm/scenario.h"
#include "node_pool.h"

namespace {

struct Val {
  int n = 0;
  std::vector<int> v;
};
using Map = std::map<std::string, Val, kmm::NameLess>;

TEST(NodePool, ErasedNodesHoldTheNextEntriesWithFreshValues) {
  Map m;
  kmm::NodePool<Map> pool;
  pool(m, "p0").n = 1;
  pool(m, "p1").v = {1, 2, 3};
  EXPECT_EQ(pool.spare(), 0u);
  pool.erase(m, "p1");
  EXPECT_EQ(m.size(), 1u);
  EXPECT_EQ(pool.spare(), 1u);
  Val& fresh = pool(m, "o7");
  EXPECT_EQ(pool.spare(), 0u); // the erased node was taken
  EXPECT_EQ(fresh.n, 0);
  EXPECT_TRUE(fresh.v.empty()); // not p1's value
  EXPECT_EQ(&m.at("o7"), &fresh);
  // An existing key is found, not inserted again.
  pool(m, "p0").n++;
  EXPECT_EQ(m.at("p0").n, 2);
  EXPECT_EQ(m.size(), 2u);
  // Order is the map's own (NameLess: shorter names first).
  pool(m, "p10");
  std::vector<std::string> keys;
  for (const auto& [k, v] : m) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"o7", "p0", "p10"}));
  pool.erase(m, "absent"); // nothing to do
  EXPECT_EQ(m.size(), 3u);
}

TEST(NodePool, ClearKeepsEveryNodeUpToItsBound) {
  Map m;
  kmm::NodePool<Map> pool;
  for (int i = 0; i < 5000; i++) pool(m, "x" + std::to_string(i)).n = i;
  pool.clear(m);
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(pool.spare(), 4096u); // the rest were freed
  // References stay stable while the map grows from the pool.
  Val& a = pool(m, "a");
  for (int i = 0; i < 100; i++) pool(m, "b" + std::to_string(i));
  EXPECT_EQ(&m.at("a"), &a);
}

TEST(NodePool, ReserveMakesSpareNodesUpFront) {
  Map m;
  kmm::NodePool<Map> pool;
  pool.reserve(10, [](size_t i) { return "k" + std::to_string(i); });
  EXPECT_EQ(pool.spare(), 10u);
  EXPECT_TRUE(m.empty()); // the keys it made are gone with their map
  for (int i = 0; i < 10; i++) EXPECT_EQ(pool(m, "p" + std::to_string(i)).n, 0);
  EXPECT_EQ(pool.spare(), 0u);
  EXPECT_EQ(m.size(), 10u);
  pool.reserve(100000, [](size_t i) { return "k" + std::to_string(i); }); // up to the bound
  EXPECT_EQ(pool.spare(), 4096u);
}

} // namespace
