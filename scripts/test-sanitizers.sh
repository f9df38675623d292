#!/usr/bin/env bash
# The unit, MuJoCo, data and integration tests once more under AddressSanitizer + UndefinedBehaviorSanitizer
# (-DMOPO_SANITIZE=ON, in build-asan/). CI runs it after the README's test command (.ci/run). Header checks,
# consumer projects, example programs (and the sweep tests that need them) and slow tests are left to the
# plain build. Any ASan report (leaks included) or UBSan report fails the test that printed it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
BUILD_DIR=${MOPO_ASAN_BUILD_DIR:-build-asan}
# ccache: hash paths relative to the checkout, so another clone of the same code reuses the cache.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DMOPO_SANITIZE=ON -DMOPO_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$BUILD_DIR" -j2
# fast_unwind_on_malloc=0: full stacks through LibTorch and HDF5 (no frame pointers there), so the two
# suppressions of third-party leaks on error paths (tests/fuzz/lsan.supp, justified there) can match; the
# fuzz regression inputs in unit.core reach exactly those paths.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:fast_unwind_on_malloc=0}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/tests/fuzz/lsan.supp:print_suppressions=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
ctest --test-dir "$BUILD_DIR" -j2 --output-on-failure -L "unit|mujoco|data|integration" -LE "slow|headers" "$@"
