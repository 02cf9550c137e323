// GFP flag names: the kernel's %pGg table (include/trace/events/mmflags.h), composites first.
// Printing is greedy in table order: a name is printed when all its bits are set, then its bits
// are cleared; leftover unknown bits are printed in hex.
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "kmm/gfp.h"

namespace kmm {

namespace {
struct GfpName {
  gfp_t mask;
  const char* name;
};
#define G(x)                                                                                       \
  { x, #x }
const GfpName gfp_table[] = {
    G(GFP_TRANSHUGE),
    G(GFP_TRANSHUGE_LIGHT),
    G(GFP_HIGHUSER_MOVABLE),
    G(GFP_HIGHUSER),
    G(GFP_USER),
    G(GFP_KERNEL_ACCOUNT),
    G(GFP_KERNEL),
    G(GFP_NOFS),
    G(GFP_ATOMIC),
    G(GFP_NOIO),
    G(GFP_NOWAIT),
    G(GFP_DMA),
    G(__GFP_HIGHMEM),
    G(GFP_DMA32),
    G(__GFP_HIGH),
    G(__GFP_IO),
    G(__GFP_FS),
    G(__GFP_NOWARN),
    G(__GFP_RETRY_MAYFAIL),
    G(__GFP_NOFAIL),
    G(__GFP_NORETRY),
    G(__GFP_COMP),
    G(__GFP_ZERO),
    G(__GFP_NOMEMALLOC),
    G(__GFP_MEMALLOC),
    G(__GFP_HARDWALL),
    G(__GFP_THISNODE),
    G(__GFP_RECLAIMABLE),
    G(__GFP_MOVABLE),
    G(__GFP_ACCOUNT),
    G(__GFP_WRITE),
    G(__GFP_RECLAIM),
    G(__GFP_DIRECT_RECLAIM),
    G(__GFP_KSWAPD_RECLAIM),
    G(__GFP_ZEROTAGS),
    // Names accepted when parsing but never printed (they alias printed ones).
    G(__GFP_DMA),
    G(__GFP_DMA32),
};
#undef G
constexpr size_t kPrinted = sizeof(gfp_table) / sizeof(gfp_table[0]) - 2;
} // namespace

std::string gfp_names(gfp_t gfp) {
  if (gfp == 0) return "none";
  std::string out;
  out.reserve(96); // most mixes fit: one allocation (a fuzzed gfp is printed in every warning)
  for (size_t i = 0; i < kPrinted; i++) {
    const GfpName& n = gfp_table[i];
    if ((gfp & n.mask) == n.mask) {
      if (!out.empty()) out += '|';
      out += n.name;
      gfp &= ~n.mask;
      if (!gfp) break;
    }
  }
  if (gfp) {
    char hex[24];
    std::snprintf(hex, sizeof hex, "0x%llx", static_cast<unsigned long long>(gfp));
    if (!out.empty()) out += '|';
    out += hex;
  }
  return out;
}

bool parse_gfp(const std::string& text, gfp_t* out) {
  gfp_t gfp = 0;
  std::string word;
  std::istringstream in(text);
  // getline() yields no empty word after a trailing '|': "GFP_KERNEL|" must still be refused.
  if (text.empty() || text.back() == '|') return false;
  while (std::getline(in, word, '|')) {
    if (word.empty()) return false;
    if (word == "0" || word == "none") continue;
    bool found = false;
    for (const auto& n : gfp_table)
      if (word == n.name) {
        gfp |= n.mask;
        found = true;
        break;
      }
    if (!found) {
      char* end = nullptr;
      unsigned long v = std::strtoul(word.c_str(), &end, 0);
      if (!(word[0] >= '0' && word[0] <= '9') || *end || v > __GFP_BITS_MASK) return false;
      gfp |= static_cast<gfp_t>(v);
    }
  }
  *out = gfp;
  return true;
}

} // namespace kmm
