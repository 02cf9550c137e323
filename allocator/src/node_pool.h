// NodePool: the nodes of a std::map's erased entries, kept to hold its next ones.
//
// The scenario interpreter's results and the fuzz harness's models are std::maps that fill and
// empty once per input, thousands of times a second, and under ASan every node is a host
// allocation with its stack recorded. A pool takes a map's nodes out on erase and clear (C++17
// node handles) and gives them new keys on insert, so a steady run allocates nothing. The map
// stays a std::map: references to its entries are as stable as ever, and code that only looks
// things up does not change.
//
// Invariant: every node in the pool is detached (belongs to no map) and holds mapped_type{}: a
// value's own memory is freed when its node comes back (so an input frees what it allocated,
// which libFuzzer's leak heuristic counts), and a node goes out with a fresh value.
#pragma once

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

namespace kmm {

template <class Map>
class NodePool {
public:
  using mapped_type = typename Map::mapped_type;

  // This thread's pool for maps of this type (the pools a harness keeps from input to input).
  static NodePool& of_thread() {
    static thread_local NodePool pool;
    return pool;
  }

  // m[key], the new entry (if there was none) in a kept node, its value mapped_type{}. *fresh
  // (if given) says whether the entry is new. One walk down the tree: the insert takes the
  // lower bound as its hint.
  template <class Key>
  mapped_type& operator()(Map& m, const Key& key, bool* fresh = nullptr) {
    auto it = m.lower_bound(key);
    const bool found = it != m.end() && !m.key_comp()(key, it->first);
    if (fresh) *fresh = !found;
    if (found) return it->second;
    if (spare_.empty()) return m.try_emplace(it, typename Map::key_type(key))->second;
    typename Map::node_type node = std::move(spare_.back());
    spare_.pop_back();
    node.key() = key;
    return m.insert(it, std::move(node))->second;
  }

  void erase(Map& m, typename Map::iterator it) { keep(m.extract(it)); }
  template <class Key>
  void erase(Map& m, const Key& key) {
    auto it = m.find(key);
    if (it != m.end()) erase(m, it);
  }
  // Empties m into the pool.
  void clear(Map& m) {
    while (!m.empty()) keep(m.extract(m.begin()));
  }

  // Grows the pool to n spare nodes up front (make_key(i) gives distinct keys for the nodes
  // made). A pool that grows while a fuzz input runs makes that input allocate more than it
  // frees, and libFuzzer then runs it again under a full LeakSanitizer pass; a harness fills
  // its pools once, before the inputs.
  template <class MakeKey>
  void reserve(size_t n, MakeKey make_key) {
    spare_.reserve(kMaxSpare);
    Map fresh;
    for (size_t i = 0; spare_.size() + fresh.size() < std::min(n, kMaxSpare); i++)
      fresh.try_emplace(make_key(i));
    clear(fresh);
  }

  size_t spare() const { return spare_.size(); }

private:
  static constexpr size_t kMaxSpare = 4096; // beyond this, nodes are freed as usual
  void keep(typename Map::node_type&& node) {
    if (spare_.size() >= kMaxSpare) return; // node frees it
    node.mapped() = mapped_type{};
    spare_.push_back(std::move(node));
  }
  std::vector<typename Map::node_type> spare_;
};

} // namespace kmm
