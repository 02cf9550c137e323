// KASAN mirrored into ASan (ASan builds only; everything here is a no-op elsewhere).
//
// In a build with -fsanitize=address, every change kmm makes to KASAN's shadow of simulated
// memory (kasan.cpp: kasan_poison / kasan_unpoison) is copied into ASan's own shadow for the same
// host addresses (the direct map and the vmalloc mappings). A raw access in user code, such as
// `p[size] = 0` on a kmalloc(size) object, is then caught by ASan's instrumentation; the error
// report callback (kasan_asan.cpp) turns ASan's report into kmm's KASAN report
// ("BUG: KASAN: slab-out-of-bounds in <fn>") in m->reports() and dmesg, and kasan.fault= decides
// what follows: report (continue; needs -fsanitize-recover=address, as the asan preset builds)
// or panic (abort).
//
// kmm's own code must still reach poisoned memory, as the kernel's uninstrumented mm/slub.c and
// kasan_disable_current() sections do: free pointers inside free objects, slub_debug red zones,
// poison and tracking, init_on_free and page poisoning, validation walks and hex dumps. Those
// accesses use KMM_NO_SANITIZE_ADDRESS functions or a KasanMetadataAccess scope.
//
// The gate is `defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)`.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__SANITIZE_ADDRESS__)
#define KMM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KMM_ASAN 1
#endif
#endif
#ifndef KMM_ASAN
#define KMM_ASAN 0
#endif

// Whether a raw bad access to simulated memory is reported and survived: the asan preset builds
// with -fsanitize-recover=address (KMM_ASAN_RECOVER); the fuzz preset's ASan stops the process
// at the first one, after kmm has recorded it.
#if KMM_ASAN && defined(KMM_ASAN_RECOVER)
#define KMM_ASAN_RECOVERS 1
#else
#define KMM_ASAN_RECOVERS 0
#endif

#if KMM_ASAN
#define KMM_NO_SANITIZE_ADDRESS __attribute__((no_sanitize("address")))
#else
#define KMM_NO_SANITIZE_ADDRESS
#endif
// Neither ASan nor UBSan: for the few whole-RAM walks of the checkers whose bounds their callers
// establish, where the per-access checks cost more than the walk (validate.cpp says which).
#if KMM_ASAN
#define KMM_NO_SANITIZE __attribute__((no_sanitize("address", "undefined")))
#else
#define KMM_NO_SANITIZE __attribute__((no_sanitize("undefined")))
#endif
// A copy loop the compiler must not turn into a memcpy call (which ASan intercepts and checks):
// for the uninstrumented copies above. (g++ has no such attribute, and builds no ASan flavour.)
#if defined(__clang__)
#define KMM_NO_MEMCPY_CALL __attribute__((no_builtin("memcpy")))
#else
#define KMM_NO_MEMCPY_CALL
#endif

namespace kmm {

struct Kernel;
struct KasanState;

#if KMM_ASAN

// kasan_init: the machine's simulated memory joins the mirror (and the report callback is in
// place). kasan_asan_unregister (KasanState's destructor) clears ASan's shadow of the machine's
// ranges, so a later mapping at those host addresses starts clean.
void kasan_asan_register(Kernel& k);
void kasan_asan_unregister(Kernel& k, KasanState& st);
// Clears what the machine poisoned in ASan's shadow, as at kasan_init (a restore to the boot
// image, recycle.h); the machine stays registered.
void kasan_asan_forget(Kernel& k, KasanState& st);
// ASan's shadow of [addr, addr + size) (granule-rounded) := KASAN's shadow of the same bytes,
// its chunks marked in KasanState::asan_synced_* (KASAN's shadow there may be as boot left it).
void kasan_asan_sync(Kernel& k, const void* addr, size_t size);
// ASan's shadow of [addr, addr + size) := poisoned (value >= 8) or accessible prefix (0..7).
// Only right after KASAN's shadow of the same bytes was written (kasan_poison, kasan_unpoison):
// that write marked their chunks in KasanState::shadow_written_*, which is where
// kasan_asan_forget looks for this poison.
void kasan_asan_set(Kernel& k, const void* addr, size_t size, uint8_t kasan_value);
// Makes [addr, addr + size) accessible to ASan (KASAN's shadow is left alone).
void kasan_asan_clear(const void* addr, size_t size);

// metadata_access_enable() / kasan_disable_current(): for the scope's lifetime kmm's own code
// may touch [p, p + n) whatever its KASAN state. When the outermost scope of a thread ends,
// every range opened on that thread gets KASAN's shadow mirrored again. Cheap when no machine
// has KASAN on.
class KasanMetadataAccess {
public:
  KasanMetadataAccess(const void* p, size_t n);
  ~KasanMetadataAccess();
  KasanMetadataAccess(const KasanMetadataAccess&) = delete;
  KasanMetadataAccess& operator=(const KasanMetadataAccess&) = delete;

private:
  bool active_ = false;
};

#else

inline void kasan_asan_register(Kernel&) {}
inline void kasan_asan_unregister(Kernel&, KasanState&) {}
inline void kasan_asan_forget(Kernel&, KasanState&) {}
inline void kasan_asan_sync(Kernel&, const void*, size_t) {}
inline void kasan_asan_set(Kernel&, const void*, size_t, uint8_t) {}
inline void kasan_asan_clear(const void*, size_t) {}

class KasanMetadataAccess {
public:
  KasanMetadataAccess(const void*, size_t) {}
  ~KasanMetadataAccess() {}
  KasanMetadataAccess(const KasanMetadataAccess&) = delete;
  KasanMetadataAccess& operator=(const KasanMetadataAccess&) = delete;
};

#endif

} // namespace kmm
