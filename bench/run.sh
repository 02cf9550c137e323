#!/usr/bin/env bash
# Runs every benchmark of issues #3, #4, #6 and #8 with three repetitions and prints the tables
# (bench/ratios.py: medians; kmm/mimalloc and KASAN/KFENCE ratios). A few minutes on 2 cores.
#
#   cmake --preset release -B build/release && cmake --build build/release -j2
#   bench/run.sh build/release [OUTDIR]      # JSON in OUTDIR (default build/release/bench-results)
set -euo pipefail

build=${1:?usage: bench/run.sh BUILD_DIR [OUTDIR]}
out=${2:-$build/bench-results}
bin=$build/bench
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"

run() { # name, extra args...
  local name=$1
  shift
  echo "== $name $*" >&2
  "$bin/$name" --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
    --benchmark_out="$out/$name.json" --benchmark_out_format=json "$@" >&2
}

# The allocators' rows interleave at random across nine repetitions, so a change in the load of
# a shared machine touches kmm and its peers alike.
run slab_bench --benchmark_min_time=0.05 --benchmark_repetitions=9 \
  --benchmark_enable_random_interleaving=true
run kasan_bench --benchmark_min_time=0.1
run pressure_bench
# len:4096 random inputs are left out here: on the page_poison and CMA machines one input takes
# seconds, and most of them abort on the slab target (see the README).
for f in "$bin"/fuzz_bench_*; do
  run "$(basename "$f")" --benchmark_min_time=0.2 --benchmark_filter='-len:4096$'
done

python3 "$here/ratios.py" "$out"/slab_bench.json "$out"/kasan_bench.json \
  "$out"/pressure_bench.json "$out"/fuzz_bench_*.json
