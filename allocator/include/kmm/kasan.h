// KASAN's explicit checks (include/linux/kasan-checks.h). With kasan=on they check the shadow
// of simulated memory and report a bad access as the kernel does; with kasan=off they return
// true. Included by <kmm/linux.h>. [contract]
#pragma once

bool kasan_check_read(const volatile void* p, unsigned int size);
bool kasan_check_write(const volatile void* p, unsigned int size);

namespace kmm {
// As kasan_check_read/write, naming the function shown in the report title
// ("BUG: KASAN: slab-out-of-bounds in <fn>").
bool kasan_check_access(const volatile void* p, unsigned long size, bool write, const char* fn);
} // namespace kmm
