#!/usr/bin/env bash
# The README's main-job command: install what is missing, build, and run the quick-start job.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
BUILD_DIR=${MOPO_BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j2 --target mopo_info
"$BUILD_DIR/examples/mopo_info"
