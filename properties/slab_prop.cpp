// SLUB and kmalloc: rc::state commands against a map of live objects (cache, requested size,
// the byte every requested byte holds), and the detection properties.
//
//   SlabProp.MatchesObjectModel   objects disjoint, aligned to their cache's alignment, inside a
//                                 slab of their cache; a ctor cache's fresh objects are in the
//                                 ctor state; kzalloc/zalloc zeroed; ksize >= requested; krealloc
//                                 keeps the prefix; a wrong-cache free and a double free are each
//                                 reported once and change nothing else (contents, validate); a
//                                 freed object's free pointer is the hardened encoding; after
//                                 kmem_cache_shrink, /sys/kernel/slab/<c>/objects equals the
//                                 model's live (and leaked) objects of c
//   SlabProp.CountsAcrossCpus     the same without slub_debug (the lock-free fast paths) on two
//                                 CPUs: objects freed on another CPU than the one that allocated
//                                 them (remote frees to a slab that is not the CPU slab)
//   SlabDetect.RedZoneWriteReported   any byte of a live object's left or right red zone written,
//                                 then the object freed: exactly one "... Redzone overwritten"
//   SlabDetect.UseAfterFreeReported   any byte of a freed (poisoned) object written, then the cache
//                                 validated: exactly one "Poison overwritten"
//   SlabDetect.SilentWithoutDebug     the same corruptions with slub_debug off: no report
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cstring>

#include "model_machine.h"

#include "slub.h"

namespace kmm::prop {
namespace {

constexpr uint8_t kCtorByte = 0xc7;
void ctor_fill(void* p) { std::memset(p, kCtorByte, 48); }

struct Obj {
  size_t size = 0;
  int cache = -1; // -1 kmalloc, else index into the custom caches
};
struct SlabGen {
  std::map<std::string, Obj> live;
  unsigned next = 0;
};

// Custom caches: c0 has a constructor (48-byte objects), c1 is plain with 64-byte alignment.
struct CacheSpec {
  const char* name;
  unsigned size, align;
  void (*ctor)(void*);
};
const CacheSpec kCaches[] = {{"prop_ctor", 48, 16, ctor_fill}, {"prop_plain", 100, 64, nullptr}};

struct Live {
  uint8_t* p = nullptr;
  size_t size = 0;
  int cache = -1;
  uint8_t byte = 0;
};

struct SlabSut : Sut {
  struct kmem_cache* caches[2] = {};
  std::map<std::string, Live> objs;
  std::vector<std::pair<uint8_t*, int>> leaked; // wrong-cache frees leak the object, as the kernel
  std::unique_ptr<CpuScope> cpu;                // the CPU the commands run on (OnCpu), else 0
  explicit SlabSut(const std::string& boot) : Sut(boot) {
    for (int i = 0; i < 2; i++) {
      caches[i] =
          kmem_cache_create(kCaches[i].name, kCaches[i].size, kCaches[i].align, 0, kCaches[i].ctor);
      note("c" + std::to_string(i) + " = kmem_cache_create name=" + kCaches[i].name +
           " size=" + std::to_string(kCaches[i].size) +
           " align=" + std::to_string(kCaches[i].align) + (kCaches[i].ctor ? " ctor=fill" : ""));
    }
  }
};
using Cmd = rc::state::Command<SlabGen, SlabSut>;

// CONFIG_SLAB_FREELIST_HARDENED (mm/slub.c freelist_ptr_encode): the free pointer of a free
// object, at object + s->offset, is stored as next ^ s->random ^ swab64(address of the pointer)
// (slub.cpp freelist_ptr). Decoded, it must be NULL or another object of the same slab: a plain
// pointer stored in the clear decodes to garbage.
void check_free_pointer(const std::string& name, void* obj) {
  struct page* pg = virt_to_page(obj);
  if (!pg) return;
  pg = compound_head(pg);
  if (!(pg->flags & PG_slab)) return; // the slab went back to the page allocator
  const struct kmem_cache* c = pg->slab.slab_cache;
  uintptr_t at = reinterpret_cast<uintptr_t>(obj) + c->offset;
  uint64_t raw;
  std::memcpy(&raw, reinterpret_cast<void*>(at), sizeof raw);
  uintptr_t next = raw ^ c->random ^ __builtin_bswap64(at);
  if (!next) return;
  uintptr_t first = reinterpret_cast<uintptr_t>(page_address(pg)) + c->red_left_pad;
  bool ok = next >= first && (next - first) % c->size == 0 &&
            (next - first) / c->size < pg->slab.objects && next != reinterpret_cast<uintptr_t>(obj);
  if (!ok)
    RC_LOG() << "# " << name << " freed: stored free pointer " << hex(raw) << " decodes to "
             << hex(next) << ", not an object of its slab (plain pointer in the clear?)\n";
  RC_ASSERT(ok);
}

bool all_bytes(const uint8_t* p, size_t n, uint8_t b) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != b) return false;
  return true;
}

void check_all_contents(SlabSut& s) {
  for (auto& [n, o] : s.objs) {
    if (ZERO_OR_NULL_PTR(o.p)) continue;
    if (!all_bytes(o.p, o.size, o.byte)) RC_LOG() << n << " lost its contents\n";
    RC_ASSERT(all_bytes(o.p, o.size, o.byte));
  }
}

// The object lies inside a slab of `s` and is aligned to its alignment; no live object overlaps.
void check_placement(SlabSut& s, const std::string& name, const Live& o) {
  struct page* pg = virt_to_page(o.p);
  RC_ASSERT(pg != nullptr);
  pg = compound_head(pg);
  RC_ASSERT((pg->flags & PG_slab) != 0u);
  struct kmem_cache* c = pg->slab.slab_cache;
  if (o.cache >= 0) RC_ASSERT(c == s.caches[o.cache]);
  RC_ASSERT(reinterpret_cast<uintptr_t>(o.p) % c->align == 0u);
  if (o.cache < 0 && (o.size & (o.size - 1)) == 0 && o.size >= 8)
    RC_ASSERT(reinterpret_cast<uintptr_t>(o.p) % o.size == 0u); // kmalloc: natural alignment
  auto* slab_start = static_cast<uint8_t*>(page_address(pg));
  size_t slab_bytes = PAGE_SIZE << compound_order(pg);
  RC_ASSERT(o.p >= slab_start);
  RC_ASSERT(o.p + o.size <= slab_start + slab_bytes);
  for (auto& [n, x] : s.objs) {
    if (n == name || ZERO_OR_NULL_PTR(x.p)) continue;
    bool overlap =
        o.p < x.p + std::max<size_t>(x.size, 1) && x.p < o.p + std::max<size_t>(o.size, 1);
    if (overlap) RC_LOG() << name << " overlaps " << n << "\n";
    RC_ASSERT(!overlap);
  }
}

// kmalloc_index(): the kmalloc-N cache serving a request of `size` bytes (1..8k): powers of two
// from 8, with kmalloc-96 for 65..96 and kmalloc-192 for 129..192.
size_t kmalloc_class(size_t size) {
  if (size > 64 && size <= 96) return 96;
  if (size > 128 && size <= 192) return 192;
  size_t c = 8;
  while (c < size) c <<= 1;
  return c;
}

rc::Gen<size_t> gen_size() {
  // Size-class boundaries (kmalloc-N exactly, and one byte more) are where off-by-ones show.
  std::vector<size_t> edges;
  for (size_t c : {8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192}) {
    edges.push_back(c);
    edges.push_back(c + 1);
  }
  return rc::gen::weightedOneOf<size_t>({{2, rc::gen::elementOf(edges)},
                                         {6, rc::gen::inRange<size_t>(1, 257)},
                                         {2, rc::gen::inRange<size_t>(257, 8193)},
                                         {1, rc::gen::inRange<size_t>(8193, 40000)}});
}

struct Alloc : Cmd {
  std::string name;
  int cache = *rc::gen::inRange(-1, 2);
  size_t size = *gen_size();
  bool zero = *rc::gen::arbitrary<bool>();
  uint8_t byte = *rc::gen::inRange<int>(1, 256);
  explicit Alloc(const SlabGen& g) : name("o" + std::to_string(g.next)) {}
  size_t req() const { return cache < 0 ? size : kCaches[cache].size; }
  void checkPreconditions(const SlabGen& g) const override { RC_PRE(!g.live.count(name)); }
  void apply(SlabGen& g) const override {
    g.live[name] = Obj{req(), cache};
    g.next = std::max(g.next, unsigned(std::stoul(name.substr(1))) + 1);
  }
  void run(const SlabGen&, SlabSut& s) const override {
    s.step(*this);
    gfp_t gfp = GFP_KERNEL | (zero ? __GFP_ZERO : 0);
    size_t r0 = s.nreports();
    void* p = cache < 0 ? kmalloc(size, gfp) : kmem_cache_alloc(s.caches[cache], gfp);
    RC_ASSERT(s.nreports() == r0);
    Live o{static_cast<uint8_t*>(p), req(), cache, 0};
    RC_ASSERT(o.p != nullptr);
    if (zero) RC_ASSERT(all_bytes(o.p, o.size, 0));
    else if (cache >= 0 && kCaches[cache].ctor) RC_ASSERT(all_bytes(o.p, o.size, kCtorByte));
    if (cache < 0) {
      RC_ASSERT(ksize(p) >= size);
      if (size <= KMALLOC_MAX_CACHE_SIZE) {
        check_placement(s, name, o);
        const struct kmem_cache* c = compound_head(virt_to_page(p))->slab.slab_cache;
        if (c->object_size != kmalloc_class(size))
          RC_LOG() << "# kmalloc(" << size << ") came from " << c->name << "\n";
        RC_ASSERT(c->object_size == kmalloc_class(size));
      }
    } else {
      check_placement(s, name, o);
    }
    std::memset(p, byte, o.size);
    o.byte = byte;
    s.objs[name] = o;
  }
  void show(std::ostream& os) const override {
    if (cache < 0) os << name << " = " << (zero ? "kzalloc" : "kmalloc") << " size=" << size;
    else os << name << " = " << (zero ? "kmem_cache_zalloc" : "kmem_cache_alloc") << " c" << cache;
    if (!zero) os << "\nfill " << name << " byte=" << byte_hex(byte);
    else os << "\nfill " << name << " byte=" << byte_hex(byte);
  }
};

std::string pick(const SlabGen& g, bool kmalloc_only = false, bool cache_only = false) {
  std::vector<std::string> v;
  for (auto& [n, o] : g.live)
    if ((!kmalloc_only || o.cache < 0) && (!cache_only || o.cache >= 0)) v.push_back(n);
  RC_PRE(!v.empty());
  return *rc::gen::elementOf(v);
}

struct Free : Cmd {
  std::string name;
  int cache;
  explicit Free(const SlabGen& g) : name(pick(g)), cache(g.live.at(name).cache) {}
  void checkPreconditions(const SlabGen& g) const override {
    RC_PRE(g.live.count(name) == 1u && g.live.at(name).cache == cache);
  }
  void apply(SlabGen& g) const override { g.live.erase(name); }
  void run(const SlabGen& g, SlabSut& s) const override {
    s.step(*this);
    Live o = s.objs.at(name);
    s.objs.erase(name);
    size_t r0 = s.nreports();
    if (o.cache < 0) kfree(o.p);
    else {
      // A ctor cache's object goes back in its constructed state, as the kernel requires.
      if (kCaches[o.cache].ctor) std::memset(o.p, kCtorByte, o.size);
      kmem_cache_free(s.caches[o.cache], o.p);
    }
    RC_ASSERT(s.nreports() == r0);
    if (!ZERO_OR_NULL_PTR(o.p) && (o.cache >= 0 || o.size <= KMALLOC_MAX_CACHE_SIZE))
      check_free_pointer(name, o.p);
    check_all_contents(s);
  }
  void show(std::ostream& os) const override {
    if (cache < 0) os << "kfree " << name;
    else os << "kmem_cache_free c" << cache << " " << name;
  }
};

struct Krealloc : Cmd {
  std::string name;
  size_t size = *gen_size();
  explicit Krealloc(const SlabGen& g) : name(pick(g, true)) {}
  void checkPreconditions(const SlabGen& g) const override {
    RC_PRE(g.live.count(name) == 1u && g.live.at(name).cache < 0);
  }
  void apply(SlabGen& g) const override { g.live[name].size = size; }
  void run(const SlabGen&, SlabSut& s) const override {
    s.step(*this);
    Live& o = s.objs.at(name);
    size_t r0 = s.nreports();
    auto* p = static_cast<uint8_t*>(krealloc(o.p, size, GFP_KERNEL));
    RC_ASSERT(s.nreports() == r0);
    RC_ASSERT(p != nullptr);
    size_t keep = std::min(o.size, size);
    RC_ASSERT(all_bytes(p, keep, o.byte)); // the prefix survives
    RC_ASSERT(ksize(p) >= size);
    o.p = p;
    o.size = size;
    std::memset(p, o.byte, size);
    check_all_contents(s);
  }
  void show(std::ostream& os) const override {
    os << name << " = krealloc " << name << " size=" << size;
  }
};

// kmem_cache_free to the other custom cache: reported, the object stays allocated (leaked).
struct WrongCacheFree : Cmd {
  std::string name;
  int cache;
  explicit WrongCacheFree(const SlabGen& g)
      : name(pick(g, false, true)), cache(g.live.at(name).cache) {}
  void checkPreconditions(const SlabGen& g) const override {
    RC_PRE(g.live.count(name) == 1u && g.live.at(name).cache == cache && cache >= 0);
  }
  void apply(SlabGen& g) const override { g.live.erase(name); }
  void run(const SlabGen&, SlabSut& s) const override {
    s.step(*this);
    Live o = s.objs.at(name);
    s.objs.erase(name);
    size_t r0 = s.nreports();
    std::string buddy0 = buddyinfo(s);
    kmem_cache_free(s.caches[1 - o.cache], o.p);
    RC_LOG() << s.dump_reports(r0);
    RC_ASSERT(s.nreports() == r0 + 1);
    // cache_from_obj(): the WARN names the cache the object really belongs to.
    const std::string& text = s.m->reports()[r0].text;
    std::string want = std::string("object belongs to different cache ") + kCaches[o.cache].name;
    if (text.find(want) == std::string::npos)
      RC_LOG() << "# report, not \"" << want << "\":\n" << text;
    RC_ASSERT(text.find(want) != std::string::npos);
    RC_ASSERT(buddyinfo(s) == buddy0);
    RC_ASSERT(all_bytes(o.p, o.size, o.byte)); // untouched
    s.leaked.push_back({o.p, o.cache});
    s.m->clear_reports();
    check_all_contents(s);
  }
  void show(std::ostream& os) const override {
    os << "kmem_cache_free c" << 1 - cache << " " << name << "   # the wrong cache\n"
       << "expect report \"\"";
  }
};

// kfree twice of a fresh kmalloc object: the second is reported once and changes nothing else.
struct DoubleFree : Cmd {
  size_t size = *rc::gen::inRange<size_t>(1, 2049);
  void run(const SlabGen&, SlabSut& s) const override {
    s.step(*this);
    auto* p = static_cast<uint8_t*>(kmalloc(size, GFP_KERNEL));
    RC_ASSERT(p != nullptr);
    kfree(p);
    size_t r0 = s.nreports();
    kfree(p);
    RC_LOG() << s.dump_reports(r0);
    RC_ASSERT(s.nreports() == r0 + 1);
    s.m->clear_reports();
    check_all_contents(s);
  }
  void show(std::ostream& os) const override {
    os << "x = kmalloc size=" << size << "\nkfree x\nkfree x\nexpect report \"\"";
  }
};

// The next commands run as CPU n (kmm::CpuScope): frees of objects another CPU allocated go
// the remote way (__slab_free), to a slab that is not this CPU's slab.
struct OnCpu : Cmd {
  unsigned n = *rc::gen::inRange(0u, 2u);
  explicit OnCpu(const SlabGen&) {}
  void run(const SlabGen&, SlabSut& s) const override {
    s.step(*this);
    s.cpu.reset();
    s.cpu = std::make_unique<CpuScope>(*s.m, n);
  }
  void show(std::ostream& os) const override { os << "cpu " << n; }
};

// kmem_cache_shrink flushes every CPU slab back to the node lists (and frees empty slabs); then
// /sys/kernel/slab/<c>/objects (active_objs: total minus the free objects of partial slabs,
// from each slab's inuse) counts exactly the objects the model has live in c, leaked ones too.
struct Counts : Cmd {
  explicit Counts(const SlabGen&) {}
  void run(const SlabGen&, SlabSut& s) const override {
    s.step(*this);
    for (int i = 0; i < 2; i++) {
      kmem_cache_shrink(s.caches[i]);
      long want = 0;
      for (auto& [n, o] : s.objs) want += o.cache == i;
      for (auto& [p, c] : s.leaked) want += c == i;
      std::string path = std::string("/sys/kernel/slab/") + kCaches[i].name + "/objects";
      long got = std::strtol(s.m->proc_read(path).c_str(), nullptr, 10);
      if (got != want) RC_LOG() << "# " << path << ": " << got << ", model " << want << "\n";
      RC_ASSERT(got == want);
    }
    check_all_contents(s);
  }
  void show(std::ostream& os) const override {
    os << "kmem_cache_shrink c0\nkmem_cache_shrink c1\nproc_read "
          "/sys/kernel/slab/prop_ctor/objects\n"
       << "proc_read /sys/kernel/slab/prop_plain/objects";
  }
};

} // namespace

RC_GTEST_PROP(SlabProp, CountsAcrossCpus, ()) {
  SlabSut s("mem=64M nr_cpus=2 slab_nomerge"); // prop_plain would merge into kmalloc-128
  SlabGen g;
  auto gen = rc::state::gen::execOneOfWithArgs<Alloc, Alloc, Alloc, Free, Free, OnCpu, OnCpu,
                                               WrongCacheFree, Counts>();
  auto cmds = *rc::gen::resize(60 * scale(), rc::state::gen::commands(g, gen));
  rc::state::runAll(cmds, g, s);
  Counts(g).run(g, s);
  s.cpu.reset();
  check_all_contents(s);
  s.check_valid();
  RC_ASSERT(s.titles().empty());
}

RC_GTEST_PROP(SlabProp, MatchesObjectModel, ()) {
  SlabSut s("mem=64M nr_cpus=2 slub_debug=FZPU");
  SlabGen g;
  auto gen = rc::state::gen::execOneOfWithArgs<Alloc, Alloc, Alloc, Free, Free, Krealloc,
                                               WrongCacheFree, DoubleFree, Counts>();
  auto cmds = *rc::gen::resize(50 * scale(), rc::state::gen::commands(g, gen));
  rc::state::runAll(cmds, g, s);
  check_all_contents(s);
  s.check_valid();
  RC_ASSERT(s.titles().empty());
}

// ---- detection ---------------------------------------------------------------------------------

namespace {
struct DetectCase {
  unsigned size, align;
  bool left;      // left red zone (else right)
  unsigned index; // byte within that red zone (folded into range)
};
// Boots, creates a debug cache, allocates one object, corrupts one red-zone byte, frees.
// Returns the report titles.
std::vector<std::string> redzone_case(const std::string& boot, const DetectCase& c, bool* had_rz) {
  Sut s(boot);
  struct kmem_cache* kc = kmem_cache_create("prop_rz", c.size, c.align, 0, nullptr);
  RC_ASSERT(kc != nullptr);
  auto* p = static_cast<uint8_t*>(kmem_cache_alloc(kc, GFP_KERNEL));
  RC_ASSERT(p != nullptr);
  unsigned left = kc->red_left_pad, right = kc->inuse - kc->object_size;
  *had_rz = (kc->flags & SLAB_RED_ZONE) && left && right;
  if (*had_rz) {
    long off = c.left ? -long(1 + c.index % left) : long(kc->object_size + c.index % right);
    s.note("o0 = kmem_cache_alloc c0");
    s.note("corrupt o0" + std::string(off < 0 ? "-" : "+") + std::to_string(std::labs(off)) +
           " len=1 byte=0x00");
    p[off] ^= 0xff;
  } else {
    // Debugging off: the same relative bytes lie in the neighbour slot or padding. Write the byte
    // after the object only if it is padding (inuse beyond object_size), else nothing to do.
    if (kc->inuse > kc->object_size) p[kc->object_size] ^= 0xff;
  }
  s.note("kmem_cache_free c0 o0");
  kmem_cache_free(kc, p);
  auto t = s.titles();
  kmem_cache_destroy(kc);
  return t;
}
} // namespace

RC_GTEST_PROP(SlabDetect, RedZoneWriteReported, ()) {
  DetectCase c{*rc::gen::inRange(1u, 600u), *rc::gen::element(0u, 8u, 16u, 64u),
               *rc::gen::arbitrary<bool>(), *rc::gen::inRange(0u, 4096u)};
  bool had = false;
  auto t = redzone_case("mem=32M nr_cpus=1 slub_debug=FZ", c, &had);
  RC_ASSERT(had);
  std::string want = c.left ? "Left Redzone overwritten" : "Right Redzone overwritten";
  for (auto& x : t) RC_LOG() << "report: " << x << "\n";
  RC_ASSERT(t.size() == 1u);
  RC_ASSERT(t[0].find(want) != std::string::npos);
}

RC_GTEST_PROP(SlabDetect, UseAfterFreeReported, ()) {
  unsigned size = *rc::gen::inRange(8u, 600u);
  unsigned at = *rc::gen::inRange(0u, 1u << 20);
  Sut s("mem=32M nr_cpus=1 slub_debug=FZP");
  struct kmem_cache* kc = kmem_cache_create("prop_uaf", size, 0, 0, nullptr);
  auto* p = static_cast<uint8_t*>(kmem_cache_alloc(kc, GFP_KERNEL));
  auto* keep = kmem_cache_alloc(kc, GFP_KERNEL); // the slab stays (validate walks it)
  kmem_cache_free(kc, p);
  unsigned off = at % kc->object_size;
  s.note("c0 = kmem_cache_create name=prop_uaf size=" + std::to_string(size));
  s.note("o0 = kmem_cache_alloc c0\no1 = kmem_cache_alloc c0\nkmem_cache_free c0 o0");
  s.note("corrupt o0+" + std::to_string(off) + " len=1 byte=0x00");
  p[off] ^= 0xff;
  s.note("proc_write /sys/kernel/slab/prop_uaf/validate 1");
  s.m->proc_write("/sys/kernel/slab/prop_uaf/validate", "1");
  auto t = s.titles();
  for (auto& x : t) RC_LOG() << "report: " << x << "\n";
  RC_ASSERT(t.size() == 1u);
  RC_ASSERT(t[0].find("Poison overwritten") != std::string::npos);
  (void)keep;
}

RC_GTEST_PROP(SlabDetect, SilentWithoutDebug, ()) {
  DetectCase c{*rc::gen::inRange(1u, 600u), *rc::gen::element(0u, 8u, 16u, 64u),
               *rc::gen::arbitrary<bool>(), *rc::gen::inRange(0u, 4096u)};
  bool had = true;
  auto t = redzone_case("mem=32M nr_cpus=1", c, &had);
  RC_ASSERT(!had);
  RC_ASSERT(t.empty());
}

} // namespace kmm::prop
