#!/usr/bin/env bash
# The README's test command: install what is missing, configure, build, run the whole test suite
# except tests tagged [slow]. Extra arguments go to ctest (e.g. -R unit, -L slow to run slow tests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
BUILD_DIR=${MOPO_BUILD_DIR:-build}
# ccache: hash paths relative to the checkout, so another clone of the same code reuses the cache.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j2
if [ $# -eq 0 ]; then set -- -LE slow; fi
ctest --test-dir "$BUILD_DIR" -j2 --output-on-failure "$@"
