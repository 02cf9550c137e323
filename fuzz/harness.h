// The fuzz harness shared by every target in fuzz/: decode an input with the scenario language's
// binary form, run the operations a target draws on a fresh machine one by one, and check the
// oracles after each. "Fresh" is a new boot, or the previous input's machine restored to its boot
// image when that input stayed in the page allocator (recycle.h; harness.cpp says when). A target
// file is small: it names its operations, its machine and its extra oracle, and ends in
// KMM_FUZZ_TARGET(...).
//
// Oracles every target gets (the generic model of what the scenario did):
//   - liveness: each result is live until freed; an operation on a dead result, a free with the
//     wrong order/size/cache, a write outside an object, `corrupt` ... is *misuse*. Clean targets
//     skip misuse (it never runs, so it is not in the printed scenario); the detection target
//     runs chosen misuse and expects the matching report.
//   - no overlap: no two live allocations share a byte (differential against the live-range map).
//   - content: once an allocation is written, its bytes are shadowed; they must read back
//     unchanged until it is freed (checked at free, at krealloc - which must carry the prefix -
//     and at the end).
//   - reports: a clean run produces no report except the kinds the target allows (allocation
//     failures, WARN for impossible requests ...).
//   - validate(): after every `validate_every` operations (16 in every target: validate walks the
//     whole machine, so it costs milliseconds) and at the end.
// A failed oracle prints the executed scenario as text (kmm run can replay it) and aborts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kmm/machine.h"
#include "kmm/page.h"
#include "kmm/scenario.h"

namespace kmm::scn {
struct Runner;
}

namespace kmm::fuzz {

struct Ctx;

// The model of one result (p0, o3, c1 ...).
struct Live {
  uint8_t kind = 0;   // scn::Kind
  bool live = false;  // allocated and not freed (a cache: created, not destroyed)
  bool split = false; // split_page'd: pages are freed one by one
  unsigned order = 0; // page blocks
  uint64_t gfp = 0;
  std::vector<uint8_t> page_live; // split blocks: per page (empty until split_page)
  std::vector<int> extra_refs;    // get_page count per page (empty until the first get_page)
  std::string cache;              // objects of kmem_cache_alloc: the cache result's name
  int objects = 0;                // caches: live objects
  uintptr_t addr = 0;             // host address (0 for NULL; tasks and files have none)
  int id = 0;                     // tasks: pid; files: inode
  int adj = 0;                    // tasks: oom_score_adj as the scenario set it
  int64_t size = 0;               // bytes (a task: the anonymous pages it has touched)
  // The content oracle's expectation, from the first write on. Either `uniform` (0-255): every
  // byte of the allocation reads that value, after a fill, with `shadow` empty (a fill of a 4 MiB
  // block copies nothing, and its check reads memory once); or `shadow`, the expected bytes
  // (uniform -1). Neither until the first write.
  std::vector<uint8_t> shadow;
  int16_t uniform = -1;
  bool zeroed = false; // read back all zero at birth (a __GFP_ZERO allocation), not written since
  bool written() const { return uniform >= 0 || !shadow.empty(); }
  // What the content oracle expects at byte `off` (written() only).
  uint8_t expected(int64_t off) const {
    return uniform >= 0 ? uint8_t(uniform) : shadow[size_t(off)];
  }
};

// What a target checks beyond the generic oracles. Each hook may call fail().
struct Oracle {
  virtual ~Oracle() = default;
  virtual void at_boot(Ctx&) {}
  // A misuse operation (why says which): return true to run it (a detection target injects
  // it), false to skip it. Clean targets keep the default.
  virtual bool inject(Ctx&, const Op&, const std::string& why) { return false; }
  // The misuse inject() lets run is a legal call the kernel only frowns on (it corrupts no
  // state): after such a run the harness still frees everything, and the machine is restored for
  // the next input instead of booted anew. Reports and validate() stay unchecked from the misuse
  // on; after_free_all is not called.
  virtual bool misuse_keeps_machine_sound() const { return false; }
  virtual void after(Ctx&, const Op&) {}
  virtual void at_end(Ctx&) {}         // before the harness frees what is still live (always)
  virtual void after_free_all(Ctx&) {} // after it did (clean runs only)
};

struct Target {
  const char* name;
  std::vector<const char*> ops; // the operations this target runs; the others are dropped
  const char* boot = nullptr;   // the machine; nullptr: the input's header byte chooses
  unsigned validate_every = 16; // validate() after every N operations (and at the end)
  uint32_t allowed_reports = 0; // bit (1 << ReportKind) for report kinds a clean run may give
  bool free_at_end = true;      // free every live result at the end (then validate again)
  std::unique_ptr<Oracle> (*make_oracle)() = nullptr;
};

struct Ctx {
  const Target& t;
  Scenario executed; // what really ran (the scenario a failure prints)
  std::unique_ptr<Machine> m;
  scn::Runner* r = nullptr;
  std::map<std::string, Live, NameLess> res; // by result name
  // Live [start, end) -> the result holding it (a split block: one range per page).
  std::map<uintptr_t, std::pair<uintptr_t, std::string>> ranges;
  bool tainted = false; // a misuse ran: reports and invariants are the oracle's call
  bool stop = false;    // an oracle ends the run after this operation
  int atomic = 0;       // spin_lock / local_irq_disable depth
  size_t reports_seen = 0;
  uint32_t allowed_now = 0; // extra report kinds allowed for the current operation
  explicit Ctx(const Target& t_) : t(t_) {}
};

// Prints "kmm-fuzz <target>: <msg>", the scenario that ran, the trace, then abort()s.
[[noreturn]] void fail(Ctx& c, const std::string& msg);

// The entry points: bytes (LLVMFuzzerTestOneInput) and a text scenario (the replayer, for
// corpus/regressions/*.kmm).
int run_bytes(const Target& t, const uint8_t* data, size_t size);
int run_text(const Target& t, const std::string& text, const std::string& filename);

// The target's dictionary (AFL -x / libFuzzer -dict format): one token per operation, its
// opcode byte. `fuzz_<t> --dict` prints it; fuzz/<t>.dict is that output.
std::string dictionary(const Target& t);

// Helpers for target oracles.
::page* block_page(Ctx& c, const std::string& name);
// The content oracle now, on every live result that was written (fails on a mismatch).
void check_all_content(Ctx& c, const char* when);
// The offset in [0, n) of the first byte of mem that differs from what l's content oracle expects
// at [off, off + n), or n when none does (l.written() only).
size_t first_unexpected(const Live& l, int64_t off, const uint8_t* mem, size_t n);
// The bytes [off, off+len) of a live result as the machine has them now (tasks: through their
// current anonymous pages); false if they are not there.
bool read_result(Ctx& c, const std::string& name, int64_t off, int64_t len,
                 std::vector<uint8_t>* out);
std::vector<std::string> validate_now(Ctx& c);
std::string op_text(Ctx& c, const Op& op);
const char* op_name(const Op& op);

inline constexpr uint32_t report_bit(ReportKind k) { return 1u << static_cast<unsigned>(k); }

} // namespace kmm::fuzz

// The target this executable is built for (the replayer asks it for text scenarios).
const kmm::fuzz::Target& kmm_fuzz_target();
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

#define KMM_FUZZ_TARGET(T)                                                                         \
  const kmm::fuzz::Target& kmm_fuzz_target() { return T; }                                         \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {                        \
    return kmm::fuzz::run_bytes(T, data, size);                                                    \
  }
