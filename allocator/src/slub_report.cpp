// SLUB's reports (mm/slub.c slab_bug, slab_err, object_err, print_trailer, slab_fix): one
// function per kind, each building the kernel's text and handing it to emit_report() as
// ReportKind::SlubDebug. Titles are "BUG <cache> (Not tainted): <message>".
//
// slab_errors counts as slub_kunit's counter does: +1 per slab_bug (object_err, slab_err,
// byte-range report, each leaked-object line) and +1 per FIX line.
#include <cxxabi.h>
#include <dlfcn.h>

#include <cstdlib>
#include <cstring>

#include "buddy.h"
#include "bug.h"
#include "kasan_asan.h"
#include "kernel.h"
#include "slub.h"

namespace kmm {

static unsigned long long kva(Kernel& k, const void* p) { return (unsigned long long)k.mem.kva(p); }

// %pS for a host code address: "function+0xoff", demangled when possible.
static std::string symbolize(uintptr_t addr) {
  if (!addr) return "0x0";
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(addr), &info) && info.dli_sname) {
    int status = 0;
    char* dem = abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status);
    std::string name = status == 0 && dem ? dem : info.dli_sname;
    std::free(dem);
    size_t paren = name.find('(');
    if (paren != std::string::npos) name.resize(paren);
    return strprintf("%s+0x%lx", name.c_str(),
                     (unsigned long)(addr - reinterpret_cast<uintptr_t>(info.dli_saddr)));
  }
  return strprintf("0x%lx", (unsigned long)addr);
}

static std::string slab_bug_header(const kmem_cache* s, const std::string& msg,
                                   std::string* title) {
  *title = "BUG " + (s ? s->name : std::string("<unknown>")) + " (Not tainted): " + msg;
  return "=============================================================================\n" +
         *title +
         "\n-----------------------------------------------------------------------------\n\n";
}

static std::string fix_line(const kmem_cache* s, const std::string& fix) {
  return "FIX " + s->name + ": " + fix + "\n";
}

static std::string slab_flags(Kernel& k, const struct page* slab) {
  unsigned long pfn = k.mem.page_to_pfn(slab);
  return strprintf("0x%x(slab%s|node=0|zone=%d)", slab->flags,
                   (slab->flags & PG_head) ? "|head" : "", int(page_zone(k, pfn).idx));
}

static std::string print_slab_info(Kernel& k, const kmem_cache* s, const struct page* slab) {
  return strprintf("Slab 0x%llx objects=%u used=%u fp=0x%llx flags=%s\n",
                   (unsigned long long)k.mem.page_kva(slab), slab->slab.objects, slab->slab.inuse,
                   slab->slab.freelist ? kva(k, slab->slab.freelist) : 0ull,
                   slab_flags(k, slab).c_str());
}

// print_hex_dump(KERN_ERR, text, DUMP_PREFIX_ADDRESS, 16, 1, addr, len, 1)
static std::string print_section(Kernel& k, const char* text, const uint8_t* addr, size_t len) {
  KasanMetadataAccess scope(addr, len); // red zones, padding and free objects are KASAN-poisoned
  std::string t;
  for (size_t row = 0; row < len; row += 16) {
    t += strprintf("%s%016llx: ", text, kva(k, addr + row));
    std::string ascii;
    for (size_t i = row; i < row + 16 && i < len; i++) {
      t += strprintf(i + 1 < row + 16 && i + 1 < len ? "%02x " : "%02x", addr[i]);
      ascii += (addr[i] >= 0x20 && addr[i] < 0x7f) ? char(addr[i]) : '.';
    }
    t += "  " + ascii + "\n";
  }
  return t;
}

std::string slab_print_tracking(Kernel& k, const kmem_cache* s, void* obj) {
  if (!(s->flags & SLAB_STORE_USER)) return "";
  const auto* t = reinterpret_cast<const track*>(static_cast<char*>(obj) + get_info_end(s));
  KasanMetadataAccess scope(t, 2 * sizeof(track));
  uint64_t now = k.slab->jiffies.load(std::memory_order_relaxed);
  std::string out;
  const char* what[2] = {"Allocated", "Freed"};
  for (int i = 0; i < 2; i++) {
    if (!t[i].addr) continue;
    out += strprintf("%s in %s age=%llu cpu=%d pid=%d\n", what[i], symbolize(t[i].addr).c_str(),
                     (unsigned long long)(now - t[i].when), t[i].cpu, t[i].pid);
    out +=
        i == 0 ? " object allocation stack trace missing\n" : " object free stack trace missing\n";
  }
  return out;
}

// print_trailer(): tracking, slab, object, and hex dumps of the slot's regions.
static std::string print_trailer(Kernel& k, const kmem_cache* s, const struct page* slab,
                                 void* obj) {
  const uint8_t* p = static_cast<const uint8_t*>(obj);
  const uint8_t* base = static_cast<const uint8_t*>(k.mem.page_address(slab));
  std::string t = slab_print_tracking(k, s, obj);
  t += print_slab_info(k, s, slab);
  t += strprintf("Object 0x%llx @offset=%td fp=0x%llx\n\n", kva(k, p), p - base,
                 (unsigned long long)(check_valid_pointer(k, s, slab, get_freepointer(s, obj)) &&
                                              get_freepointer(s, obj)
                                          ? kva(k, get_freepointer(s, obj))
                                          : 0));
  if (s->flags & SLAB_RED_ZONE)
    t += print_section(k, "Redzone  ", p - s->red_left_pad, s->red_left_pad);
  else if (p > base)
    t += print_section(k, "Bytes b4 ", p - std::min<size_t>(16, size_t(p - base)),
                       std::min<size_t>(16, size_t(p - base)));
  t += print_section(k, "Object   ", p, std::min<unsigned>(s->object_size, 4096));
  if (s->flags & SLAB_RED_ZONE)
    t += print_section(k, "Redzone  ", p + s->object_size, s->inuse - s->object_size);
  unsigned off = get_info_end(s);
  if (s->flags & SLAB_STORE_USER) off += 2 * sizeof(track);
  if (slub_debug_orig_size(s)) off += sizeof(unsigned long);
  unsigned size_from_object = s->size - s->red_left_pad;
  if (off < size_from_object) t += print_section(k, "Padding  ", p + off, size_from_object - off);
  return t;
}

static void emit_slub(Kernel& k, const kmem_cache* s, std::string title, std::string text,
                      const void* addr, int64_t offset, long errors) {
  k.slab->slab_errors.fetch_add(errors, std::memory_order_relaxed);
  Report r{ReportKind::SlubDebug, std::move(title), std::move(text)};
  r.addr = addr && k.mem.is_direct(addr) ? k.mem.virt_to_phys(addr) : 0;
  r.cache = s ? s->name : "";
  r.offset = offset;
  emit_report(k, std::move(r));
}

void report_slab_object_err(Kernel& k, const kmem_cache* s, const struct page* slab, void* obj,
                            const std::string& reason, const std::string& fix) {
  std::string title;
  std::string t = slab_bug_header(s, reason, &title) + print_trailer(k, s, slab, obj) + cpu_line(k);
  if (!fix.empty()) t += fix_line(s, fix);
  emit_slub(k, s, title, t, obj, 0, fix.empty() ? 1 : 2);
}

void report_slab_err(Kernel& k, const kmem_cache* s, const struct page* slab,
                     const std::string& reason, const std::string& fix) {
  std::string title;
  std::string t = slab_bug_header(s, reason, &title) + print_slab_info(k, s, slab) + cpu_line(k);
  if (!fix.empty()) t += fix_line(s, fix);
  emit_slub(k, s, title, t, k.mem.page_address(slab), 0, fix.empty() ? 1 : 2);
}

void report_slab_fix_only(Kernel& k, const kmem_cache* s, const std::string& fix) {
  k.slab->slab_errors.fetch_add(1, std::memory_order_relaxed);
  k.log.printk("FIX " + s->name + ": " + fix);
}

// check_bytes_and_report(): "<what> overwritten", the range and first bad byte, the trailer,
// and the repair (restore_bytes).
void report_slab_bytes_overwritten(Kernel& k, const kmem_cache* s, const struct page* slab,
                                   void* obj, const char* what, const uint8_t* fault,
                                   const uint8_t* end, uint8_t expected) {
  std::string title;
  std::string t = slab_bug_header(s, std::string(what) + " overwritten", &title);
  const uint8_t* base = static_cast<const uint8_t*>(k.mem.page_address(slab));
  t += strprintf("0x%llx-0x%llx @offset=%td. First byte 0x%x instead of 0x%x\n", kva(k, fault),
                 kva(k, end - 1), fault - base, fault[0], expected);
  t += print_trailer(k, s, slab, obj) + cpu_line(k);
  t += fix_line(s, strprintf("Restoring %s 0x%llx-0x%llx=0x%x", what, kva(k, fault),
                             kva(k, end - 1), expected));
  emit_slub(k, s, title, t, fault, fault - static_cast<const uint8_t*>(obj), 2);
}

void report_slab_padding(Kernel& k, const kmem_cache* s, const struct page* slab,
                         const uint8_t* fault, const uint8_t* end) {
  std::string title;
  const uint8_t* base = static_cast<const uint8_t*>(k.mem.page_address(slab));
  std::string t = slab_bug_header(s,
                                  strprintf("Padding overwritten. 0x%llx-0x%llx @offset=%td",
                                            kva(k, fault), kva(k, end - 1), fault - base),
                                  &title);
  t += print_slab_info(k, s, slab);
  t += print_section(k, "Padding ", fault, size_t(end - fault));
  t += cpu_line(k);
  t += fix_line(s, strprintf("Restoring slab padding 0x%llx-0x%llx=0x%x", kva(k, fault),
                             kva(k, end - 1), POISON_INUSE));
  emit_slub(k, s, title, t, fault, 0, 2);
}

// list_slab_objects() on __kmem_cache_shutdown().
void report_slab_objects_remaining(Kernel& k, const kmem_cache* s, const struct page* slab,
                                   const std::vector<void*>& objects) {
  std::string title;
  std::string t =
      slab_bug_header(s, "Objects remaining in " + s->name + " on __kmem_cache_shutdown()", &title);
  t += print_slab_info(k, s, slab);
  t += cpu_line(k);
  const uint8_t* base = static_cast<const uint8_t*>(k.mem.page_address(slab));
  for (void* obj : objects) {
    t += strprintf("Object 0x%llx @offset=%td\n", kva(k, obj),
                   static_cast<const uint8_t*>(obj) - base);
    t += slab_print_tracking(k, s, obj);
  }
  emit_slub(k, s, title, t, objects.empty() ? nullptr : objects[0], 0, 1 + long(objects.size()));
}

// warn_free_bad_obj(): kmem_cache_free() of an object of another cache. The object is leaked.
void report_slab_wrong_cache(Kernel& k, const kmem_cache* s, const kmem_cache* real, void* obj) {
  std::string msg = strprintf("kmem_cache_free(%s, %llx): object belongs to different cache %s",
                              s->name.c_str(), kva(k, obj), real->name.c_str());
  report_warn(k, "mm/slub.c", "kmem_cache_free", msg + "\n" + slab_print_tracking(k, real, obj));
}

void report_slab_not_slab(Kernel& k, const char* fn, const kmem_cache* s, const void* obj) {
  std::string msg =
      strprintf("%s(%s, %llx): object is not in a slab page", fn, s ? s->name.c_str() : "(null)",
                k.mem.is_direct(obj) ? kva(k, obj) : (unsigned long long)(uintptr_t)obj);
  report_warn(k, "mm/slub.c", fn, msg);
}

} // namespace kmm
