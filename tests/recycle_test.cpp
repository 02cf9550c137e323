// recycle.h: a machine restored to its boot image is a freshly booted one. Every corpus scenario
// (seeds, regressions, examples) runs on a machine, the machine is restored, and a probe then
// sees the same trace, log, reports, /proc files, RAM and struct pages as on a fresh boot.
#include "recycle.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "kasan_asan.h"
#if KMM_ASAN
#include <sanitizer/asan_interface.h>
#endif

#include "kasan.h"
#include "kernel.h"
#include "kmm/machine.h"
#include "kmm/scenario.h"
#include "scenario_ops.h"
#include "scenario_run.h"

using kmm::Machine;

namespace {

// Whatever an input after the restore could notice: pages of several orders and migratetypes
// (their bytes too), an atomic allocation, a warning in the log, kmalloc and vmalloc, /proc.
const char* const kProbe = R"(p0 = alloc_pages order=0 gfp=GFP_KERNEL
p1 = alloc_pages order=3 gfp=GFP_HIGHUSER_MOVABLE
p2 = alloc_pages order=9 gfp=GFP_KERNEL|__GFP_RECLAIMABLE
p3 = alloc_pages order=2 gfp=GFP_ATOMIC
p4 = alloc_pages order=11 gfp=GFP_KERNEL
p5 = alloc_pages order=4 gfp=GFP_KERNEL|__GFP_ZERO
read p0+0 len=16
read p5+8192 len=16
p6 = alloc_pages order=4 gfp=GFP_KERNEL|__GFP_ZERO
write p6+0 len=8 byte=0x77
free_pages p6
p7 = alloc_pages order=4 gfp=GFP_KERNEL
read p7+0 len=16
read p1+12288 len=16
read p2+4096 len=16
o0 = kmalloc size=200
read o0+0 len=16
v0 = vmalloc size=9000
read v0+0 len=16
proc_read /proc/buddyinfo
proc_read /proc/pagetypeinfo
proc_read /proc/zoneinfo
proc_read /proc/vmstat
proc_read /proc/meminfo
proc_read /proc/slabinfo
free_pages p1
)";

// What the probe leaves that a later input could read: the struct pages, and the bytes of every
// page in use (a stale one reads as the fill it is cleaned to when handed out). Free pages hold
// the boot fill or are stale on both machines (physmem.h; Physmem tests check that invariant).
// A slab page's cache pointer is left out: the two machines compared have the same RAM and
// mem_map mapping (see probe_fresh), but their kmem_cache descriptors live at different host
// addresses.
struct Seen {
  std::string run;                          // trace, dmesg, reports, failures
  std::vector<struct page> pages;           // mem_map after the probe
  std::map<unsigned long, std::string> ram; // pages in use after the probe, by pfn
  std::string shadow;                       // KASAN machines: the shadow after the probe
};

void take_image(Machine& m, Seen* seen) {
  const kmm::PhysMem& mem = m.kernel().mem;
  seen->pages.assign(mem.mem_map, mem.mem_map + mem.nr_pages);
  for (unsigned long pfn = 0; pfn < mem.nr_pages; pfn++) {
    struct page& p = seen->pages[pfn];
    if (p.owner == kmm::PageOwner::None) continue;
    if (p.owner == kmm::PageOwner::Slab) p.slab.slab_cache = nullptr;
    const char* b = reinterpret_cast<const char*>(mem.direct_map) + pfn * kmm::PAGE_SIZE_;
    seen->ram[pfn] = kmm::PhysMem::test_bit(mem.stale, pfn)
                         ? std::string(kmm::PAGE_SIZE_, char(mem.fill))
                         : std::string(b, kmm::PAGE_SIZE_);
  }
  if (const kmm::KasanState* kasan = m.kernel().kasan.get())
    seen->shadow =
        std::string(reinterpret_cast<const char*>(kasan->dm_shadow), kasan->dm_shadow_size) +
        std::string(reinterpret_cast<const char*>(kasan->vm_shadow), kasan->vm_shadow_size);
}

// "nothing", or the first pfn whose struct page or (in-use) bytes differ.
std::string first_difference(const Seen& a, const Seen& b) {
  if (a.pages.size() != b.pages.size()) return "machine sizes";
  for (size_t pfn = 0; pfn < a.pages.size(); pfn++)
    if (std::memcmp(&a.pages[pfn], &b.pages[pfn], sizeof(struct page)) != 0)
      return "struct page of pfn " + std::to_string(pfn);
  for (const auto& [pfn, bytes] : a.ram) {
    auto it = b.ram.find(pfn);
    if (it == b.ram.end() || it->second != bytes) return "RAM of pfn " + std::to_string(pfn);
  }
  if (a.shadow.size() != b.shadow.size()) return "shadow sizes";
  for (size_t i = 0; i < a.shadow.size(); i++)
    if (a.shadow[i] != b.shadow[i]) return "KASAN shadow byte " + std::to_string(i);
  return "nothing";
}

Seen probe(Machine& m) {
  kmm::Scenario s = kmm::parse_scenario(kProbe, "probe.kmm");
  Seen seen;
  kmm::RunOptions opts;
  opts.at_end = [&](Machine& mm) { take_image(mm, &seen); };
  seen.run = kmm::format_run(kmm::run_scenario_on(m, s, opts));
  return seen;
}

// The probe on a fresh boot of `line` that takes over `old`'s host memory (the pool holds only
// it), so that host addresses kept in RAM, such as a slab's encoded free pointers, compare.
Seen probe_fresh(std::unique_ptr<Machine> old, const std::string& line) {
  const uint8_t* ram = old->kernel().mem.direct_map;
  kmm::physmem_drain_pool();
  old.reset();
  auto fresh = Machine::boot(line);
  EXPECT_EQ(fresh->kernel().mem.direct_map, ram) << "the fresh machine did not get the same RAM";
  return probe(*fresh);
}

std::vector<std::filesystem::path> corpus_files() {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(
           std::filesystem::path(KMM_SOURCE_DIR) / "corpus"))
    if (e.path().extension() == ".kmm") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Scenarios of these operations alone leave nothing a restore must refuse (no task, file,
// vmalloc area or cache created): each must restore.
bool page_level(const kmm::Scenario& s) {
  static const std::vector<std::string> ops = {"alloc_pages",
                                               "free_pages",
                                               "get_page",
                                               "put_page",
                                               "split_page",
                                               "alloc_pages_exact",
                                               "free_pages_exact",
                                               "write",
                                               "read",
                                               "fill",
                                               "cpu",
                                               "spin_lock",
                                               "spin_unlock",
                                               "local_irq_disable",
                                               "local_irq_enable"};
  for (const kmm::Op& op : s.ops)
    if (std::find(ops.begin(), ops.end(), kmm::scn::op_table()[op.code].name) == ops.end())
      return false;
  return true;
}

} // namespace

TEST(Recycle, RestoredMachineIsAFreshBoot) {
  unsigned compared = 0, page_level_runs = 0;
  for (const auto& path : corpus_files()) {
    SCOPED_TRACE(path.string());
    kmm::Scenario s = kmm::parse_scenario(read_file(path), path.string());
    auto m = Machine::boot(s.boot);
    kmm::BootImagePtr img = kmm::take_boot_image(m->kernel());
    if (!img) {
      // Only machines whose KFENCE pool the image does not hold go without.
      EXPECT_TRUE(m->kernel().kfence);
      continue;
    }
    kmm::run_scenario_on(*m, s);
    const bool restored = kmm::restore_boot_image(m->kernel(), *img);
    if (page_level(s)) {
      page_level_runs++;
      EXPECT_TRUE(restored || m->kernel().panicked) << "a page-level run could not be restored";
    }
    if (!restored) continue;
    EXPECT_EQ(m->kernel().mem.first_unclean_pristine(), m->kernel().mem.nr_pages)
        << "a page taken for pristine does not hold the boot fill";
    const Seen got = probe(*m);
    const Seen want = probe_fresh(std::move(m), s.boot);
    EXPECT_EQ(got.run, want.run);
    EXPECT_EQ(first_difference(got, want), "nothing") << "the restored machine differs";
    compared++;
  }
  EXPECT_GT(page_level_runs, 3u);
  // Scenarios that end with slab objects, CMA or DMA buffers still allocated restore too.
  EXPECT_GE(compared, page_level_runs + 10) << compared << " restored";
}

// A restore refuses when the machine holds what it cannot undo (here a cache created since and
// still alive; likewise a task, a file, a vmalloc area), and leaves the machine usable as it was.
TEST(Recycle, RestoreRefusesWhatItCannotUndo) {
  for (const char* ops :
       {"c0 = kmem_cache_create name=kept size=100\n", "t0 = task_spawn comm=kept\n",
        "f0 = file_create name=kept\n", "v0 = vmalloc size=9000\n"}) {
    SCOPED_TRACE(ops);
    auto m = Machine::boot("mem=16M");
    kmm::BootImagePtr img = kmm::take_boot_image(m->kernel());
    ASSERT_TRUE(img);
    kmm::run_scenario_on(*m, kmm::parse_scenario(ops, "kept.kmm"));
    const uint64_t refused = kmm::boot_image_refusals();
    EXPECT_FALSE(kmm::restore_boot_image(m->kernel(), *img));
    EXPECT_EQ(kmm::boot_image_refusals(), refused + 1);
    kmm::RunResult r = kmm::run_scenario_on(*m, kmm::parse_scenario(kProbe, "probe.kmm"));
    EXPECT_EQ(r.exit_status, 0) << kmm::format_run(r);
  }
}

// The same machine restored many times stays a fresh boot (the log, the clock and the random
// state go back each time; nothing accumulates).
TEST(Recycle, RepeatedRestoresStayFresh) {
  const char* const dirty = R"(p0 = alloc_pages order=4 gfp=GFP_KERNEL
fill p0 byte=0x5a
p1 = alloc_pages order=11 gfp=GFP_KERNEL
p2 = alloc_pages order=1 gfp=GFP_ATOMIC
cpu 1
p3 = alloc_pages order=0 gfp=GFP_KERNEL
free_pages p0
)";
  auto m = Machine::boot("mem=32M nr_cpus=2");
  kmm::BootImagePtr img = kmm::take_boot_image(m->kernel());
  ASSERT_TRUE(img);
  for (int i = 0; i < 20; i++) {
    kmm::run_scenario_on(*m, kmm::parse_scenario(dirty, "dirty.kmm"));
    ASSERT_TRUE(kmm::restore_boot_image(m->kernel(), *img)) << "round " << i;
  }
  const Seen got = probe(*m);
  const Seen want = probe_fresh(std::move(m), "mem=32M nr_cpus=2");
  EXPECT_EQ(got.run, want.run);
  EXPECT_EQ(first_difference(got, want), "nothing") << "the restored machine differs";
}

// A run that ends in a panic (out of memory with nothing to kill) and a pending kswapd wake-up
// is taken back too.
TEST(Recycle, PanickedMachineIsRestored) {
  std::string ops;
  for (int i = 0; i < 600; i++) // 16M holds 512 order-3 blocks; order 3 is not costly: OOM
    ops += "p" + std::to_string(i) + " = alloc_pages order=3 gfp=GFP_KERNEL\n";
  auto m = Machine::boot("mem=16M");
  kmm::BootImagePtr img = kmm::take_boot_image(m->kernel());
  ASSERT_TRUE(img);
  kmm::run_scenario_on(*m, kmm::parse_scenario(ops, "oom.kmm"));
  ASSERT_TRUE(m->kernel().panicked) << m->dmesg();
  ASSERT_TRUE(kmm::restore_boot_image(m->kernel(), *img));
  EXPECT_FALSE(m->kernel().panicked);
  const Seen got = probe(*m);
  const Seen want = probe_fresh(std::move(m), "mem=16M");
  EXPECT_EQ(got.run, want.run);
  EXPECT_EQ(first_difference(got, want), "nothing") << "the restored machine differs";
}

// A KASAN machine: the shadow written since boot (freed pages, slab red zones and quarantined
// objects, a vfree'd area) and ASan's mirror of it go back to the boot state, the quarantine
// empties, and KASAN still catches a use-after-free on the restored machine.
const char* const kKasanDirty = R"(p0 = alloc_pages order=2 gfp=GFP_KERNEL
fill p0 byte=0x11
free_pages p0
o0 = kmalloc size=100
o1 = kmalloc size=3000
kfree o0
c0 = kmem_cache_create name=gone size=72
o2 = kmem_cache_alloc c0
kmem_cache_free c0 o2
kmem_cache_destroy c0
v0 = vmalloc size=9000
write v0+0 len=8 byte=0x22
vfree v0
kfree o1
)";

TEST(Recycle, KasanMachineIsRestored) {
  const std::string line = "mem=32M nr_cpus=2 kasan=on";
  auto m = Machine::boot(line);
  kmm::BootImagePtr img = kmm::take_boot_image(m->kernel());
  ASSERT_TRUE(img);
  kmm::RunResult r = kmm::run_scenario_on(*m, kmm::parse_scenario(kKasanDirty, "dirty.kmm"));
  ASSERT_EQ(r.exit_status, 0) << kmm::format_run(r);
  ASSERT_GT(kmm::kasan_quarantine_bytes(m->kernel()), 0u) << "the run left nothing quarantined";
  ASSERT_FALSE(kmm::kasan_at_boot(m->kernel()));
  ASSERT_TRUE(kmm::restore_boot_image(m->kernel(), *img));
  EXPECT_TRUE(kmm::kasan_at_boot(m->kernel()));
  EXPECT_EQ(kmm::kasan_quarantine_bytes(m->kernel()), 0u);
#if KMM_ASAN
  const kmm::PhysMem& mem = m->kernel().mem;
  EXPECT_EQ(__asan_region_is_poisoned(mem.direct_map, mem.bytes), nullptr)
      << "ASan's mirror still holds the run's poison";
#endif
  const char* const uaf = R"(o0 = kmalloc size=64
kfree o0
read o0+0 len=1
)";
  kmm::RunResult after = kmm::run_scenario_on(*m, kmm::parse_scenario(uaf, "uaf.kmm"));
  EXPECT_NE(kmm::format_run(after).find("BUG: KASAN: slab-use-after-free"), std::string::npos)
      << kmm::format_run(after);
}

// After a restore, a KASAN machine's probe sees what a fresh boot's sees, shadow included.
TEST(Recycle, KasanShadowAfterRestoreIsABoots) {
  const std::string line = "mem=32M nr_cpus=2 kasan=on";
  auto m = Machine::boot(line);
  kmm::BootImagePtr img = kmm::take_boot_image(m->kernel());
  ASSERT_TRUE(img);
  kmm::run_scenario_on(*m, kmm::parse_scenario(kKasanDirty, "dirty.kmm"));
  ASSERT_TRUE(kmm::restore_boot_image(m->kernel(), *img));
  const Seen got = probe(*m);
  const Seen want = probe_fresh(std::move(m), line);
  EXPECT_FALSE(got.shadow.empty());
  EXPECT_EQ(got.run, want.run);
  EXPECT_EQ(first_difference(got, want), "nothing") << "the restored machine differs";
}

// A restore copies back the struct pages of what the run touched, not the whole mem_map: one
// page taken and given back on a 256 MiB machine (65536 struct pages) splits one order-10 block
// and fills a pcp list; a few groups of 64 come back, and the machine is still a fresh boot.
TEST(Recycle, RestoreCopiesWhatTheRunTouched) {
  auto m = Machine::boot("mem=256M nr_cpus=2");
  kmm::BootImagePtr img = kmm::take_boot_image(m->kernel());
  ASSERT_TRUE(img);
  kmm::run_scenario_on(*m, kmm::parse_scenario("p0 = alloc_pages order=0 gfp=GFP_KERNEL\n"
                                               "free_pages p0\n",
                                               "one.kmm"));
  const uint64_t before = kmm::boot_image_pages_copied();
  ASSERT_TRUE(kmm::restore_boot_image(m->kernel(), *img));
  const uint64_t copied = kmm::boot_image_pages_copied() - before;
  EXPECT_GT(copied, 0u);
  EXPECT_LE(copied, 64u * 16) << "of " << m->kernel().mem.nr_pages;
  const Seen got = probe(*m);
  const Seen want = probe_fresh(std::move(m), "mem=256M nr_cpus=2");
  EXPECT_EQ(got.run, want.run);
  EXPECT_EQ(first_difference(got, want), "nothing") << "the restored machine differs";
}
