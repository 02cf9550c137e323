// What validate()'s walk of mem_map saw that other structures' checks need (validate.cpp fills
// it). The slab and pressure layers each used to walk mem_map again for it: three walks of every
// struct page of RAM per validate(), which a fuzz input runs every few operations.
#pragma once

#include <cstdint>
#include <vector>

namespace kmm {

// Filled by one walk that visits each block head (free, pcp, allocated) and each page it cannot
// read as part of a block (reserved, or in no state or a bad one). A block's tails are not
// visited: validate() itself reports a tail that is not what a tail must be.
struct PageCensus {
  std::vector<uint32_t> slabs; // visited pfns with PG_slab, ascending
  long anon = 0;               // visited allocated pfns owned by Anon
  long pagecache = 0;          //   by PageCache
  long pagetable = 0;          //   by PageTable

  void clear() {
    slabs.clear();
    anon = pagecache = pagetable = 0;
  }
};

} // namespace kmm
