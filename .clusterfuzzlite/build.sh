#!/bin/bash -eu
# ClusterFuzzLite / OSS-Fuzz build script. Uses only the builder's variables: $CC $CXX $CFLAGS
# $CXXFLAGS $LIB_FUZZING_ENGINE $SRC $WORK $OUT. For each target in fuzz/ it writes
#   $OUT/fuzz_<t>                    the fuzz target (linked with $LIB_FUZZING_ENGINE)
#   $OUT/fuzz_<t>_seed_corpus.zip    corpus/<t> seeds (text seeds encoded by the kmm tool) and
#                                    corpus/regressions/<t> (encoded the same way)
#   $OUT/fuzz_<t>.dict, .options     fuzz/<t>.dict and fuzz/<t>.options
# Checked locally by ci/check-cflite-build (which sets these variables by hand).
src=$SRC/kmm
build=$WORK/kmm-build
targets="buddy slab kmalloc kasan machine vmalloc cma pressure"

# The library (instrumented with $CXXFLAGS) and the kmm tool (to encode the text seeds).
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_CXX_FLAGS="$CXXFLAGS" \
  -DKMM_BUILD_TESTS=OFF -DKMM_BUILD_BENCH=OFF -DKMM_BUILD_FUZZ=OFF -DKMM_CCACHE=OFF \
  -DKMM_FUZZ_ENGINE=none
cmake --build "$build" --target kmm kmm_tool

for t in $targets; do
  $CXX $CXXFLAGS -std=c++20 -I"$src/allocator/include" -I"$src/allocator/src" -I"$src/fuzz" \
    "$src/fuzz/fuzz_$t.cpp" "$src/fuzz/harness.cpp" "$build/allocator/libkmm.a" \
    $LIB_FUZZING_ENGINE -lpthread -o "$OUT/fuzz_$t"
  seeds=$WORK/seeds/$t
  rm -rf "$seeds"
  mkdir -p "$seeds"
  for f in "$src/corpus/$t"/*.kmm "$src/corpus/regressions/$t"/*.kmm; do
    [ -f "$f" ] || continue
    n=$(basename "$(dirname "$f")")-$(basename "$f" .kmm)
    "$build/tools/kmm" encode -o "$seeds/$n.bin" "$f"
  done
  for f in "$src/corpus/$t"/*.bin; do
    [ -f "$f" ] && cp "$f" "$seeds/"
  done
  rm -f "$OUT/fuzz_${t}_seed_corpus.zip"
  (cd "$seeds" && zip -q -j "$OUT/fuzz_${t}_seed_corpus.zip" ./*)
  cp "$src/fuzz/$t.dict" "$OUT/fuzz_$t.dict"
  sed "s/^dict = .*/dict = fuzz_$t.dict/" "$src/fuzz/$t.options" > "$OUT/fuzz_$t.options"
done
