// Helpers shared by the page-allocator suites (buddy, page_alloc, pcp, watermark, vmstat,
// meminfo, validate): read /proc/buddyinfo and /proc/zoneinfo back into numbers, drain a machine
// to exactly zero free pages, and the kernel's watermark formulas written out a second time,
// independently of allocator/src/watermark.cpp, so a test can compare the two.
//
// Machines used by the suites, with mem <= 4G scaled as physmem.h describes:
//   mem=4M:  1024 pfns. DMA [0,64) (pfn 0 reserved: 63 managed), DMA32 [64,512), Normal
//            [512,1024). Boot blocks: DMA 1+2+4+8+16+32, DMA32 64+128+256, Normal one order-9.
//   mem=8M:  2048 pfns. DMA [0,128), DMA32 [128,1024), Normal [1024,2048) (one order-10).
//   mem=64M: 16384 pfns. DMA [0,1024), DMA32 [1024,8192), Normal [8192,16384).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "kmm/linux.h"
#include "kmm/machine.h"
#include "test_util.h"

namespace kmm::test {

// One zone's numbers as /proc/zoneinfo prints them.
struct ZoneInfo {
  long free = 0, boost = 0, min = 0, low = 0, high = 0, promo = 0;
  long spanned = 0, present = 0, managed = 0, cma = 0, start_pfn = 0;
  std::array<long, 4> protection{};
  long pcp_count = 0, pcp_high = 0, pcp_batch = 0; // of cpu 0
};

// /proc/zoneinfo parsed into name -> ZoneInfo (populated and empty zones alike).
inline std::map<std::string, ZoneInfo> zoneinfo(Machine& m) {
  std::map<std::string, ZoneInfo> out;
  std::istringstream in(m.proc_read("/proc/zoneinfo"));
  std::string line, cur;
  bool cpu0 = false;
  while (std::getline(in, line)) {
    std::istringstream w(line);
    std::string a, b, c;
    w >> a;
    if (a == "Node") {
      w >> b >> c >> cur; // "0," "zone" name
      out[cur];
      cpu0 = false;
      continue;
    }
    ZoneInfo& z = out[cur];
    long v = 0;
    if (a == "pages") {
      w >> b >> v; // "free" N
      z.free = v;
    } else if (a == "protection:") {
      std::string rest;
      std::getline(w, rest);
      std::sscanf(rest.c_str(), " (%ld, %ld, %ld, %ld)", &z.protection[0], &z.protection[1],
                  &z.protection[2], &z.protection[3]);
    } else if (a == "cpu:") {
      w >> v;
      cpu0 = v == 0;
    } else if (a == "count:" || a == "high:" || a == "batch:") {
      w >> v;
      if (cpu0) (a == "count:" ? z.pcp_count : a == "high:" ? z.pcp_high : z.pcp_batch) = v;
    } else if (a == "start_pfn:") {
      w >> z.start_pfn;
    } else {
      static const std::map<std::string, long ZoneInfo::*> fields = {
          {"boost", &ZoneInfo::boost},     {"min", &ZoneInfo::min},
          {"low", &ZoneInfo::low},         {"high", &ZoneInfo::high},
          {"promo", &ZoneInfo::promo},     {"spanned", &ZoneInfo::spanned},
          {"present", &ZoneInfo::present}, {"managed", &ZoneInfo::managed},
          {"cma", &ZoneInfo::cma}};
      auto it = fields.find(a);
      if (it != fields.end() && (w >> v)) z.*(it->second) = v;
    }
  }
  return out;
}

// The 11 per-order block counts of one zone's /proc/buddyinfo line.
inline std::vector<long> buddyinfo(Machine& m, const std::string& zone) {
  for (auto& row : proc_rows(m, "/proc/buddyinfo"))
    if (row.size() == 15 && row[3] == zone) {
      std::vector<long> v;
      for (size_t i = 4; i < 15; i++) v.push_back(std::stol(row[i]));
      return v;
    }
  ADD_FAILURE() << "no zone " << zone << " in /proc/buddyinfo";
  return {};
}

// Free pages held in a buddyinfo line: sum of count << order.
inline long buddyinfo_pages(const std::vector<long>& v) {
  long n = 0;
  for (size_t o = 0; o < v.size(); o++) n += v[o] << o;
  return n;
}

// Allocates every free page of the machine as order-0 pages (GFP_ATOMIC | __GFP_MEMALLOC
// ignores the watermarks once in the slow path) and returns them. Afterwards MemFree is 0.
inline std::vector<struct page*> drain_machine(gfp_t extra = 0) {
  std::vector<struct page*> pages;
  while (struct page* p = alloc_pages(GFP_ATOMIC | __GFP_MEMALLOC | __GFP_NOWARN | extra, 0))
    pages.push_back(p);
  return pages;
}

// ---- the kernel's formulas, written out again (mm/page_alloc.c) ------------------------------

// int_sqrt by the definition: the largest r with r*r <= x.
inline unsigned long ref_int_sqrt(unsigned long x) {
  unsigned long r = 0;
  while ((r + 1) * (r + 1) <= x) r++;
  return r;
}

// calculate_min_free_kbytes() at boot: no watermarks yet, so lowmem is every managed page of
// DMA, DMA32 and Normal.
inline long ref_min_free_kbytes(long lowmem_pages) {
  long v = static_cast<long>(ref_int_sqrt(static_cast<unsigned long>(lowmem_pages * 4) * 16));
  return std::clamp(v, 128l, 262144l);
}

struct RefWmark {
  long min, low, high, promo;
};

// __setup_per_zone_wmarks() for a zone that is not ZONE_MOVABLE.
inline RefWmark ref_wmarks(long min_free_kbytes, long managed, long lowmem_pages,
                           long scale_factor = 10) {
  long pages_min = min_free_kbytes >> 2;
  long tmp = pages_min * managed / lowmem_pages;
  long min = tmp;
  // mult_frac(managed, scale, 10000) == managed * scale / 10000 without overflow
  long delta = std::max(tmp >> 2, managed * scale_factor / 10000);
  return {min, min + delta, min + 2 * delta, min + 3 * delta};
}

} // namespace kmm::test
