// GFP flags: the kernel's bit values (include/linux/gfp_types.h, 6.3+) and compositions.
//
// They live in the global namespace, unprefixed, because kernel-style user code spells them
// exactly as in the kernel (GFP_KERNEL | __GFP_ZERO). Everything else in kmm is in namespace kmm.
#pragma once

#include <string>

typedef unsigned int gfp_t;

// clang-format off
inline constexpr gfp_t __GFP_DMA            = 0x01u;
inline constexpr gfp_t __GFP_HIGHMEM        = 0x02u;
inline constexpr gfp_t __GFP_DMA32          = 0x04u;
inline constexpr gfp_t __GFP_MOVABLE        = 0x08u;
inline constexpr gfp_t __GFP_RECLAIMABLE    = 0x10u;
inline constexpr gfp_t __GFP_HIGH           = 0x20u;
inline constexpr gfp_t __GFP_IO             = 0x40u;
inline constexpr gfp_t __GFP_FS             = 0x80u;
inline constexpr gfp_t __GFP_ZERO           = 0x100u;
/* 0x200 is unused since 6.3 (was __GFP_ATOMIC) */
inline constexpr gfp_t __GFP_DIRECT_RECLAIM = 0x400u;
inline constexpr gfp_t __GFP_KSWAPD_RECLAIM = 0x800u;
inline constexpr gfp_t __GFP_WRITE          = 0x1000u;
inline constexpr gfp_t __GFP_NOWARN         = 0x2000u;
inline constexpr gfp_t __GFP_RETRY_MAYFAIL  = 0x4000u;
inline constexpr gfp_t __GFP_NOFAIL         = 0x8000u;
inline constexpr gfp_t __GFP_NORETRY        = 0x10000u;
inline constexpr gfp_t __GFP_MEMALLOC       = 0x20000u;
inline constexpr gfp_t __GFP_COMP           = 0x40000u;
inline constexpr gfp_t __GFP_NOMEMALLOC     = 0x80000u;
inline constexpr gfp_t __GFP_HARDWALL       = 0x100000u;
inline constexpr gfp_t __GFP_THISNODE       = 0x200000u;
inline constexpr gfp_t __GFP_ACCOUNT        = 0x400000u;
inline constexpr gfp_t __GFP_ZEROTAGS       = 0x800000u;
inline constexpr gfp_t __GFP_BITS_MASK      = 0xffffffu;

inline constexpr gfp_t __GFP_RECLAIM        = __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM;

inline constexpr gfp_t GFP_ATOMIC           = __GFP_HIGH | __GFP_KSWAPD_RECLAIM;
inline constexpr gfp_t GFP_KERNEL           = __GFP_RECLAIM | __GFP_IO | __GFP_FS;
inline constexpr gfp_t GFP_KERNEL_ACCOUNT   = GFP_KERNEL | __GFP_ACCOUNT;
inline constexpr gfp_t GFP_NOWAIT           = __GFP_KSWAPD_RECLAIM;
inline constexpr gfp_t GFP_NOIO             = __GFP_RECLAIM;
inline constexpr gfp_t GFP_NOFS             = __GFP_RECLAIM | __GFP_IO;
inline constexpr gfp_t GFP_USER             = __GFP_RECLAIM | __GFP_IO | __GFP_FS | __GFP_HARDWALL;
inline constexpr gfp_t GFP_DMA              = __GFP_DMA;
inline constexpr gfp_t GFP_DMA32            = __GFP_DMA32;
inline constexpr gfp_t GFP_HIGHUSER         = GFP_USER | __GFP_HIGHMEM;
inline constexpr gfp_t GFP_HIGHUSER_MOVABLE = GFP_HIGHUSER | __GFP_MOVABLE;
inline constexpr gfp_t GFP_TRANSHUGE_LIGHT  = (GFP_HIGHUSER_MOVABLE | __GFP_COMP | __GFP_NOMEMALLOC |
                                               __GFP_NOWARN) & ~__GFP_RECLAIM;
inline constexpr gfp_t GFP_TRANSHUGE        = GFP_TRANSHUGE_LIGHT | __GFP_DIRECT_RECLAIM;
// clang-format on

namespace kmm {

// "GFP_KERNEL|__GFP_ZERO": the kernel's %pGg rendering (composites first, greedily, as
// include/trace/events/mmflags.h lists them, then the remaining single bits).
std::string gfp_names(gfp_t gfp);

// The inverse, for the scenario language and boot-time parsing: "GFP_KERNEL|__GFP_ZERO" or a
// number. Returns false on an unknown name.
bool parse_gfp(const std::string& text, gfp_t* out);

inline bool gfpflags_allow_blocking(gfp_t gfp) { return gfp & __GFP_DIRECT_RECLAIM; }

} // namespace kmm
