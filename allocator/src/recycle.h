// A booted machine's image, and putting the machine back to it in place: what lets a fuzz
// harness run thousands of inputs a second on one machine instead of booting one per input,
// in time proportional to what the input touched rather than to what boot builds (the kmalloc
// caches, /proc, the free lists, a zeroed mem_map).
//
// The image is taken right after boot (with the oracles' first drain done) and holds what the
// page allocator changes: the struct pages, the zones (free lists, pcp lists, watermarks,
// counters), the pageblock migratetypes, the per-CPU state and event counters, the node
// counters, the kernel's scalars and random state, the length of the log. restore_boot_image
// copies it back, marks the pages handed out since as stale (physmem.h: cleaned to the fill when
// handed out again, as on a machine given recycled RAM), truncates the log and drops the reports.
//
// What it does not copy it compares: the slab caches (every CPU slab, freelist, partial and full
// list, slab count), vmalloc's areas, tasks, files, shrinkers, CMA's counters, RCU, kswapd. If any
// of them moved, restore refuses and the caller boots a fresh machine. Bytes written inside a slab
// object, or a vmalloc area, that was live at boot are not seen by that comparison: the caller
// restores only after runs that touched nothing but the page allocator and the pages it handed
// out (the fuzz harness decides by the operations that ran). Machines with KASAN or KFENCE, whose
// shadow and pool are not in the image, have no image.
//
// The promise, checked by tests/recycle_test.cpp on every corpus scenario: a restored machine and
// a freshly booted one give the same trace, log, reports, /proc files and struct pages for
// whatever runs next.
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

// The image of `k` as it is now, or null for a machine that cannot have one (KASAN, KFENCE, a
// report already made, a kswapd thread, a free page that is neither pristine nor stale).
BootImagePtr take_boot_image(Kernel& k);

// Puts `k` back to `img` and returns true, or returns false (leaving `k` as it was) when a part
// the image compares has moved. `k` must be the machine the image was taken of, current on no
// other thread.
bool restore_boot_image(Kernel& k, const BootImage& img);

// Restores that succeeded and that were refused, since the process started.
uint64_t boot_image_restores();
uint64_t boot_image_refusals();

} // namespace kmm
