// The plain replay driver: a main() that feeds files, and every file inside directories (sorted,
// recursively), to the fuzz target, with no fuzzing engine. Built with any compiler; ctest runs
// it over corpus/<target>/ (binary seeds) and corpus/regressions/<target>/ (text scenarios).
//
//   fuzz_buddy FILE|DIR...      a *.kmm file is a text scenario, anything else a binary input
//   fuzz_buddy --reset-cost     time an empty input (boot + teardown) on each fuzz machine
//   fuzz_buddy --dict           print the target's dictionary (fuzz/buddy.dict)
//
// Exit status 0 when every input ran clean; a failed oracle aborts (after printing the scenario).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "harness.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  std::vector<fs::path> files;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--reset-cost") { // boot + teardown of each fuzz machine: an input of one header byte
      for (size_t mi = 0; mi < kmm::fuzz_machines().size(); mi++) {
        uint8_t header = static_cast<uint8_t>(mi);
        const int n = 200;
        auto t0 = std::chrono::steady_clock::now();
        for (int k = 0; k < n; k++) LLVMFuzzerTestOneInput(&header, 1);
        double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                        .count() /
                    n;
        std::printf(
            "%s: empty input on machine %zu (%s): %.1f us per input (boot + checks + teardown)\n",
            kmm_fuzz_target().name, mi,
            kmm_fuzz_target().boot             ? kmm_fuzz_target().boot
            : kmm::fuzz_machines()[mi].empty() ? "default"
                                               : kmm::fuzz_machines()[mi].c_str(),
            us);
      }
      return 0;
    }
    if (a == "--dict") {
      std::printf("%s", kmm::fuzz::dictionary(kmm_fuzz_target()).c_str());
      return 0;
    }
    if (a.size() > 1 && a[0] == '-') continue; // libFuzzer-style flags are ignored here
    fs::path p(a);
    if (fs::is_directory(p)) {
      std::vector<fs::path> in;
      for (const auto& e : fs::recursive_directory_iterator(p))
        if (e.is_regular_file()) in.push_back(e.path());
      std::sort(in.begin(), in.end());
      files.insert(files.end(), in.begin(), in.end());
    } else if (fs::exists(p)) {
      files.push_back(p);
    } else {
      std::fprintf(stderr, "%s: no such file or directory: %s\n", argv[0], a.c_str());
      return 2;
    }
  }
  size_t text = 0;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string bytes = ss.str();
    std::fprintf(stderr, "replaying %s\n", f.c_str());
    if (f.extension() == ".kmm") {
      kmm::fuzz::run_text(kmm_fuzz_target(), bytes, f.string());
      text++;
    } else {
      LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    }
  }
  std::printf("%s: replayed %zu inputs (%zu text scenarios) clean\n", kmm_fuzz_target().name,
              files.size(), text);
  return 0;
}
