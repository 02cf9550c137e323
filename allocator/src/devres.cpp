// Device-managed resources (drivers/base/devres.c) and the devm_k* allocations: a device keeps
// its resources in acquisition order and releases them, newest first, when it is destroyed.
#include <cstring>
#include <stdexcept>

#include "bug.h"
#include "kernel.h"
#include "kmalloc.h"
#include "kmm/device.h"
#include "kmm/linux.h"

device::device(kmm::Machine& m, std::string name, unsigned dma_mask_bits)
    : dma_mask(dma_mask_bits >= 64 ? ~0ull : (1ull << dma_mask_bits) - 1),
      coherent_dma_mask(dma_mask), machine_(&m), name_(std::move(name)) {}

// devres_release_all(): with the device's machine current, as the driver core runs it.
device::~device() {
  std::vector<devres> list;
  {
    std::lock_guard<std::mutex> guard(devres_lock_);
    list.swap(devres_);
  }
  if (list.empty()) return;
  kmm::Kernel* prev_k = kmm::Kernel::current;
  kmm::Kernel::current = &machine_->kernel();
  for (auto it = list.rbegin(); it != list.rend(); ++it) it->release(this, it->data);
  kmm::Kernel::current = prev_k;
}

void device::devres_add(devres r) {
  std::lock_guard<std::mutex> guard(devres_lock_);
  devres_.push_back(r);
}

bool device::devres_remove(void* data, const char* kind) {
  std::lock_guard<std::mutex> guard(devres_lock_);
  for (auto it = devres_.rbegin(); it != devres_.rend(); ++it)
    if (it->data == data && std::strcmp(it->kind, kind) == 0) {
      devres_.erase(std::next(it).base());
      return true;
    }
  return false;
}

size_t device::devres_count() const {
  std::lock_guard<std::mutex> guard(devres_lock_);
  return devres_.size();
}

static kmm::Kernel& K() {
  kmm::Kernel* k = kmm::Kernel::current;
  if (!k)
    throw std::logic_error("kmm: no current machine on this thread (create a kmm::MachineScope "
                           "or kmm::CpuScope first)");
  return *k;
}

static void devm_kmalloc_release(struct device* dev, void* data) {
  kmm::kfree_internal(dev->machine().kernel(), data, 0);
}

void* devm_kmalloc(struct device* dev, size_t size, gfp_t gfp) {
  kmm::Kernel& k = K();
  if (!dev) {
    kmm::report_warn(k, "drivers/base/devres.c", "devm_kmalloc", "devm_kmalloc() without a device");
    return nullptr;
  }
  if (size == 0) return ZERO_SIZE_PTR; // as the kernel: nothing to manage
  void* p = kmm::__kmalloc(k, size, gfp, reinterpret_cast<uintptr_t>(__builtin_return_address(0)));
  if (p) dev->devres_add({devm_kmalloc_release, p, "devm_kmalloc"});
  return p;
}

void* devm_kcalloc(struct device* dev, size_t n, size_t size, gfp_t gfp) {
  size_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes)) return nullptr;
  return devm_kmalloc(dev, bytes, gfp | __GFP_ZERO);
}

char* devm_kstrdup(struct device* dev, const char* s, gfp_t gfp) {
  if (!s) return nullptr;
  size_t len = std::strlen(s) + 1;
  auto* p = static_cast<char*>(devm_kmalloc(dev, len, gfp));
  if (p) std::memcpy(p, s, len);
  return p;
}

// devm_kfree(): frees a managed allocation now; WARNs (and frees nothing) if it is not one.
void devm_kfree(struct device* dev, const void* p) {
  kmm::Kernel& k = K();
  if (ZERO_OR_NULL_PTR(p)) return;
  if (!dev || !dev->devres_remove(const_cast<void*>(p), "devm_kmalloc")) {
    kmm::report_warn(k, "drivers/base/devres.c", "devm_kfree",
                     "WARN_ON(rc): devm_kfree() of memory that is not managed by this device");
    return;
  }
  kmm::kfree_internal(k, p, reinterpret_cast<uintptr_t>(__builtin_return_address(0)));
}
