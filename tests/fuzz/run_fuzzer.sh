#!/usr/bin/env bash
# One libFuzzer run of one target on one core (docs/reliability.md#fuzzing):
#   tests/fuzz/run_fuzzer.sh <target> [runs=1000000] [max_seconds=0 (no limit)] [extra libFuzzer flags...]
#   MOPO_FUZZ_LEAKS=0 tests/fuzz/run_fuzzer.sh <target> -1 <seconds> -fork=1 ...   (fast campaign), then
#   tests/fuzz/run_fuzzer.sh <target> 0                                             (its leak pass)
# Reads the committed seeds tests/fuzz/corpus/<target>/ (never written), grows a working corpus and writes
# crashing inputs to $MOPO_FUZZ_WORK/<target>/ (default /tmp/mopo-fuzz). The binary comes from
# $MOPO_FUZZ_BUILD (default build-fuzz, configured with -DMOPO_BUILD_FUZZERS=ON and clang).
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${1:?usage: tests/fuzz/run_fuzzer.sh <target> [runs] [max_seconds] [flags...]}
runs=${2:-1000000}
seconds=${3:-0}
shift $(( $# < 3 ? $# : 3 ))
bin=${MOPO_FUZZ_BUILD:-build-fuzz}/tests/fuzz/mopo_fuzz_${target}
work=${MOPO_FUZZ_WORK:-/tmp/mopo-fuzz}/${target}
mkdir -p "$work/corpus"
# One thread (LibTorch's and OpenMP's): the fuzzer is one process on one core.
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
# allocator_may_return_null: HDF5 checks malloc and fails cleanly when a damaged size asks for terabytes,
# as it does outside ASan (which would otherwise abort on any allocation above 1 TiB).
# fast_unwind_on_malloc=0: LibTorch and HDF5 have no frame pointers, so the fast unwinder stops at their
# first frame and lsan.supp's function names would never match.
# MOPO_FUZZ_LEAKS=0: no leak checks, fast unwinding (a campaign of the HDF5 and LibTorch targets, 5-17x more
# executions per second); check its corpus for leaks afterwards with runs=0 (the leak pass): libFuzzer then
# runs every corpus input once with the per-input leak check of the default options, and stops.
if [ "${MOPO_FUZZ_LEAKS:-1}" = 0 ]; then
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}
else
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1:fast_unwind_on_malloc=0}
fi
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/fuzz/lsan.supp:print_suppressions=0}
exec "$bin" -workers=1 -runs="$runs" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2560 \
  -print_final_stats=1 -artifact_prefix="$work/" "$@" "$work/corpus" "tests/fuzz/corpus/${target}"
