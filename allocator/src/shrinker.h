// Shrinkers (mm/shrinker.c): caches that can give memory back register count/scan callbacks;
// reclaim calls them through shrink_slab() with the kernel's do_shrink_slab() arithmetic.
// Slab caches (SLUB) and the KASAN quarantine register theirs with register_shrinker_k().
#pragma once

#include <mutex>
#include <vector>

#include "kmm/gfp.h"
#include "kmm/pressure.h"

namespace kmm {

struct Kernel;

// The registered shrinkers, in registration order. `lock` (shrinker_rwsem) is held across a
// whole shrink_slab(), so unregistering waits for a running shrink.
struct ShrinkerList {
  std::mutex lock;
  std::vector<struct shrinker*> list;
};

void shrinker_init(Kernel& k);
// Internal registration on a given machine (no current machine needed).
void register_shrinker_k(Kernel& k, struct shrinker* s);
void unregister_shrinker_k(Kernel& k, struct shrinker* s);

// shrink_slab(): every shrinker once at `priority` (12 = a light touch, 0 = everything).
// Returns objects freed; counts slabs_scanned.
unsigned long shrink_slab(Kernel& k, gfp_t gfp, int priority);
// drop_slab(): shrink at priority 0 until a round frees almost nothing.
void drop_slab(Kernel& k);

} // namespace kmm
