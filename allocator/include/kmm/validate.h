// kmm::validate: walk every structure of a machine and list the invariants that do not hold.
// An empty result means the machine is consistent. Fuzzers, properties and tests call it.
#pragma once

#include <string>
#include <vector>

#include "kmm/machine.h"

namespace kmm {

// Each entry names the subsystem and what is broken ("buddy: zone DMA32: pfn 0x40 ...").
// Call it while no other thread is allocating on the machine.
std::vector<std::string> validate(Machine& m);

} // namespace kmm
