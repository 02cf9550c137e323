// The KASAN conformance suite for slab and kmalloc memory (allocator/src/kasan_slab.cpp): the
// cases of the kernel's mm/kasan/kasan_test_c.c that apply to kmm, each run on a fresh kasan=on
// machine and asserting the exact bug type, plus the accesses that must stay silent. The test
// prints a table: case, expected, got.
//
// Each case's accesses go through `acc`: in the "kasan_check" pass they are explicit
// kasan_check_read/write calls (software KASAN); in an ASan build a second "raw" pass makes them
// plain C++ loads, stores, memset and memcpy, which ASan catches through the mirrored poison
// (kasan_asan.cpp) and kmm turns into the same KASAN reports.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <functional>

#include "bug.h"
#include "kasan_asan.h"
#include "kmm/linux.h"
#include "kmm/validate.h"
#include "test_util.h"

using kmm::Machine;

namespace {

// The bug types of the KASAN reports a case produced, joined by ','; "none" when silent.
std::string kasan_types(Machine& m) {
  std::string out;
  for (auto& r : m.reports()) {
    if (r.kind != kmm::ReportKind::Kasan) continue;
    std::string t = r.title.substr(std::string("BUG: KASAN: ").size());
    t = t.substr(0, t.find(' '));
    out += (out.empty() ? "" : ",") + t;
  }
  return out.empty() ? "none" : out;
}

// The accesses a case makes: checked explicitly, or made raw.
struct Access {
  bool raw = false;
  void write(void* p, size_t n) const {
    if (!raw) {
      kasan_check_write(p, static_cast<unsigned>(n));
    } else if (n == 1) {
      *static_cast<volatile char*>(p) = 0x5a;
    } else {
      raw_memset(p, n);
    }
  }
  void read(const void* p, size_t n) const {
    if (!raw) {
      kasan_check_read(p, static_cast<unsigned>(n));
    } else if (n == 1) {
      sink = *static_cast<const volatile char*>(p);
    } else {
      raw_memcpy(p, n);
    }
  }
  static inline volatile char sink;
  __attribute__((noinline)) static void raw_memset(void* p, size_t n) {
    asm volatile("" : : "r"(p) : "memory");
    std::memset(p, 0x5a, n);
  }
  __attribute__((noinline)) static void raw_memcpy(const void* p, size_t n) {
    char buf[256];
    asm volatile("" : : "r"(p) : "memory");
    std::memcpy(buf, p, std::min(n, sizeof buf));
    sink = buf[0];
  }
};
Access acc; // the pass being run

bool kasan_on(Machine& m) { return m.cmdline().find("kasan=on") != std::string::npos; }

struct Case {
  const char* name;
  const char* expected;
  std::function<void(Machine&)> run;
};

// A kmalloc object that does not start its slab page, so p[-1] is inside the slab.
char* kmalloc_not_first(size_t size) {
  for (;;) {
    char* p = static_cast<char*>(kmalloc(size, GFP_KERNEL));
    if (reinterpret_cast<uintptr_t>(p) % PAGE_SIZE) return p;
  }
}

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {"kmalloc_oob_right", "slab-out-of-bounds",
       [](Machine&) {
         char* p = static_cast<char*>(kmalloc(128 - 8 - 5, GFP_KERNEL));
         acc.write(p + 115, 1); // the first byte past the 115 requested
         kfree(p);
       }},
      {"kmalloc_oob_right_in_bounds_silent", "none",
       [](Machine&) {
         char* p = static_cast<char*>(kmalloc(115, GFP_KERNEL));
         acc.write(p, 115);
         kfree(p);
       }},
      {"kmalloc_oob_left", "slab-out-of-bounds",
       [](Machine&) {
         char* p = kmalloc_not_first(15);
         acc.read(p - 1, 1);
       }},
      {"kmalloc_big_oob_right", "slab-out-of-bounds",
       [](Machine&) {
         char* p = static_cast<char*>(kmalloc(8192 - 256, GFP_KERNEL));
         acc.write(p + 8192 - 256, 1);
         kfree(p);
       }},
      {"kmalloc_large_oob_right", "slab-out-of-bounds",
       [](Machine&) {
         char* p = static_cast<char*>(kmalloc(8192 + 10, GFP_KERNEL));
         acc.write(p + 8192 + 10, 1);
         kfree(p);
       }},
      {"kmalloc_large_uaf", "use-after-free",
       [](Machine&) {
         char* p = static_cast<char*>(kmalloc(8192 + 10, GFP_KERNEL));
         kfree(p);
         acc.read(p, 1);
       }},
      {"kmalloc_large_invalid_free", "invalid-free",
       [](Machine&) {
         char* p = static_cast<char*>(kmalloc(8192 + 10, GFP_KERNEL));
         kfree(p + 1);
         kfree(p);
       }},
      {"page_alloc_uaf", "use-after-free",
       [](Machine&) {
         struct page* pg = alloc_pages(GFP_KERNEL, 4);
         char* p = static_cast<char*>(page_address(pg));
         __free_pages(pg, 4);
         acc.read(p, 1);
       }},
      {"krealloc_more_oob", "slab-out-of-bounds",
       [](Machine&) {
         char* p1 = static_cast<char*>(kmalloc(201, GFP_KERNEL));
         char* p2 = static_cast<char*>(krealloc(p1, 235, GFP_KERNEL));
         for (int i : {200, 201, 218, 234}) acc.write(p2 + i, 1); // silent
         acc.write(p2 + 235, 1);
         kfree(p2);
       }},
      {"krealloc_less_oob",
       "slab-out-of-bounds,slab-out-of-bounds,slab-out-of-bounds,slab-out-of-bounds",
       [](Machine&) {
         char* p1 = static_cast<char*>(kmalloc(235, GFP_KERNEL));
         char* p2 = static_cast<char*>(krealloc(p1, 201, GFP_KERNEL));
         acc.write(p2 + 200, 1); // silent
         for (int i : {201, 218, 234, 235}) acc.write(p2 + i, 1);
         kfree(p2);
       }},
      {"krealloc_uaf", "slab-use-after-free,slab-use-after-free",
       [](Machine& m) {
         char* p1 = static_cast<char*>(kmalloc(201, GFP_KERNEL));
         kfree(p1);
         void* p2 = krealloc(p1, 235, GFP_KERNEL);
         EXPECT_EQ(p2, nullptr) << "krealloc of a freed object must return NULL";
         acc.read(p1, 1);
         (void)m;
       }},
      {"kmalloc_oob_16", "slab-out-of-bounds",
       [](Machine&) {
         char* p = static_cast<char*>(kmalloc(13, GFP_KERNEL));
         acc.write(p, 16);
         kfree(p);
       }},
      {"kmalloc_uaf_16", "slab-use-after-free",
       [](Machine&) {
         char* p = static_cast<char*>(kmalloc(16, GFP_KERNEL));
         kfree(p);
         acc.read(p, 16);
       }},
      {"kmalloc_oob_in_memset", "slab-out-of-bounds",
       [](Machine&) {
         char* p = static_cast<char*>(kmalloc(120, GFP_KERNEL));
         acc.write(p, 120 + 8);
         kfree(p);
       }},
      {"kmalloc_oob_memset_2", "slab-out-of-bounds",
       [](Machine&) {
         char* p = static_cast<char*>(kmalloc(120, GFP_KERNEL));
         acc.write(p + 119, 2);
         kfree(p);
       }},
      {"kmalloc_oob_memset_8", "slab-out-of-bounds",
       [](Machine&) {
         char* p = static_cast<char*>(kmalloc(120, GFP_KERNEL));
         acc.write(p + 113, 8);
         kfree(p);
       }},
      {"kmalloc_uaf", "slab-use-after-free",
       [](Machine&) {
         char* p = static_cast<char*>(kmalloc(10, GFP_KERNEL));
         kfree(p);
         acc.read(p + 8, 1);
       }},
      {"kmalloc_double_kzfree", "slab-use-after-free,double-free",
       [](Machine&) {
         char* p = static_cast<char*>(kmalloc(16, GFP_KERNEL));
         kfree_sensitive(p);
         kfree_sensitive(p);
       }},
      {"ksize_does_not_unpoison", "slab-out-of-bounds",
       [](Machine&) {
         char* p = static_cast<char*>(kmalloc(123, GFP_KERNEL));
         EXPECT_EQ(ksize(p), 128u);
         acc.read(p + 123, 1);
         kfree(p);
       }},
      {"kmem_cache_oob", "slab-out-of-bounds",
       [](Machine&) {
         struct kmem_cache* c = kmem_cache_create("test_cache", 200, 0, 0, nullptr);
         char* p = static_cast<char*>(kmem_cache_alloc(c, GFP_KERNEL));
         acc.read(p + 200, 1);
         kmem_cache_free(c, p);
         kmem_cache_destroy(c);
       }},
      {"kmem_cache_double_free", "double-free",
       [](Machine&) {
         struct kmem_cache* c = kmem_cache_create("test_cache", 200, 0, 0, nullptr);
         void* p = kmem_cache_alloc(c, GFP_KERNEL);
         kmem_cache_free(c, p);
         kmem_cache_free(c, p);
         kmem_cache_destroy(c);
       }},
      {"kmem_cache_invalid_free", "invalid-free",
       [](Machine&) {
         struct kmem_cache* c = kmem_cache_create("test_cache", 200, 0, 0, nullptr);
         char* p = static_cast<char*>(kmem_cache_alloc(c, GFP_KERNEL));
         kmem_cache_free(c, p + 1);
         kmem_cache_free(c, p);
         kmem_cache_destroy(c);
       }},
      {"kmem_cache_rcu_reuse_silent", "none",
       [](Machine&) {
         struct kmem_cache* c = kmem_cache_create("test_rcu", 64, 0, SLAB_TYPESAFE_BY_RCU, nullptr);
         char* p = static_cast<char*>(kmem_cache_alloc(c, GFP_KERNEL));
         kmem_cache_free(c, p);
         acc.read(p, 64); // type-safe by RCU: still readable, never quarantined
         kmem_cache_destroy(c);
       }},
      {"vmalloc_oob", "vmalloc-out-of-bounds",
       [](Machine&) {
         char* v = static_cast<char*>(vmalloc(3000));
         acc.read(v + 3000, 1);
         vfree(v);
       }},
      // More of kasan_test_c.c: page-allocator-backed kmalloc, the vmalloc slack as the kernel
      // tests it, quarantine reuse, memset ranges, and frees that must stay silent.
      {"kmalloc_node_oob_right", "slab-out-of-bounds",
       [](Machine&) {
         char* p = static_cast<char*>(kmalloc_node(4096, GFP_KERNEL, 0));
         acc.read(p + 4096, 1);
         kfree(p);
       }},
      {"kmalloc_large_redzone_to_page_end", "slab-out-of-bounds",
       [](Machine&) {
         char* p = static_cast<char*>(kmalloc(8192 + 10, GFP_KERNEL)); // order 2: 16 KiB
         acc.write(p, 8192 + 10);                                      // silent
         acc.read(p + 4 * PAGE_SIZE - 1, 1);
         kfree(p);
       }},
      {"krealloc_large_more_oob", "slab-out-of-bounds,slab-out-of-bounds",
       [](Machine&) {
         char* p1 = static_cast<char*>(kmalloc(8192 + 201, GFP_KERNEL));
         char* p2 = static_cast<char*>(krealloc(p1, 8192 + 235, GFP_KERNEL));
         for (int i : {200, 201, 218, 234}) acc.write(p2 + 8192 + i, 1); // silent
         acc.write(p2 + 8192 + 235, 1);
         acc.write(p2 + 8192 + 240, 1); // round_up(size, 8)
         kfree(p2);
       }},
      {"krealloc_large_less_oob",
       "slab-out-of-bounds,slab-out-of-bounds,slab-out-of-bounds,slab-out-of-bounds,slab-out-of-"
       "bounds",
       [](Machine&) {
         char* p1 = static_cast<char*>(kmalloc(8192 + 235, GFP_KERNEL));
         char* p2 = static_cast<char*>(krealloc(p1, 8192 + 201, GFP_KERNEL));
         acc.write(p2 + 8192 + 200, 1); // silent
         for (int i : {201, 208, 218, 234, 235}) acc.write(p2 + 8192 + i, 1);
         kfree(p2);
       }},
      {"vmalloc_oob_kernel_size", "vmalloc-out-of-bounds,vmalloc-out-of-bounds",
       [](Machine&) {
         size_t size = PAGE_SIZE / 2 - 8 - 5; // 2035
         char* v = static_cast<char*>(vmalloc(size));
         acc.read(v, 1); // silent
         acc.read(v + size - 1, 1);
         acc.read(v + size, 1);
         acc.read(v + size + 5, 1);
         char* alias = static_cast<char*>(page_address(vmalloc_to_page(v)));
         acc.read(alias + size + 5, 1); // through the direct map: silent
         vfree(v);
       }},
      {"kmalloc_oob_memset_4", "slab-out-of-bounds",
       [](Machine&) {
         char* p = static_cast<char*>(kmalloc(120, GFP_KERNEL));
         acc.write(p + 117, 4);
         kfree(p);
       }},
      {"kmalloc_oob_memset_16", "slab-out-of-bounds",
       [](Machine&) {
         char* p = static_cast<char*>(kmalloc(120, GFP_KERNEL));
         acc.write(p + 105, 16);
         kfree(p);
       }},
      {"kmalloc_uaf_memset", "slab-use-after-free",
       [](Machine&) {
         char* p = static_cast<char*>(kmalloc(33, GFP_KERNEL));
         kfree(p);
         acc.write(p, 33);
       }},
      {"kmalloc_uaf2", "slab-use-after-free",
       [](Machine& m) {
         char* p1 = static_cast<char*>(kmalloc(43, GFP_KERNEL));
         kfree(p1);
         char* p2 = static_cast<char*>(kmalloc(43, GFP_KERNEL));
         if (kasan_on(m)) {
           EXPECT_NE(p1, p2) << "the quarantine must keep the freed object";
         }
         acc.read(p1 + 40, 1);
         kfree(p2);
       }},
      {"ksize_uaf", "slab-use-after-free,slab-use-after-free,slab-use-after-free",
       [](Machine& m) {
         char* p = static_cast<char*>(kmalloc(120, GFP_KERNEL));
         kfree(p);
         size_t ks = ksize(p);
         if (kasan_on(m)) {
           EXPECT_EQ(ks, 0u);
         }
         acc.read(p, 1);
         acc.read(p + 120, 1);
       }},
      {"kfree_via_page", "none",
       [](Machine&) {
         char* p = static_cast<char*>(kmalloc(8, GFP_KERNEL));
         size_t off = reinterpret_cast<uintptr_t>(p) % PAGE_SIZE;
         kfree(static_cast<char*>(page_address(virt_to_page(p))) + off);
       }},
      {"kfree_via_phys", "none",
       [](Machine&) {
         char* p = static_cast<char*>(kmalloc(8, GFP_KERNEL));
         kfree(phys_to_virt(virt_to_phys(p)));
       }},
      {"kmem_cache_bulk", "none",
       [](Machine&) {
         struct kmem_cache* c = kmem_cache_create("test_cache", 200, 0, 0, nullptr);
         void* p[10];
         ASSERT_TRUE(kmem_cache_alloc_bulk(c, GFP_KERNEL, 10, p));
         for (void* o : p) {
           acc.write(o, 1);
           acc.write(static_cast<char*>(o) + 199, 1);
         }
         kmem_cache_free_bulk(c, 10, p);
         kmem_cache_destroy(c);
       }},
  };
  return all;
}

// The passes this build can run: the explicit checks always, raw accesses under ASan that
// survives a reported access (the asan preset; the fuzz preset's ASan stops at the first).
std::vector<bool> passes() {
  return KMM_ASAN_RECOVERS ? std::vector<bool>{false, true} : std::vector<bool>{false};
}

TEST(KasanConformance, EveryCaseGivesItsReport) {
  for (bool raw : passes()) {
    acc.raw = raw;
    std::printf("\n[%s] accesses %s\n", raw ? "asan" : "software",
                raw ? "made raw, caught by ASan through the mirrored poison"
                    : "checked by kasan_check_read/write");
    std::printf("%-36s %-44s %s\n", "case", "expected", "got");
    for (const Case& c : cases()) {
      auto m = Machine::boot("mem=32M kasan=on");
      kmm::MachineScope scope(*m);
      c.run(*m);
      std::string got = kasan_types(*m);
      std::printf("%-36s %-44s %s\n", c.name, c.expected, got.c_str());
      EXPECT_EQ(got, c.expected) << c.name << (raw ? " (raw accesses)" : "");
      if (raw) { // the ASan path names the function that made the access, not kasan_check_*
        for (auto& r : m->reports()) {
          EXPECT_EQ(r.title.find("kasan_check"), std::string::npos) << c.name << ": " << r.title;
        }
      }
    }
  }
  acc.raw = false;
}

TEST(KasanConformance, ReportDescribesTheObject) {
  auto m = Machine::boot("mem=32M kasan=on");
  kmm::MachineScope scope(*m);
  char* p = static_cast<char*>(kmalloc(115, GFP_KERNEL));
  kasan_check_write(p + 115, 1);
  ASSERT_EQ(m->reports().size(), 1u);
  const std::string& t = m->reports()[0].text;
  EXPECT_EQ(m->reports()[0].title, "BUG: KASAN: slab-out-of-bounds in kasan_check_write");
  uint64_t obj = 0xffff888000000000ull + virt_to_phys(p);
  EXPECT_NE(t.find(kmm::strprintf("The buggy address belongs to the object at %016llx\n which "
                                  "belongs to the cache kmalloc-128 of size 128\n",
                                  (unsigned long long)obj)),
            std::string::npos)
      << t;
  EXPECT_NE(t.find(kmm::strprintf("The buggy address is located 0 bytes to the right of\n "
                                  "allocated 115-byte region [%016llx, %016llx)\n",
                                  (unsigned long long)obj, (unsigned long long)(obj + 115))),
            std::string::npos)
      << t;
  kfree(p);
}

TEST(KasanConformance, QuarantineDelaysReuse) {
  auto m = Machine::boot("mem=32M kasan=on");
  kmm::MachineScope scope(*m);
  void* first = kmalloc(64, GFP_KERNEL);
  kfree(first);
  for (int i = 0; i < 200; i++) {
    void* p = kmalloc(64, GFP_KERNEL);
    EXPECT_NE(p, first) << "a quarantined object came back after " << i << " allocations";
    kfree(p);
  }
  EXPECT_TRUE(m->reports().empty());
  EXPECT_TRUE(kmm::validate(*m).empty());
}

TEST(KasanConformance, OffIsSilentForTheSameCases) {
  for (bool raw : passes())
    for (const Case& c : cases()) {
      acc.raw = raw;
      if (std::string(c.name).find("double") != std::string::npos ||
          std::string(c.name).find("invalid") != std::string::npos ||
          std::string(c.name) == "krealloc_uaf")
        continue; // with KASAN off these are caught (or not) by SLUB itself
      auto m = Machine::boot("mem=32M");
      kmm::MachineScope scope(*m);
      c.run(*m);
      EXPECT_EQ(kasan_types(*m), "none") << c.name;
    }
  acc.raw = false;
}

} // namespace
