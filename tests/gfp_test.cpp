// Tests for allocator/src/gfp.cpp and the GFP part of page_alloc.cpp: the kernel's bit values
// and compositions, %pGg names (composites first, greedily, in mmflags.h order), parsing them
// back, gfp_zone() (GFP_ZONE_TABLE) and gfp_migratetype().
#include <gtest/gtest.h>

#include "kmm/gfp.h"
#include "mmzone.h"
#include "page_alloc.h"

TEST(Gfp, KernelBitValues) {
  EXPECT_EQ(GFP_ATOMIC, 0x820u);
  EXPECT_EQ(GFP_KERNEL, 0xcc0u);
  EXPECT_EQ(GFP_KERNEL_ACCOUNT, 0x400cc0u);
  EXPECT_EQ(GFP_NOWAIT, 0x800u);
  EXPECT_EQ(GFP_NOIO, 0xc00u);
  EXPECT_EQ(GFP_NOFS, 0xc40u);
  EXPECT_EQ(GFP_USER, 0x100cc0u);
  EXPECT_EQ(GFP_HIGHUSER, 0x100cc2u);
  EXPECT_EQ(GFP_HIGHUSER_MOVABLE, 0x100ccau);
  EXPECT_EQ(GFP_TRANSHUGE_LIGHT, 0x1c20cau); // (HIGHUSER_MOVABLE|COMP|NOMEMALLOC|NOWARN) & ~RECLAIM
  EXPECT_EQ(GFP_TRANSHUGE, 0x1c24cau);
  EXPECT_EQ(__GFP_NOWARN, 0x2000u);
  EXPECT_EQ(__GFP_COMP, 0x40000u);
}

TEST(Gfp, NamesAsPercentPGg) {
  EXPECT_EQ(kmm::gfp_names(GFP_KERNEL), "GFP_KERNEL");
  EXPECT_EQ(kmm::gfp_names(GFP_KERNEL | __GFP_ZERO), "GFP_KERNEL|__GFP_ZERO");
  EXPECT_EQ(kmm::gfp_names(GFP_HIGHUSER_MOVABLE | __GFP_COMP), "GFP_HIGHUSER_MOVABLE|__GFP_COMP");
  EXPECT_EQ(kmm::gfp_names(GFP_ATOMIC | __GFP_NOWARN), "GFP_ATOMIC|__GFP_NOWARN");
  EXPECT_EQ(kmm::gfp_names(GFP_KERNEL | GFP_DMA | __GFP_NORETRY),
            "GFP_KERNEL|GFP_DMA|__GFP_NORETRY");
  EXPECT_EQ(kmm::gfp_names(GFP_TRANSHUGE), "GFP_TRANSHUGE");
  EXPECT_EQ(kmm::gfp_names(__GFP_DIRECT_RECLAIM), "__GFP_DIRECT_RECLAIM");
  EXPECT_EQ(kmm::gfp_names(__GFP_RECLAIM), "GFP_NOIO");
  EXPECT_EQ(kmm::gfp_names(__GFP_HIGH), "__GFP_HIGH");
  EXPECT_EQ(kmm::gfp_names(0), "none");
  EXPECT_EQ(kmm::gfp_names(0x200), "0x200"); // the retired __GFP_ATOMIC bit
  EXPECT_EQ(kmm::gfp_names(GFP_KERNEL | 0x1000000), "GFP_KERNEL|0x1000000");
}

TEST(Gfp, ParseNamesAndNumbers) {
  gfp_t g = 0;
  ASSERT_TRUE(kmm::parse_gfp("GFP_KERNEL|__GFP_ZERO", &g));
  EXPECT_EQ(g, GFP_KERNEL | __GFP_ZERO);
  ASSERT_TRUE(kmm::parse_gfp("__GFP_DMA|0x2000", &g));
  EXPECT_EQ(g, __GFP_DMA | __GFP_NOWARN);
  ASSERT_TRUE(kmm::parse_gfp("none", &g));
  EXPECT_EQ(g, 0u);
  for (gfp_t v : {GFP_KERNEL, GFP_ATOMIC | __GFP_COMP, GFP_HIGHUSER_MOVABLE | __GFP_ZERO,
                  GFP_NOWAIT | __GFP_RECLAIMABLE | __GFP_ACCOUNT, GFP_DMA32 | __GFP_THISNODE}) {
    ASSERT_TRUE(kmm::parse_gfp(kmm::gfp_names(v), &g)) << kmm::gfp_names(v);
    EXPECT_EQ(g, v) << kmm::gfp_names(v);
  }
  g = 7;
  for (const char* bad : {"", "GFP_KERNAL", "GFP_KERNEL|", "|GFP_KERNEL", "0x1000000", "x12"})
    EXPECT_FALSE(kmm::parse_gfp(bad, &g)) << bad;
  EXPECT_EQ(g, 7u);
}

TEST(Gfp, ZoneTable) {
  using kmm::gfp_zone;
  EXPECT_EQ(gfp_zone(GFP_KERNEL), kmm::ZONE_NORMAL);
  EXPECT_EQ(gfp_zone(GFP_KERNEL | __GFP_DMA), kmm::ZONE_DMA);
  EXPECT_EQ(gfp_zone(GFP_KERNEL | __GFP_DMA32), kmm::ZONE_DMA32);
  EXPECT_EQ(gfp_zone(GFP_KERNEL | __GFP_HIGHMEM), kmm::ZONE_NORMAL);
  EXPECT_EQ(gfp_zone(GFP_KERNEL | __GFP_MOVABLE), kmm::ZONE_NORMAL);
  EXPECT_EQ(gfp_zone(GFP_HIGHUSER_MOVABLE), kmm::ZONE_MOVABLE);
  EXPECT_EQ(gfp_zone(__GFP_MOVABLE | __GFP_DMA), kmm::ZONE_DMA);
  EXPECT_EQ(gfp_zone(__GFP_MOVABLE | __GFP_DMA32), kmm::ZONE_DMA32);
  EXPECT_EQ(gfp_zone(__GFP_DMA | __GFP_DMA32), -1);
  EXPECT_EQ(gfp_zone(__GFP_DMA | __GFP_HIGHMEM), -1);
  EXPECT_EQ(gfp_zone(__GFP_DMA32 | __GFP_HIGHMEM), -1);
  EXPECT_EQ(gfp_zone(__GFP_MOVABLE | __GFP_HIGHMEM | __GFP_DMA), -1);
}

TEST(Gfp, Migratetype) {
  EXPECT_EQ(kmm::gfp_migratetype(GFP_KERNEL), kmm::MIGRATE_UNMOVABLE);
  EXPECT_EQ(kmm::gfp_migratetype(GFP_HIGHUSER_MOVABLE), kmm::MIGRATE_MOVABLE);
  EXPECT_EQ(kmm::gfp_migratetype(GFP_KERNEL | __GFP_RECLAIMABLE), kmm::MIGRATE_RECLAIMABLE);
  EXPECT_TRUE(kmm::gfpflags_allow_blocking(GFP_KERNEL));
  EXPECT_TRUE(kmm::gfpflags_allow_blocking(GFP_NOIO));
  EXPECT_FALSE(kmm::gfpflags_allow_blocking(GFP_ATOMIC));
  EXPECT_FALSE(kmm::gfpflags_allow_blocking(GFP_NOWAIT));
}
