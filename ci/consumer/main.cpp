// Uses an installed kmm through its public headers only: boot a machine, allocate pages with the
// kernel's API from <kmm/linux.h>, and check that /proc/buddyinfo shows the allocation.
#include <kmm/linux.h>
#include <kmm/machine.h>

#include <cstdio>
#include <sstream>
#include <string>

namespace {

// Free blocks of `order` summed over every zone of /proc/buddyinfo
// ("Node 0, zone   Normal   c0 c1 ... c10").
long free_blocks(kmm::Machine& m, unsigned order) {
  std::istringstream in(m.proc_read("/proc/buddyinfo"));
  std::string line;
  long total = 0;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string node, nid, zone, name;
    words >> node >> nid >> zone >> name;
    long count = 0;
    for (unsigned o = 0; o <= order && words >> count; o++) {}
    total += count;
  }
  return total;
}

int fail(const char* what) {
  std::fprintf(stderr, "consumer: FAILED: %s\n", what);
  return 1;
}

} // namespace

int main() {
  auto m = kmm::Machine::boot("mem=64M nr_cpus=2");
  kmm::MachineScope scope(*m);

  std::string before = m->proc_read("/proc/buddyinfo");
  if (before.rfind("Node 0, zone", 0) != 0)
    return fail("/proc/buddyinfo does not start with 'Node 0, zone'");

  long order10_before = free_blocks(*m, MAX_PAGE_ORDER);
  struct page* p = alloc_pages(GFP_KERNEL, MAX_PAGE_ORDER); // one 4 MiB block
  if (!p) return fail("alloc_pages(GFP_KERNEL, MAX_PAGE_ORDER) returned NULL");
  auto* bytes = static_cast<unsigned char*>(page_address(p));
  bytes[0] = 0x5a;
  bytes[(PAGE_SIZE << MAX_PAGE_ORDER) - 1] = 0xa5;
  if (free_blocks(*m, MAX_PAGE_ORDER) != order10_before - 1)
    return fail("an order-10 allocation did not take one block out of /proc/buddyinfo");

  __free_pages(p, MAX_PAGE_ORDER);
  if (m->proc_read("/proc/buddyinfo") != before)
    return fail("/proc/buddyinfo differs after the free");
  if (!m->reports().empty()) return fail("the machine reported an error");

  std::printf("%s", before.c_str());
  std::printf("consumer: OK (kmm found by find_package, order-10 block allocated and freed)\n");
  return 0;
}
