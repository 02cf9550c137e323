// Boot and the per-thread machine/CPU scopes (see kmm/machine.h).
//
// Boot order, as start_kernel() does it: parse the command line; set up physical memory and the
// zones (free_area_init); reserve pfn 0; hand all other pages to the buddy allocator
// (memblock_free_all); compute min_free_kbytes, watermarks and pcp sizes
// (init_per_zone_wmark_min); register /proc files; log the boot lines.
#include "kmm/machine.h"

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "buddy.h"
#include "bug.h"
#include "cma.h"
#include "fault.h"
#include "kasan.h"
#include "kernel.h"
#include "kfence.h"
#include "pagecache.h"
#include "pressure_init.h"
#include "shrinker.h"
#include "slub.h"
#include "task.h"
#include "vmalloc.h"
#include "vmscan.h"
#include "watermark.h"

namespace kmm {

constinit thread_local Kernel* Kernel::current KMM_TLS_INITIAL_EXEC = nullptr;
constinit thread_local int Kernel::current_cpu KMM_TLS_INITIAL_EXEC = 0;

uint64_t Kernel::random() {
  // splitmix64: one 64-bit state, deterministic from kmm.seed.
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

Kernel* current_kernel() { return Kernel::current; }

Machine* current_machine() {
  // The Machine owns its Kernel; the Kernel records its Machine for this lookup.
  Kernel* k = Kernel::current;
  return k ? k->machine : nullptr;
}

// The boot log, in the kernel's order: banner and command line first (setup_arch), the zone
// ranges and memory totals once the buddy allocator holds the pages (mm_core_init), SMP last.
static void log_banner(Kernel& k) {
  k.log.printk("Linux version 6.12.0-kmm (kmm simulated machine)");
  k.log.printk("Command line: " + k.params.cmdline);
}

static void log_memory(Kernel& k) {
  k.log.printk("Zone ranges:");
  for (auto& z : k.zones) {
    if (!z.populated()) {
      k.log.printk(strprintf("  %-8s empty", z.name));
      continue;
    }
    uint64_t start = uint64_t(z.zone_start_pfn) << PAGE_SHIFT_;
    uint64_t end = (uint64_t(z.end_pfn()) << PAGE_SHIFT_) - 1;
    // %#018Lx in the kernel: "0x" and 16 digits, also for zero.
    k.log.printk(strprintf("  %-8s [mem 0x%016llx-0x%016llx]", z.name, (unsigned long long)start,
                           (unsigned long long)end));
  }
  unsigned long total = 0;
  for (auto& z : k.zones) total += z.managed_pages;
  k.log.printk(strprintf("Built 1 zonelists, mobility grouping on.  Total pages: %lu", total));
  k.log.printk(strprintf("Memory: %luK/%lluK available", total << 2,
                         (unsigned long long)(k.mem.bytes >> 10)));
}

static void log_smp(Kernel& k) {
  k.log.printk(strprintf("smp: Brought up 1 node, %u CPU%s", k.nr_cpus, k.nr_cpus > 1 ? "s" : ""));
}

std::unique_ptr<Machine> Machine::boot(const std::string& cmdline) {
  auto k = std::make_unique<Kernel>();
  k->params = parse_cmdline(cmdline);
  k->nr_cpus = static_cast<unsigned>(k->params.nr_cpus);
  k->rng_state = k->params.seed;
  k->watermark_scale_factor = static_cast<unsigned>(k->params.watermark_scale_factor);
  log_banner(*k);
  // page_poison: all RAM starts poisoned, as the kernel poisons every page it frees at boot.
  k->mem.init(k->params.mem, k->params.page_poison ? 0xaa : 0);
  setup_zones(*k);

  cma_reserve(*k); // marks the CMA pageblocks before their pages reach the free lists
  // pfn 0 is reserved; everything else goes to the buddy allocator.
  k->mem.mem_map[0].flags = PG_reserved;
  for (auto& z : k->zones) {
    if (!z.populated()) continue;
    std::lock_guard<std::mutex> guard(z.lock);
    free_range_at_boot(*k, z, std::max(z.zone_start_pfn, 1ul), z.end_pfn());
  }
  init_per_zone_wmark_min(*k);
  log_memory(*k);
  kmem_cache_init(*k);                  // slab caches and the kmalloc caches (slab_common.cpp)
  if (k->params.min_free_kbytes >= 0) { // as a write to /proc/sys/vm/min_free_kbytes
    k->min_free_kbytes = static_cast<int>(k->params.min_free_kbytes);
    k->user_min_free_kbytes = k->min_free_kbytes;
    setup_per_zone_wmarks(*k);
  }
  register_mm_procfs(*k);
  vmalloc_init(*k);
  register_vmalloc_procfs(*k);
  kasan_init(*k);
  kfence_init(*k);
  kmem_cache_init_late(*k); // the slab fast paths know whether KASAN or KFENCE must see them
  pressure_init(*k);        // tasks, page cache, reclaim, kswapd, OOM (installs the pressure hooks)
  register_cma_procfs(*k);
  log_smp(*k);
  std::unique_ptr<Machine> m(new Machine(std::move(k)));
  m->k_->machine = m.get();
  return m;
}

Kernel::~Kernel() {
  pressure_exit(*this); // stops the kswapd thread before anything it uses goes away
  unregister_fault_ranges(*this);
}

Machine::Machine(std::unique_ptr<Kernel> k) : k_(std::move(k)) {}

Machine::~Machine() {
  if (Kernel::current == k_.get()) Kernel::current = nullptr;
}

std::string Machine::dmesg() const { return k_->log.text(); }
const std::vector<Report>& Machine::reports() const { return k_->reports; }
void Machine::clear_reports() {
  std::lock_guard<std::mutex> guard(k_->report_lock);
  k_->reports.clear();
}
const std::string& Machine::cmdline() const { return k_->params.cmdline; }
unsigned Machine::nr_cpus() const { return k_->nr_cpus; }
uint64_t Machine::mem_bytes() const { return k_->mem.bytes; }

// /proc access runs with this machine current (as CPU 0 unless the caller holds a CPU scope).
std::string Machine::proc_read(const std::string& path) {
  ProcFile f;
  if (!k_->procfs.lookup(*k_, path, &f)) throw std::invalid_argument("no such file: " + path);
  if (!f.read) throw std::invalid_argument("file is write-only: " + path);
  Kernel* prev = Kernel::current;
  Kernel::current = k_.get();
  std::string out = f.read(*k_);
  Kernel::current = prev;
  return out;
}

int Machine::proc_write(const std::string& path, const std::string& text) {
  ProcFile f;
  if (!k_->procfs.lookup(*k_, path, &f)) return -ENOENT;
  if (!f.write) return -EACCES;
  Kernel* prev = Kernel::current;
  Kernel::current = k_.get();
  int ret = f.write(*k_, text);
  Kernel::current = prev;
  return ret;
}

MachineScope::MachineScope(Machine& m) : prev_k_(Kernel::current), prev_cpu_(Kernel::current_cpu) {
  Kernel::current = &m.kernel();
  Kernel::current_cpu = 0;
}

MachineScope::~MachineScope() {
  Kernel::current = prev_k_;
  Kernel::current_cpu = prev_cpu_;
}

CpuScope::CpuScope(Machine& m, unsigned cpu)
    : prev_k_(Kernel::current), prev_cpu_(Kernel::current_cpu) {
  if (cpu >= m.nr_cpus())
    throw std::out_of_range("CpuScope: cpu " + std::to_string(cpu) + " but the machine has " +
                            std::to_string(m.nr_cpus()) + " CPUs");
  Kernel::current = &m.kernel();
  Kernel::current_cpu = static_cast<int>(cpu);
}

CpuScope::~CpuScope() {
  Kernel::current = prev_k_;
  Kernel::current_cpu = prev_cpu_;
}

} // namespace kmm
