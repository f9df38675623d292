#!/usr/bin/env bash
# The README's main-job command: the quick-start MOPO run on a fresh machine.
#   1. installs what is missing and builds the two programs it needs;
#   2. collects a small HalfCheetah "medium" dataset (D4RL recipe, 50 000 transitions) with the
#      committed behaviour policies in data/zoo/policies/halfcheetah (medium: SAC at 50k steps,
#      return 2 260; expert: 150k steps, 6 645; real MuJoCo physics);
#   3. trains the 7-member dynamics ensemble and runs MOPO (configs/quickstart-halfcheetah.json)
#      for a few minutes, printing progress;
#   4. prints the policy's D4RL-normalised score next to the dataset's behaviour score and writes
#      the learning curve to runs/quickstart/learning_curve.png.
# Environment: MOPO_QUICKSTART_EPOCHS overrides the number of epochs (default from the config).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
BUILD_DIR=${MOPO_BUILD_DIR:-build}
# ccache: hash paths relative to the checkout, so another clone of the same code reuses the cache.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
OUT=runs/quickstart
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j2 --target make_datasets train_mopo

POLICIES=data/zoo/policies/halfcheetah
DATA="$OUT/data/halfcheetah-medium.hdf5"
if [ ! -f "$DATA" ]; then
  echo "== collecting the HalfCheetah dataset with the committed behaviour policies ($POLICIES)"
  "$BUILD_DIR/examples/make_datasets" --task halfcheetah --size 50000 --seed 0 \
    --medium-policy "$POLICIES/policy_50000.pt" --expert-policy "$POLICIES/policy_150000.pt" --out "$OUT/data"
fi

echo "== MOPO on $DATA"
EPOCH_ARGS=()
if [ -n "${MOPO_QUICKSTART_EPOCHS:-}" ]; then EPOCH_ARGS=(--epochs "$MOPO_QUICKSTART_EPOCHS"); fi
rm -rf "$OUT/mopo"
"$BUILD_DIR/examples/train_mopo" --task halfcheetah --dataset "$DATA" \
  --config configs/quickstart-halfcheetah.json --penalty max_std --seed 0 --out "$OUT/mopo" "${EPOCH_ARGS[@]}"

/usr/bin/python3 scripts/plot_curves.py --out "$OUT/learning_curve.png" \
  --title "MOPO quick start: halfcheetah-medium (50k), seed 0" "MOPO=$OUT/mopo/metrics.csv"
echo "== done: metrics in $OUT/mopo/metrics.csv, curve in $OUT/learning_curve.png"
