// <kmm/kasan.h>: explicit KASAN checks on the current machine.
#include <stdexcept>

#include "kasan.h"
#include "kernel.h"
#include "kmm/linux.h"

using kmm::Kernel;

static Kernel& K() {
  Kernel* k = Kernel::current;
  if (!k)
    throw std::logic_error("kmm: no current machine on this thread (create a kmm::MachineScope "
                           "or kmm::CpuScope first)");
  return *k;
}

bool kmm::kasan_check_access(const volatile void* p, unsigned long size, bool write,
                             const char* fn) {
  return kmm::kasan_check(K(), const_cast<const void*>(p), size, write, fn);
}

bool kasan_check_read(const volatile void* p, unsigned int size) {
  return kmm::kasan_check_access(p, size, false, "kasan_check_read");
}

bool kasan_check_write(const volatile void* p, unsigned int size) {
  return kmm::kasan_check_access(p, size, true, "kasan_check_write");
}
