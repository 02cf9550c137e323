// AFL++ persistent mode with shared-memory test cases (instrumentation/README.persistent_mode.md):
// one process runs up to 10000 inputs, each on a fresh machine. Built only by the `afl` preset
// (afl-clang-fast++ defines the __AFL_* macros); the fallbacks let a plain compiler build it
// too, reading one input from stdin.
#include <cstdint>
#include <cstdio>
#include <vector>
#include <unistd.h>

#include "harness.h"

#ifndef __AFL_FUZZ_TESTCASE_LEN
static std::vector<unsigned char> kmm_stdin_input;
static ssize_t kmm_stdin_len;
#define __AFL_FUZZ_TESTCASE_LEN kmm_stdin_len
#define __AFL_FUZZ_TESTCASE_BUF kmm_stdin_input.data()
#define __AFL_FUZZ_INIT() void kmm_no_afl()
#define __AFL_INIT()                                                                               \
  (kmm_stdin_input.resize(1 << 20), kmm_stdin_len = read(0, kmm_stdin_input.data(), 1 << 20))
static int kmm_loop_once = 1;
#define __AFL_LOOP(x) (kmm_loop_once-- > 0)
#endif

__AFL_FUZZ_INIT();

int main() {
  __AFL_INIT();
  unsigned char* buf = __AFL_FUZZ_TESTCASE_BUF; // after __AFL_INIT, before the loop
  while (__AFL_LOOP(10000)) {
    auto len = static_cast<size_t>(__AFL_FUZZ_TESTCASE_LEN);
    LLVMFuzzerTestOneInput(buf, len);
  }
  return 0;
}
