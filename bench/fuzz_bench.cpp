// Fuzz reset cost and exec/s (issue #8): what one fuzz input costs, measured on the harness
// itself. Built once per fuzz target (fuzz_bench_<target>, linked with fuzz/fuzz_<target>.cpp),
// so LLVMFuzzerTestOneInput is exactly what libFuzzer and AFL++ call per input; only the engine's
// own work (mutation, coverage bookkeeping) is missing, so these are upper bounds on exec/s.
//
//   BM_BootTeardown/machine:I  Machine::boot of the I-th boot line the input may choose (the
//                              target's fixed line if it has one) and its destruction: the reset
//                              an input pays when its machine cannot be restored (recycle.h).
//   BM_Restore/machine:I       the reset of an input that stayed in the page allocator: an
//                              order-3 block allocated, written and freed, then the machine
//                              restored to its boot image (none for a KASAN machine: skipped);
//                              the harness does this after every clean input it can.
//   BM_Validate/machine:I      kmm::validate() of that fresh machine: the harness runs it every
//                              16 operations and at the end of every non-empty input.
//   BM_EmptyInput              a zero-length input: boot, the boot-time oracles, teardown.
//   BM_Seeds                   the target's seed corpus (corpus/<target>/, text seeds encoded),
//                              one input per iteration in turn.
//   BM_Random/len:N            fixed pseudo-random inputs of N bytes (what mutation produces
//                              early in a campaign), one per iteration in turn. Each candidate
//                              first runs once in a forked child; those that abort (a finding
//                              of the target's oracles) are left out, counted in the counter
//                              `aborting`, and the first one's oracle message goes to stderr.
// items_per_second is exec/s.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "harness.h"
#include "kmm/linux.h"
#include "kmm/scenario.h"
#include "kmm/validate.h"
#include "mmzone.h"
#include "recycle.h"

namespace {

std::vector<std::string> boot_lines() {
  const kmm::fuzz::Target& t = kmm_fuzz_target();
  if (t.boot) return {t.boot};
  return kmm::fuzz_machines();
}

void BM_BootTeardown(benchmark::State& state) {
  const std::string line = boot_lines()[size_t(state.range(0))];
  for (auto _ : state) {
    auto m = kmm::Machine::boot(line);
    benchmark::DoNotOptimize(m.get());
  }
  state.SetLabel(line.empty() ? "default" : line);
}

void BM_Restore(benchmark::State& state) {
  const std::string line = boot_lines()[size_t(state.range(0))];
  auto m = kmm::Machine::boot(line);
  kmm::BootImagePtr img = kmm::take_boot_image(m->kernel());
  state.SetLabel(line.empty() ? "default" : line);
  if (!img) {
    state.SkipWithError("no boot image for this machine");
    return;
  }
  kmm::MachineScope scope(*m);
  for (auto _ : state) {
    struct page* p = alloc_pages(GFP_KERNEL, 3);
    if (p) {
      std::memset(page_address(p), 0x5a, 8 * kmm::PAGE_SIZE_);
      __free_pages(p, 3);
    }
    if (!kmm::restore_boot_image(m->kernel(), *img)) {
      state.SkipWithError("restore refused");
      return;
    }
  }
}

void BM_Validate(benchmark::State& state) {
  const std::string line = boot_lines()[size_t(state.range(0))];
  auto m = kmm::Machine::boot(line);
  kmm::MachineScope scope(*m);
  for (auto _ : state) {
    auto errors = kmm::validate(*m);
    benchmark::DoNotOptimize(errors.data());
  }
  state.SetLabel(line.empty() ? "default" : line);
}

void run_inputs(benchmark::State& state, const std::vector<std::vector<uint8_t>>& inputs) {
  if (inputs.empty()) {
    state.SkipWithError("no inputs");
    return;
  }
  size_t i = 0;
  for (auto _ : state) {
    const auto& in = inputs[i++ % inputs.size()];
    LLVMFuzzerTestOneInput(in.data(), in.size());
  }
  state.SetItemsProcessed(int64_t(state.iterations()));
}

void BM_EmptyInput(benchmark::State& state) { run_inputs(state, {{}}); }

std::vector<std::vector<uint8_t>> seeds() {
  std::vector<std::vector<uint8_t>> out;
  std::filesystem::path dir = std::filesystem::path(KMM_CORPUS_DIR) / kmm_fuzz_target().name;
  if (!std::filesystem::is_directory(dir)) return out;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string bytes = ss.str();
    if (f.extension() == ".kmm") {
      kmm::Scenario s = kmm::parse_scenario(bytes, f.string());
      if (kmm_fuzz_target().boot) s.boot.clear(); // the target's line is not encodable
      out.push_back(kmm::encode_scenario(s));
    } else {
      out.emplace_back(bytes.begin(), bytes.end());
    }
  }
  return out;
}

void BM_Seeds(benchmark::State& state) {
  static const auto inputs = seeds();
  run_inputs(state, inputs);
  state.SetLabel(std::to_string(inputs.size()) + " seeds");
}

// Runs one input in a child process: true if it returned normally. Otherwise `why` is the
// harness's "oracle failed" line (or the wait status).
bool runs_clean(const std::vector<uint8_t>& in, std::string& why) {
  FILE* err = std::tmpfile();
  if (!err) return false;
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(fileno(err), 2);
    LLVMFuzzerTestOneInput(in.data(), in.size());
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  why = "wait status " + std::to_string(status);
  std::rewind(err);
  char line[4096];
  while (std::fgets(line, sizeof line, err))
    if (std::strstr(line, "oracle failed")) {
      why = line;
      break;
    }
  std::fclose(err);
  return clean;
}

void BM_Random(benchmark::State& state) {
  const auto len = size_t(state.range(0));
  static std::map<size_t, std::pair<std::vector<std::vector<uint8_t>>, int>> screened;
  auto& [inputs, aborting] = screened[len];
  if (inputs.empty() && aborting == 0) {
    std::mt19937_64 rng(len); // fixed: every run sees the same inputs
    for (int i = 0; i < 64; i++) {
      std::vector<uint8_t> in(len);
      for (auto& b : in) b = uint8_t(rng());
      std::string why;
      if (runs_clean(in, why)) {
        inputs.push_back(std::move(in));
      } else if (aborting++ == 0) {
        std::fprintf(stderr, "fuzz_bench: target %s aborts on random input %d of %zu bytes: %s",
                     kmm_fuzz_target().name, i, len, why.c_str());
      }
    }
  }
  run_inputs(state, inputs);
  state.counters["aborting"] = aborting;
  state.counters["inputs"] = double(inputs.size());
}

// Registered from main, not at static initialisation: the target object lives in another
// translation unit and may not be constructed yet then.
void register_all() {
  const std::string name = kmm_fuzz_target().name;
  auto* b = benchmark::RegisterBenchmark(("BM_BootTeardown/" + name).c_str(), BM_BootTeardown);
  b->ArgName("machine")->DenseRange(0, int(boot_lines().size()) - 1)->Unit(benchmark::kMicrosecond);
  b = benchmark::RegisterBenchmark(("BM_Restore/" + name).c_str(), BM_Restore);
  b->ArgName("machine")->DenseRange(0, int(boot_lines().size()) - 1)->Unit(benchmark::kMicrosecond);
  b = benchmark::RegisterBenchmark(("BM_Validate/" + name).c_str(), BM_Validate);
  b->ArgName("machine")->DenseRange(0, int(boot_lines().size()) - 1)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark(("BM_EmptyInput/" + name).c_str(), BM_EmptyInput)
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark(("BM_Seeds/" + name).c_str(), BM_Seeds)
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark(("BM_Random/" + name).c_str(), BM_Random)
      ->ArgName("len")
      ->Arg(64)
      ->Arg(512)
      ->Arg(4096)
      ->Unit(benchmark::kMicrosecond);
}

} // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_all();
  benchmark::AddCustomContext("fuzz_target", kmm_fuzz_target().name);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
