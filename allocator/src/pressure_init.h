// Boot, teardown and validation of the memory-pressure layer (pressure.cpp): tasks, page cache,
// reclaim, shrinkers, OOM and overcommit, with their /proc files.
#pragma once

#include <string>
#include <vector>

namespace kmm {

struct Kernel;
struct PageCensus;

void pressure_init(Kernel& k); // Machine::boot, after the allocators
void pressure_exit(Kernel& k); // ~Kernel, first: stops kswapd
// Every Anon/PageCache/PageTable page accounted to exactly one owner, LRU lists consistent,
// counters equal to contents, meminfo arithmetic. `census`: what validate()'s walk of mem_map saw
// (page_census.h).
void pressure_validate(Kernel& k, std::vector<std::string>& errors, const PageCensus& census);

} // namespace kmm
