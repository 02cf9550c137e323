// <kmm/slab.h>: the kernel's slab and kmalloc API as thin wrappers that find the current machine
// and call slub/kmalloc with the caller's address (for SLAB_STORE_USER tracks).
#include <cstring>
#include <stdexcept>

#include "bug.h"
#include "kasan_asan.h"
#include "kernel.h"
#include "kmalloc.h"
#include "kmalloc_fast.h"
#include "kmm/linux.h"
#include "slub.h"
#include "slub_fast.h"

using kmm::Kernel;

[[noreturn]] static __attribute__((noinline, cold)) void no_machine() {
  throw std::logic_error("kmm: no current machine on this thread (create a kmm::MachineScope "
                         "or kmm::CpuScope first)");
}

// The current machine. The throw is out of line, so the wrappers below need no stack frame and
// tail-call the allocator.
static Kernel& K() {
  Kernel* k = Kernel::current;
  if (__builtin_expect(!k, 0)) no_machine();
  return *k;
}

#define CALLER reinterpret_cast<uintptr_t>(__builtin_return_address(0))

struct kmem_cache* kmem_cache_create(const char* name, unsigned int size, unsigned int align,
                                     slab_flags_t flags, void (*ctor)(void*)) {
  Kernel& k = K();
  if (in_interrupt()) {
    kmm::report_warn(k, "mm/slab_common.c", "kmem_cache_create",
                     "kmem_cache_create() in interrupt");
    return nullptr;
  }
  return kmm::create_cache(k, name, size, align, flags, ctor, CALLER);
}

void kmem_cache_destroy(struct kmem_cache* s) { kmm::destroy_cache(K(), s, CALLER); }
int kmem_cache_shrink(struct kmem_cache* s) { return kmm::__kmem_cache_shrink(K(), s); }
unsigned int kmem_cache_size(struct kmem_cache* s) { return s->object_size; }
const char* kmem_cache_name(const struct kmem_cache* s) { return s->name.c_str(); }

void* kmem_cache_alloc(struct kmem_cache* s, gfp_t flags) {
  return kmm::slab_alloc_fast(K(), s, flags, s->object_size, CALLER);
}
void* kmem_cache_alloc_node(struct kmem_cache* s, gfp_t flags, int /*node*/) {
  return kmm::slab_alloc_fast(K(), s, flags, s->object_size, CALLER);
}
void kmem_cache_free(struct kmem_cache* s, void* objp) {
  if (__builtin_expect(!objp, 0)) return;
  kmm::kmem_cache_free_fast(K(), s, objp, CALLER);
}

int kmem_cache_alloc_bulk(struct kmem_cache* s, gfp_t flags, size_t size, void** p) {
  Kernel& k = K();
  uintptr_t caller = CALLER;
  for (size_t i = 0; i < size; i++) {
    p[i] = kmm::slab_alloc(k, s, flags, s->object_size, caller);
    if (!p[i]) { // all or nothing
      for (size_t j = 0; j < i; j++) kmm::kmem_cache_free_checked(k, s, p[j], caller);
      return 0;
    }
  }
  return int(size);
}

void kmem_cache_free_bulk(struct kmem_cache* s, size_t size, void** p) {
  Kernel& k = K();
  uintptr_t caller = CALLER;
  for (size_t i = 0; i < size; i++) {
    if (!p[i]) continue;
    if (s) kmm::kmem_cache_free_checked(k, s, p[i], caller);
    else kmm::kfree_internal(k, p[i], caller);
  }
}

void* kmalloc(size_t size, gfp_t flags) { return kmm::kmalloc_fast(K(), size, flags, CALLER); }
void* kmalloc_node(size_t size, gfp_t flags, int /*node*/) {
  return kmm::kmalloc_fast(K(), size, flags, CALLER);
}
void* __kmalloc_cache_noprof(struct kmem_cache* s, gfp_t flags, size_t size) {
  return kmm::__kmalloc_cache(K(), s, flags, size, CALLER);
}

void* kmalloc_array(size_t n, size_t size, gfp_t flags) {
  size_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes)) return nullptr;
  return kmm::__kmalloc(K(), bytes, flags, CALLER);
}

void* krealloc(const void* p, size_t new_size, gfp_t flags) {
  return kmm::__krealloc(K(), p, new_size, flags, CALLER);
}
void kfree(const void* objp) { kmm::kfree_fast(K(), objp, CALLER); }

void kfree_sensitive(const void* objp) {
  Kernel& k = K();
  size_t ks = kmm::__ksize(k, objp);
  if (ks) { // kasan_unpoison_range() + memzero_explicit: the whole bucket, red zone included
    kmm::KasanMetadataAccess scope(objp, ks);
    std::memset(const_cast<void*>(objp), 0, ks);
  }
  kmm::kfree_internal(k, objp, CALLER);
}

size_t ksize(const void* objp) { return kmm::__ksize(K(), objp); }
size_t kmalloc_size_roundup(size_t size) { return kmm::kmalloc_size_roundup(K(), size); }

void* kmemdup(const void* src, size_t len, gfp_t gfp) {
  void* p = kmm::__kmalloc(K(), len, gfp, CALLER);
  if (p && len) std::memcpy(p, src, len);
  return p;
}

char* kstrdup(const char* s, gfp_t gfp) {
  if (!s) return nullptr;
  size_t len = std::strlen(s) + 1;
  auto* p = static_cast<char*>(kmm::__kmalloc(K(), len, gfp, CALLER));
  if (p) std::memcpy(p, s, len);
  return p;
}

char* kstrndup(const char* s, size_t max, gfp_t gfp) {
  if (!s) return nullptr;
  size_t len = strnlen(s, max);
  auto* p = static_cast<char*>(kmm::__kmalloc(K(), len + 1, gfp, CALLER));
  if (p) {
    std::memcpy(p, s, len);
    p[len] = '\0';
  }
  return p;
}
