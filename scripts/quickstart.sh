#!/usr/bin/env bash
# The README's main-job command: the quick-start MOPO run on a fresh machine.
#   1. installs what is missing and builds the two programs it needs;
#   2. collects the HalfCheetah datasets (D4RL recipe, 50 000 transitions each, real MuJoCo physics) with
#      the committed behaviour policies in data/zoo/policies/halfcheetah; the run uses the "random" one
#      (uniform random actions, behaviour score ≈ 0: the paper's halfcheetah-random setting, where the
#      data's action diversity lets a small model learn the dynamics; docs/results.md#the-quick-start);
#   3. trains the 7-member dynamics ensemble (30 epochs, every epoch in model_metrics.csv) and runs MOPO
#      (MaxStd penalty, λ = 0.5, h = 5; configs/quickstart-halfcheetah.json) for 40 short epochs;
#   4. prints a summary (dataset, model, final / best / last-5 score, whether it beat the data) and
#      writes the learning curve with the data's score as a line to runs/quickstart/learning_curve.png.
# About 10-12 minutes on 2 idle cores once the packages are installed (docs/results.md).
# Environment: MOPO_QUICKSTART_SEED (default 0) seeds everything (the run goes to
# runs/quickstart/seed-<k>, the curve to learning_curve.png for seed 0, learning_curve_seed<k>.png else);
# MOPO_QUICKSTART_EPOCHS overrides the number of epochs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
BUILD_DIR=${MOPO_BUILD_DIR:-build}
SEED=${MOPO_QUICKSTART_SEED:-0}
if ! [[ $SEED =~ ^[0-9]+$ ]]; then
  echo "quickstart: MOPO_QUICKSTART_SEED must be a non-negative integer, got '$SEED'" >&2
  exit 2
fi
# ccache: hash paths relative to the checkout, so another clone of the same code reuses the cache.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
OUT=runs/quickstart
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j2 --target quickstart_programs

POLICIES=data/zoo/policies/halfcheetah
DATA="$OUT/data/halfcheetah-random.hdf5"
if [ ! -f "$DATA" ]; then
  echo "== collecting the HalfCheetah datasets with the committed behaviour policies ($POLICIES)"
  "$BUILD_DIR/examples/make_datasets" --task halfcheetah --size 50000 --seed 0 \
    --medium-policy "$POLICIES/policy_50000.pt" --expert-policy "$POLICIES/policy_150000.pt" --out "$OUT/data"
fi

RUN="$OUT/seed-$SEED"
echo "== MOPO on $DATA (seed $SEED)"
EPOCH_ARGS=()
if [ -n "${MOPO_QUICKSTART_EPOCHS:-}" ]; then EPOCH_ARGS=(--epochs "$MOPO_QUICKSTART_EPOCHS"); fi
rm -rf "$RUN"
"$BUILD_DIR/examples/train_mopo" --task halfcheetah --dataset "$DATA" \
  --config configs/quickstart-halfcheetah.json --penalty max_std --seed "$SEED" --out "$RUN" "${EPOCH_ARGS[@]}"

PNG="$OUT/learning_curve.png"
if [ "$SEED" != 0 ]; then PNG="$OUT/learning_curve_seed$SEED.png"; fi
/usr/bin/python3 scripts/plot_curves.py --out "$PNG" \
  --title "MOPO quick start: halfcheetah-random (50k), seed $SEED" "MOPO (MaxStd, λ=0.5)=$RUN/metrics.csv" \
  --baseline "data=$RUN/dataset.csv" --panel rollout/penalty --panel rollout/raw_reward
echo "== done: metrics in $RUN/metrics.csv, model epochs in $RUN/model_metrics.csv, summary in $RUN/summary.json, curve in $PNG"
