// A booted machine's image, and putting the machine back to it in place: what lets a fuzz
// harness run an input on the previous input's machine instead of booting one, in time
// proportional to what the input touched rather than to what boot builds (the kmalloc caches,
// /proc, the free lists, a zeroed mem_map).
//
// The image is taken right after boot, when no page is in use: boot creates the slab caches but
// no slab. It holds the struct pages, the zones (free lists, pcp lists, watermarks, counters),
// the pageblock migratetypes, the per-CPU state and event counters, the node counters, each slab
// cache's CPU slabs, node lists and counters, vmalloc's free ranges, the kernel's scalars and
// random state, task and file numbering, CMA's counters and the length of the log. KASAN's shadow
// needs no copy: boot writes none of it (kasan.h), and KASAN marks the chunks it writes since.
// restore_boot_image copies it back: of the struct pages, only the groups of 64 handed out or
// touched by the free and per-CPU lists since (physmem.h), so that a restore costs what the run
// touched (code that writes a struct page it was not handed breaks this, as it would break the
// kernel). The pages written since become stale (physmem.h: handed out, or marked by the code
// that wrote them; cleaned to the fill when handed out again, as on a machine given recycled
// RAM); as nothing was in use or written at boot, those are all the bytes a run can have changed.
// Caches created and destroyed since are dropped, the log is truncated, the reports go and a panic
// is forgotten. KASAN's written shadow (and ASan's mirror of it) goes back to its boot state and
// its quarantine empties.
//
// What the restore cannot undo it refuses, leaving the machine as it was (the caller boots a
// fresh one): a task or file still there, a vmalloc area still mapped, a cache created since and
// still alive, a boot cache still referenced by a merged alias, a pending RCU callback, a CMA
// allocation not released, a shrinker registered, a kswapd thread, a log that lost
// lines. Machines with KFENCE, whose pool is not in the image, have none.
//
// The promise: a restored machine and a freshly booted one give the same trace, log, reports,
// /proc files, struct pages and page contents for whatever runs next. tests/recycle_test.cpp
// checks it after every corpus scenario, and the fuzz harness checks every restored machine
// against a fresh boot under KMM_FUZZ_RECYCLE_CHECK=1 (ctest's corpus replays).
#pragma once

#include <cstdint>
#include <memory>

namespace kmm {

struct Kernel;
struct BootImage;
struct BootImageDeleter {
  void operator()(BootImage* img) const;
};
using BootImagePtr = std::unique_ptr<BootImage, BootImageDeleter>;

// The image of `k` as it is now, or null for a machine that cannot have one (KFENCE, KASAN's
// shadow already written, a report already made, a kswapd thread, a page in use or written, a
// task, file or vmalloc area).
// `reuse`, an image no longer needed (of any machine), lends its buffers: a fuzz harness that
// boots again after a refused restore takes the new image without allocating a new mem_map copy.
BootImagePtr take_boot_image(Kernel& k, BootImagePtr reuse = nullptr);

// Puts `k` back to `img` and returns true, or returns false (leaving `k` as it was) when `k`
// holds something the restore cannot undo. `k` must be the machine the image was taken of, current
// on no other thread.
bool restore_boot_image(Kernel& k, const BootImage& img);

// Restores that succeeded and that were refused, and the struct pages the successful ones
// copied back, since the process started.
uint64_t boot_image_restores();
uint64_t boot_image_refusals();
uint64_t boot_image_pages_copied();

} // namespace kmm
