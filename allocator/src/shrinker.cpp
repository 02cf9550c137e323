// Shrinkers (see shrinker.h). do_shrink_slab() as the kernel computes it:
//   freeable   = count_objects()
//   delta      = (freeable >> priority) * 4 / seeks        (freeable / 2 when seeks == 0)
//   total_scan = min((nr_deferred >> priority) + delta, 2 * freeable)
//   scan in batches of `batch` while total_scan >= batch or total_scan >= freeable
//   nr_deferred = min(max(nr_deferred + delta - scanned, 0), 2 * freeable)
// Worked example: freeable 1000, seeks 2, priority 12, nothing deferred: delta = 0, nothing is
// scanned; at priority 0: delta = 2000, total_scan = 2000, 16 batches of 128 (2048 > 2000: the
// last one is 80), deferred = max(0 + 2000 - 2000, 0) = 0.
#include "shrinker.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "kernel.h"

namespace kmm {

void shrinker_init(Kernel& k) { k.shrinkers = std::make_unique<ShrinkerList>(); }

void register_shrinker_k(Kernel& k, struct shrinker* s) {
  std::lock_guard<std::mutex> guard(k.shrinkers->lock);
  if (s->registered) return;
  s->registered = true;
  s->owner_ = &k;
  k.shrinkers->list.push_back(s);
}

void unregister_shrinker_k(Kernel& k, struct shrinker* s) {
  std::lock_guard<std::mutex> guard(k.shrinkers->lock);
  auto& list = k.shrinkers->list;
  list.erase(std::remove(list.begin(), list.end(), s), list.end());
  s->registered = false;
}

static unsigned long do_shrink_slab(Kernel& k, struct shrink_control* sc, struct shrinker* s,
                                    int priority) {
  unsigned long freeable = s->count_objects(s, sc);
  if (freeable == 0 || freeable == SHRINK_EMPTY) return 0;
  long nr = s->nr_deferred;
  s->nr_deferred = 0;
  long batch_size = s->batch ? s->batch : SHRINK_BATCH;
  long lfreeable = static_cast<long>(freeable);
  long delta = s->seeks ? (lfreeable >> priority) * 4 / s->seeks : lfreeable / 2;
  long total_scan = std::min((nr >> priority) + delta, 2 * lfreeable);
  long scanned = 0;
  unsigned long freed = 0;
  while (total_scan >= batch_size || total_scan >= lfreeable) {
    long nr_to_scan = std::min(batch_size, total_scan);
    sc->nr_to_scan = static_cast<unsigned long>(nr_to_scan);
    sc->nr_scanned = static_cast<unsigned long>(nr_to_scan);
    unsigned long ret = s->scan_objects(s, sc);
    if (ret == SHRINK_STOP) break;
    freed += ret;
    k.count_event(SLABS_SCANNED, sc->nr_scanned);
    total_scan -= static_cast<long>(sc->nr_scanned);
    scanned += static_cast<long>(sc->nr_scanned);
    if (sc->nr_scanned == 0) break; // a callback that scans nothing would loop forever
  }
  long next_deferred = std::min(std::max(nr + delta - scanned, 0l), 2 * lfreeable);
  s->nr_deferred += next_deferred;
  return freed;
}

unsigned long shrink_slab(Kernel& k, gfp_t gfp, int priority) {
  if (!k.shrinkers) return 0;
  std::lock_guard<std::mutex> guard(k.shrinkers->lock);
  unsigned long freed = 0;
  for (struct shrinker* s : k.shrinkers->list) {
    struct shrink_control sc = {gfp, 0, 0, 0};
    freed += do_shrink_slab(k, &sc, s, priority);
  }
  return freed;
}

void drop_slab(Kernel& k) {
  // drop_slab(): again while a round frees more than 2 << (rounds so far) objects.
  int shift = 0;
  unsigned long freed;
  do {
    freed = shrink_slab(k, GFP_KERNEL, 0);
  } while ((freed >> shift++) > 1);
}

} // namespace kmm

// --- the kernel-style API (kmm/pressure.h) ----------------------------------------------------

static kmm::Kernel& shrinker_machine() {
  kmm::Kernel* k = kmm::current_kernel();
  if (!k) throw std::logic_error("shrinker API called with no current kmm machine");
  return *k;
}

struct shrinker* shrinker_alloc(unsigned int flags, const char* name) {
  auto* s = new shrinker{};
  s->flags = flags;
  s->seeks = DEFAULT_SEEKS;
  std::snprintf(s->name, sizeof s->name, "%s", name ? name : "");
  return s;
}

void shrinker_register(struct shrinker* s) {
  kmm::Kernel& k = shrinker_machine();
  kmm::register_shrinker_k(k, s);
}

void shrinker_free(struct shrinker* s) {
  if (!s) return;
  unregister_shrinker(s);
  delete s;
}

int register_shrinker(struct shrinker* s, const char* name) {
  if (name && !s->name[0]) std::snprintf(s->name, sizeof s->name, "%s", name);
  shrinker_register(s);
  return 0;
}

void unregister_shrinker(struct shrinker* s) {
  if (!s->registered || !s->owner_) return;
  kmm::unregister_shrinker_k(*static_cast<kmm::Kernel*>(s->owner_), s);
}
