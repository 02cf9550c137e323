// struct device: a device of the simulated machine, owning its managed resources (devres).
// [contract] (DESIGN.md section 2):
//
//   kmm::Device dev(*m, "mydev", /*dma_mask_bits=*/32);
//   void* buf = devm_kzalloc(&dev, 128, GFP_KERNEL);  // freed when `dev` is destroyed
//
// It is in the global namespace because kernel-style code writes `struct device *`. Resources
// are released in reverse order of acquisition when the device is destroyed (devres_release_all),
// with its machine made current for the release.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace kmm {
class Machine;
}

struct device {
  device(kmm::Machine& m, std::string name, unsigned dma_mask_bits = 32);
  ~device(); // devres_release_all()
  device(const device&) = delete;
  device& operator=(const device&) = delete;

  const char* name() const { return name_.c_str(); }
  kmm::Machine& machine() const { return *machine_; }

  uint64_t dma_mask;          // streaming DMA mask (DMA_BIT_MASK(dma_mask_bits))
  uint64_t coherent_dma_mask; // coherent DMA mask, same by default

  // One managed resource: release(dev, data) runs when the device goes away (or on devres_release).
  struct devres {
    void (*release)(struct device* dev, void* data);
    void* data;
    const char* kind; // "devm_kzalloc", ... for messages
  };
  // Adds a resource (the devres_add of drivers/base/devres.c). Thread-safe.
  void devres_add(devres r);
  // Removes the resource whose data is `data` and kind `kind` without releasing it; false if none.
  bool devres_remove(void* data, const char* kind);
  size_t devres_count() const;

private:
  kmm::Machine* machine_;
  std::string name_;
  mutable std::mutex devres_lock_;
  std::vector<devres> devres_; // in order of acquisition
};

namespace kmm {
using Device = ::device;
}
