// KFENCE (see kfence.h). Reports follow mm/kfence/report.c: the title line, the access line
// ("Out-of-bounds write at 0x... (1B left of kfence-#3):"), the object line
// ("kfence-#3: 0x...-0x..., size=32, cache=kmalloc-32") and who allocated / freed it.
#include "kfence.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>

#include "bug.h"
#include "fault.h"
#include "kernel.h"
#include "kmm/machine.h"
#include "page_alloc.h"

namespace kmm {

static constexpr uintptr_t kPage = PAGE_SIZE_;

static uint8_t canary(uintptr_t a) { return static_cast<uint8_t>(0xaa ^ (a & 7)); }

static void protect(uintptr_t page, bool none) {
  mprotect(reinterpret_cast<void*>(page), kPage, none ? PROT_NONE : PROT_READ | PROT_WRITE);
}

bool is_kfence_address(const Kernel& k, const void* p) {
  if (!k.kfence) return false;
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  return a >= k.kfence->pool && a < k.kfence->pool + k.kfence->pool_pages * kPage;
}

static std::string object_lines(Kernel& k, const kfence_metadata& m, size_t idx) {
  std::string t =
      strprintf("kfence-#%zu: 0x%016llx-0x%016llx, size=%zu, cache=%s\n\n", idx,
                (unsigned long long)k.mem.kva(reinterpret_cast<void*>(m.addr)),
                (unsigned long long)k.mem.kva(reinterpret_cast<void*>(m.addr + m.size - 1)), m.size,
                m.cache.c_str());
  t += strprintf("allocated by task %d on cpu %u at %llu.%06llus:\n\n", m.alloc_pid, m.alloc_cpu,
                 (unsigned long long)(m.alloc_time / 1000000),
                 (unsigned long long)(m.alloc_time % 1000000));
  if (m.state == KfenceState::Freed)
    t += strprintf("freed by task %d on cpu %u at %llu.%06llus:\n\n", m.free_pid, m.free_cpu,
                   (unsigned long long)(m.free_time / 1000000),
                   (unsigned long long)(m.free_time % 1000000));
  return t;
}

static void kfence_report(Kernel& k, const std::string& title, const std::string& access,
                          const kfence_metadata* m, size_t idx, uint64_t addr) {
  std::string t = "==================================================================\n";
  t += title + "\n\n" + access + "\n";
  if (m) t += object_lines(k, *m, idx);
  t += cpu_line(k);
  t += "==================================================================\n";
  Report r{ReportKind::Kfence, title, t};
  r.addr = addr;
  if (m) r.cache = m->cache;
  emit_report(k, std::move(r));
}

// kfence_handle_page_fault(): a guard page is an out-of-bounds access to the nearer allocated
// neighbour; an object page is a use-after-free. The page is then unprotected so the access
// completes, as the kernel does.
static bool kfence_fault(Kernel& k, uintptr_t addr, bool write) {
  KfencePool& kp = *k.kfence;
  const char* rw = write ? "write" : "read";
  uintptr_t page = addr & ~(kPage - 1);
  size_t pgidx = (page - kp.pool) / kPage;
  uint64_t kaddr = k.mem.kva(reinterpret_cast<void*>(addr));
  if (pgidx >= 2 && pgidx % 2 == 0) { // an object page: the object was freed
    size_t idx = (pgidx - 2) / 2;
    kfence_metadata& m = kp.objects[idx];
    kfence_report(k, strprintf("BUG: KFENCE: use-after-free %s in kfence_fault", rw),
                  strprintf("Use-after-free %s at 0x%016llx (in kfence-#%zu):", rw,
                            (unsigned long long)kaddr, idx),
                  &m, idx, kaddr);
    protect(page, false);
    return true;
  }
  // A guard page: the object before it (page pgidx - 1) or after it (pgidx + 1).
  const kfence_metadata* best = nullptr;
  size_t best_idx = 0;
  uintptr_t best_dist = ~uintptr_t(0);
  bool left_of = false;
  for (long d : {-1l, 1l}) {
    long p = static_cast<long>(pgidx) + d;
    if (p < 2 || p % 2 || static_cast<size_t>(p) >= kp.pool_pages) continue;
    size_t idx = (static_cast<size_t>(p) - 2) / 2;
    const kfence_metadata& m = kp.objects[idx];
    if (m.state == KfenceState::Unused) continue;
    uintptr_t dist = addr < m.addr ? m.addr - addr : addr - (m.addr + m.size) + 1;
    if (dist < best_dist) {
      best = &m;
      best_idx = idx;
      best_dist = dist;
      left_of = addr < m.addr;
    }
  }
  // The distance printed is from the object's start on the right, as report.c prints it.
  unsigned long shown = best ? (left_of ? best->addr - addr : addr - best->addr) : 0;
  std::string access =
      best ? strprintf("Out-of-bounds %s at 0x%016llx (%luB %s of kfence-#%zu):", rw,
                       (unsigned long long)kaddr, shown, left_of ? "left" : "right", best_idx)
           : strprintf("Out-of-bounds %s at 0x%016llx:", rw, (unsigned long long)kaddr);
  kfence_report(k, strprintf("BUG: KFENCE: out-of-bounds %s in kfence_fault", rw), access, best,
                best_idx, kaddr);
  protect(page, false);
  return true;
}

void kfence_init(Kernel& k) {
  unsigned interval = static_cast<unsigned>(k.params.kfence_sample_interval);
  if (!interval) return;
  size_t objects = static_cast<size_t>(k.params.kfence_num_objects);
  size_t pages = (objects + 1) * 2;
  unsigned order = 0;
  while ((1ul << order) < pages) order++;
  struct page* block =
      order <= MAX_PAGE_ORDER_
          ? __alloc_pages(k, GFP_KERNEL | __GFP_NOWARN | __GFP_COMP, order, PageOwner::Kfence)
          : nullptr;
  if (!block) {
    k.log.printk("kfence: failed to allocate the pool; KFENCE disabled");
    return;
  }
  auto kp = std::make_unique<KfencePool>();
  kp->pool = reinterpret_cast<uintptr_t>(k.mem.page_address(block));
  kp->pool_pages = pages;
  kp->pool_pfn = k.mem.page_to_pfn(block);
  kp->sample_interval = interval;
  kp->objects.resize(objects);
  for (size_t i = 0; i < objects; i++) {
    kp->objects[i].page = kp->pool + (2 + 2 * i) * kPage;
    kp->freelist.push_back(i);
  }
  // Guard pages: 0, 1 and every odd page after an object page.
  protect(kp->pool, true);
  for (size_t p = 1; p < pages; p += 2) protect(kp->pool + p * kPage, true);
  k.kfence = std::move(kp);
  register_fault_range(k, k.kfence->pool, k.kfence->pool + pages * kPage, kfence_fault);
  k.log.printk(strprintf(
      "kfence: initialized - using %zu bytes for %zu objects at 0x%016llx-0x%016llx", pages * kPage,
      objects, (unsigned long long)k.mem.kva(reinterpret_cast<void*>(k.kfence->pool)),
      (unsigned long long)k.mem.kva(reinterpret_cast<void*>(k.kfence->pool + pages * kPage))));
}

void* kfence_alloc(Kernel& k, const char* cache, size_t size, size_t align, gfp_t gfp) {
  if (!k.kfence || size == 0 || size > kPage) return nullptr;
  KfencePool& kp = *k.kfence;
  std::lock_guard<std::mutex> guard(kp.lock);
  if (++kp.counter % kp.sample_interval) return nullptr;
  if (kp.freelist.empty()) return nullptr;
  size_t idx = kp.freelist.front();
  kp.freelist.erase(kp.freelist.begin());
  kfence_metadata& m = kp.objects[idx];
  protect(m.page, false);
  // Left or right of the page, at random (seeded): right-aligned objects end at the guard page.
  uintptr_t addr = m.page;
  if (k.random() & 1) {
    addr = m.page + kPage - size;
    if (align > 1) addr &= ~(uintptr_t(align) - 1);
  }
  m.addr = addr;
  m.size = size;
  m.cache = cache;
  m.state = KfenceState::Allocated;
  m.alloc_pid = k.cpu().current.pid;
  m.alloc_cpu = k.cpu_id();
  m.alloc_time = kp.counter;
  uint8_t* pg = reinterpret_cast<uint8_t*>(m.page);
  for (size_t i = 0; i < kPage; i++) {
    uintptr_t a = m.page + i;
    if (a < addr || a >= addr + size) pg[i] = canary(a);
  }
  if (gfp & __GFP_ZERO) std::memset(reinterpret_cast<void*>(addr), 0, size);
  return reinterpret_cast<void*>(addr);
}

size_t kfence_ksize(Kernel& k, const void* p) {
  if (!is_kfence_address(k, p)) return 0;
  KfencePool& kp = *k.kfence;
  std::lock_guard<std::mutex> guard(kp.lock);
  size_t pgidx = (reinterpret_cast<uintptr_t>(p) - kp.pool) / kPage;
  if (pgidx < 2 || pgidx % 2) return 0;
  const kfence_metadata& m = kp.objects[(pgidx - 2) / 2];
  return m.state == KfenceState::Allocated ? m.size : 0;
}

void kfence_free(Kernel& k, const void* p, const char* fn) {
  KfencePool& kp = *k.kfence;
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  uint64_t kaddr = k.mem.kva(p);
  std::unique_lock<std::mutex> guard(kp.lock);
  size_t pgidx = (a - kp.pool) / kPage;
  if (pgidx < 2 || pgidx % 2) {
    guard.unlock();
    kfence_report(k, strprintf("BUG: KFENCE: invalid free in %s", fn),
                  strprintf("Invalid free of 0x%016llx:", (unsigned long long)kaddr), nullptr, 0,
                  kaddr);
    return;
  }
  size_t idx = (pgidx - 2) / 2;
  kfence_metadata& m = kp.objects[idx];
  if (m.state != KfenceState::Allocated || a != m.addr) {
    kfence_metadata copy = m;
    guard.unlock();
    kfence_report(
        k, strprintf("BUG: KFENCE: invalid free in %s", fn),
        strprintf("Invalid free of 0x%016llx (in kfence-#%zu):", (unsigned long long)kaddr, idx),
        &copy, idx, kaddr);
    return;
  }
  // check_canary(): the first corrupted byte and the 16 bytes from there.
  const uint8_t* pg = reinterpret_cast<const uint8_t*>(m.page);
  size_t bad = kPage;
  for (size_t i = 0; i < kPage && bad == kPage; i++) {
    uintptr_t b = m.page + i;
    if ((b < m.addr || b >= m.addr + m.size) && pg[i] != canary(b)) bad = i;
  }
  m.state = KfenceState::Freed;
  m.free_pid = k.cpu().current.pid;
  m.free_cpu = k.cpu_id();
  m.free_time = kp.counter;
  kfence_metadata copy = m;
  if (bad != kPage) {
    std::string bytes = "[";
    for (size_t i = bad; i < bad + 16 && i < kPage; i++) {
      uintptr_t b = m.page + i;
      bool inside = b >= m.addr && b < m.addr + m.size;
      bytes += (!inside && pg[i] != canary(b)) ? strprintf(" 0x%02x", pg[i]) : " .";
    }
    bytes += " ]";
    uint64_t where = k.mem.kva(reinterpret_cast<const void*>(m.page + bad));
    protect(m.page, true);
    kp.freelist.push_back(idx);
    guard.unlock();
    kfence_report(k, strprintf("BUG: KFENCE: memory corruption in %s", fn),
                  strprintf("Corrupted memory at 0x%016llx %s (in kfence-#%zu):",
                            (unsigned long long)where, bytes.c_str(), idx),
                  &copy, idx, where);
    return;
  }
  protect(m.page, true);
  kp.freelist.push_back(idx);
}

void kfence_validate(Kernel& k, std::vector<std::string>& errors) {
  if (!k.kfence) return;
  KfencePool& kp = *k.kfence;
  std::lock_guard<std::mutex> guard(kp.lock);
  struct page* head = k.mem.pfn_to_page(kp.pool_pfn);
  if (!(head->flags & PG_alloc) || head->owner != PageOwner::Kfence)
    errors.push_back("kfence: the pool is no longer an allocated KFENCE block");
  size_t unused = 0;
  for (auto& m : kp.objects) unused += m.state != KfenceState::Allocated;
  if (unused != kp.freelist.size())
    errors.push_back(
        strprintf("kfence: %zu free slots but %zu on the freelist", unused, kp.freelist.size()));
}

} // namespace kmm
