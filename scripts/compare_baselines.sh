#!/usr/bin/env bash
# MOPO beside its baselines on one dataset (the docs/results.md evidence run):
#   scripts/compare_baselines.sh <task> <dataset.hdf5> <config.json> <out dir> <epochs> [seed] [algos...]
# e.g.
#   scripts/compare_baselines.sh halfcheetah /work/zoo/halfcheetah-mixed.hdf5 configs/halfcheetah-mixed.json \
#       runs/hc-mixed 60 0 mopo mbpo offline-sac bc
# MOPO trains the dynamics ensemble once and saves it (<out>/mopo-s<seed>/model.pt); MBPO, listed after it,
# reuses that model, so the two differ only in the penalty (use a fresh <out> for another dataset or config). Runs one after another (each uses the cores as train_mopo does),
# then plots every run's evaluation curve into <out>/curves.png. Needs build/examples/train_mopo.
# MOPO_TRAIN_ARGS adds flags to every run, e.g. MOPO_TRAIN_ARGS="--set rollout_threads=1" when other jobs
# share the cores.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 5 ]; then
  sed -n 2,11p "$0" >&2
  exit 2
fi
task=$1 data=$2 config=$3 out=$4 epochs=$5 seed=${6:-0}
if ! [[ $seed =~ ^[0-9]+$ ]]; then
  echo "compare_baselines: the 6th argument is the seed (a number), got '$seed'" >&2
  exit 2
fi
shift $(($# < 6 ? $# : 6))
algos=("$@")
[ ${#algos[@]} -gt 0 ] || algos=(mopo mbpo offline-sac bc)
BIN=${MOPO_BUILD_DIR:-build}/examples/train_mopo
mkdir -p "$out"
curves=()
for algo in "${algos[@]}"; do
  run="$out/$algo-s$seed"
  args=(--task "$task" --dataset "$data" --config "$config" --algo "$algo" --seed "$seed" --epochs "$epochs"
        --out "$run")
  # shellcheck disable=SC2206
  args+=(${MOPO_TRAIN_ARGS:-})
  if [ "$algo" = mbpo ] && [ -f "$out/mopo-s$seed/model.pt" ]; then args+=(--model "$out/mopo-s$seed/model.pt"); fi
  echo "== $algo: $BIN ${args[*]}"
  start=$SECONDS
  "$BIN" "${args[@]}" 2>&1 | tee "$run.log"
  echo "== $algo: $((SECONDS - start)) s wall" | tee -a "$run.log"
  curves+=("$algo=$run/metrics.csv")
done
/usr/bin/python3 scripts/plot_curves.py --out "$out/curves.png" --title "$task: $(basename "$data" .hdf5), seed $seed" \
  "${curves[@]}" --baseline "data=$out/${algos[0]}-s$seed/dataset.csv"
echo "== curves in $out/curves.png"
