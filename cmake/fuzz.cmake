# How a fuzz executable is linked for each KMM_FUZZ_ENGINE (set by the presets: none everywhere,
# libfuzzer in `fuzz`, afl in `afl`). One fuzz source serves all three:
#
#   add_executable(fuzz_buddy fuzz_buddy.cpp)       # defines LLVMFuzzerTestOneInput
#   kmm_link_fuzz_engine(fuzz_buddy REPLAY_MAIN replay_main.cpp)
#
# - none:      the plain replay driver (REPLAY_MAIN, a main() that feeds files to the target).
# - libfuzzer: -fsanitize=fuzzer on this executable only; everything else in the `fuzz` preset is
#              compiled with -fsanitize=fuzzer-no-link (linking -fsanitize=fuzzer into a test
#              binary would pull in libFuzzer's main()).
# - afl:       afl-clang-fast++ -fsanitize=fuzzer links AFL++'s libAFLDriver (persistent mode,
#              shared-memory test cases), which also replays files given on the command line.
function(kmm_link_fuzz_engine target)
  cmake_parse_arguments(ARG "" "REPLAY_MAIN" "" ${ARGN})
  if(KMM_FUZZ_ENGINE STREQUAL "libfuzzer" OR KMM_FUZZ_ENGINE STREQUAL "afl")
    target_link_options(${target} PRIVATE -fsanitize=fuzzer)
  elseif(KMM_FUZZ_ENGINE STREQUAL "none")
    if(ARG_REPLAY_MAIN)
      target_sources(${target} PRIVATE ${ARG_REPLAY_MAIN})
    endif()
  else()
    message(FATAL_ERROR "KMM_FUZZ_ENGINE must be none, libfuzzer or afl (is '${KMM_FUZZ_ENGINE}')")
  endif()
endfunction()
