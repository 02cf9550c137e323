// vmalloc: rc::state commands vmalloc / vzalloc / vfree / fill against a list of areas.
//
//   VmallocProp.MatchesAreaModel  areas (with their guard page) never overlap; the page after
//                                 each area is a real guard (not readable, no vmalloc_to_page);
//                                 bytes written through the vmalloc address are seen through the
//                                 direct map of vmalloc_to_page and back; vzalloc is zeroed;
//                                 VmallocUsed returns to its boot value; validate holds.
//
// vmalloc has no scenario operation yet: show() prints the line the language will use
// ("v0 = vmalloc size=N", "vfree v0", "fill v0 byte=B").
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cerrno>
#include <cstring>
#include <unistd.h>

#include "model_machine.h"

namespace kmm::prop {
namespace {

struct VmGen {
  std::map<std::string, unsigned long> live; // name -> size
  unsigned next = 0;
};

struct Area {
  uint8_t* ptr = nullptr;
  unsigned long size = 0;
  uint8_t byte = 0; // what every byte holds (0 after vzalloc)
};

// Is the host page at `a` readable? write(2) to a pipe fails with EFAULT instead of faulting, so
// the guard page is probed without a signal and without changing it.
bool readable(const void* a) {
  static int fds[2] = {-1, -1};
  if (fds[0] < 0 && pipe(fds) != 0) return true;
  ssize_t n = write(fds[1], a, 1);
  if (n == 1) {
    char c;
    (void)!read(fds[0], &c, 1);
    return true;
  }
  return !(n < 0 && errno == EFAULT);
}

struct VmSut : Sut {
  std::map<std::string, Area> areas;
  long boot_used;
  explicit VmSut(const std::string& boot) : Sut(boot) { boot_used = meminfo("VmallocUsed"); }
};

using Cmd = rc::state::Command<VmGen, VmSut>;

unsigned long span(unsigned long size) { return (size + PAGE_SIZE - 1) & PAGE_MASK; }

// Every byte of the area seen both ways: the vmalloc address and the direct map of its page.
void check_contents(VmSut& s, const std::string& name, const Area& a) {
  for (unsigned long off = 0; off < span(a.size); off += PAGE_SIZE) {
    struct page* pg = vmalloc_to_page(a.ptr + off);
    RC_ASSERT(pg != nullptr);
    const auto* direct = static_cast<const uint8_t*>(page_address(pg));
    unsigned long n = std::min<unsigned long>(PAGE_SIZE, a.size - off);
    for (unsigned long i = 0; i < n; i += 61) {
      if (a.ptr[off + i] != a.byte || direct[i] != a.byte)
        RC_LOG() << name << "+" << off + i << ": vmalloc " << int(a.ptr[off + i]) << " direct "
                 << int(direct[i]) << " expected " << int(a.byte) << "\n";
      RC_ASSERT(a.ptr[off + i] == a.byte);
      RC_ASSERT(direct[i] == a.byte);
    }
  }
}

struct Vmalloc : Cmd {
  std::string name;
  unsigned long size = *rc::gen::weightedOneOf<unsigned long>(
      {{3, rc::gen::inRange(1ul, 3 * PAGE_SIZE)}, {2, rc::gen::inRange(1ul, 64 * PAGE_SIZE)}});
  bool zero = *rc::gen::arbitrary<bool>();
  explicit Vmalloc(const VmGen& g) : name("v" + std::to_string(g.next)) {}
  void checkPreconditions(const VmGen& g) const override { RC_PRE(!g.live.count(name)); }
  void apply(VmGen& g) const override {
    g.live[name] = size;
    g.next = std::max(g.next, unsigned(std::stoul(name.substr(1))) + 1);
  }
  void run(const VmGen&, VmSut& s) const override {
    s.step(*this);
    size_t r0 = s.nreports();
    auto* p = static_cast<uint8_t*>(zero ? vzalloc(size) : vmalloc(size));
    RC_ASSERT(s.nreports() == r0);
    Area a{p, size, 0};
    s.areas[name] = a;
    if (!p) return;
    RC_ASSERT(is_vmalloc_addr(p));
    RC_ASSERT(reinterpret_cast<uintptr_t>(p) % PAGE_SIZE == 0u);
    // Disjoint from every live area, guard pages included.
    uintptr_t lo = reinterpret_cast<uintptr_t>(p), hi = lo + span(size) + PAGE_SIZE;
    for (auto& [n, o] : s.areas) {
      if (n == name || !o.ptr) continue;
      uintptr_t olo = reinterpret_cast<uintptr_t>(o.ptr), ohi = olo + span(o.size) + PAGE_SIZE;
      if (lo < ohi && olo < hi) RC_LOG() << name << " overlaps " << n << "\n";
      RC_ASSERT(!(lo < ohi && olo < hi));
    }
    // The guard page: not mapped for vmalloc_to_page, and really inaccessible.
    RC_ASSERT(vmalloc_to_page(p + span(size)) == nullptr);
    RC_ASSERT(!readable(p + span(size)));
    if (zero) check_contents(s, name, a);
    std::memset(p, 0x5a, size);
    s.areas[name].byte = 0x5a;
  }
  void show(std::ostream& os) const override {
    os << name << " = " << (zero ? "vzalloc" : "vmalloc") << " size=" << size;
  }
};

struct Pick {
  static std::string from(const VmGen& g) {
    RC_PRE(!g.live.empty());
    std::vector<std::string> v;
    for (auto& [n, sz] : g.live) v.push_back(n);
    return *rc::gen::elementOf(v);
  }
};

// Writes through the direct map of each backing page; the vmalloc address must see it.
struct Fill : Cmd {
  std::string name;
  uint8_t byte = *rc::gen::inRange<int>(0, 256);
  explicit Fill(const VmGen& g) : name(Pick::from(g)) {}
  void checkPreconditions(const VmGen& g) const override { RC_PRE(g.live.count(name) == 1u); }
  void run(const VmGen&, VmSut& s) const override {
    s.step(*this);
    Area& a = s.areas.at(name);
    if (!a.ptr) return;
    check_contents(s, name, a);
    for (unsigned long off = 0; off < span(a.size); off += PAGE_SIZE) {
      auto* direct = static_cast<uint8_t*>(page_address(vmalloc_to_page(a.ptr + off)));
      std::memset(direct, byte, std::min<unsigned long>(PAGE_SIZE, a.size - off));
    }
    a.byte = byte;
    check_contents(s, name, a);
  }
  void show(std::ostream& os) const override {
    os << "fill " << name << " byte=" << byte_hex(byte);
  }
};

struct Vfree : Cmd {
  std::string name;
  explicit Vfree(const VmGen& g) : name(Pick::from(g)) {}
  void checkPreconditions(const VmGen& g) const override { RC_PRE(g.live.count(name) == 1u); }
  void apply(VmGen& g) const override { g.live.erase(name); }
  void run(const VmGen&, VmSut& s) const override {
    s.step(*this);
    Area a = s.areas.at(name);
    s.areas.erase(name);
    if (!a.ptr) return;
    check_contents(s, name, a);
    size_t r0 = s.nreports();
    vfree(a.ptr);
    RC_ASSERT(s.nreports() == r0);
    RC_ASSERT(!readable(a.ptr)); // unmapped at once, even while the range awaits a purge
  }
  void show(std::ostream& os) const override { os << "vfree " << name; }
};

} // namespace

RC_GTEST_PROP(VmallocProp, MatchesAreaModel, ()) {
  VmSut s("mem=32M nr_cpus=2");
  VmGen g;
  auto gen = rc::state::gen::execOneOfWithArgs<Vmalloc, Vmalloc, Fill, Vfree>();
  auto cmds = *rc::gen::resize(40 * scale(), rc::state::gen::commands(g, gen));
  rc::state::runAll(cmds, g, s);
  s.check_valid();
  for (auto& [n, a] : s.areas) {
    s.note("vfree " + n);
    if (a.ptr) vfree(a.ptr);
  }
  s.areas.clear();
  RC_ASSERT(s.meminfo("VmallocUsed") == s.boot_used);
  RC_ASSERT(s.titles().empty());
  s.check_valid();
}

} // namespace kmm::prop
