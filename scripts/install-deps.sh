#!/usr/bin/env bash
# Installs what mopo needs from Debian bookworm packages, only what is missing, and pins the
# BLAS/LAPACK alternatives to OpenBLAS (OpenMP build). Idempotent; takes well under a second when
# everything is present. Uses sudo only when not root.
#
# Why OpenBLAS is pinned: libtorch-dev pulls in Debian's reference BLAS, on which LibTorch runs
# 15-30x slower. The OpenMP build follows at::set_num_threads (the pthread build ignores it and
# oversubscribes the cores).
#
# --slurm (or MOPO_WITH_SLURM=1) also installs Slurm (slurmctld, slurmd, the client commands) and MUNGE,
# without recommends, for `scripts/sweep slurm` and the ctest `sweep.slurm`. That test does not use the
# packages' system services or /etc/slurm: it runs its own munged, slurmctld and slurmd with a generated
# config in a temporary directory (docs/sweeps.md).
#
# --fuzz (or MOPO_WITH_FUZZ=1) also installs clang-14 and libclang-rt-14-dev (libFuzzer and clang's
# sanitizer runtimes) for the opt-in fuzz targets, -DMOPO_BUILD_FUZZERS=ON (docs/reliability.md#fuzzing).
set -euo pipefail

WITH_SLURM=${MOPO_WITH_SLURM:-0}
WITH_FUZZ=${MOPO_WITH_FUZZ:-0}
for arg in "$@"; do
  case "$arg" in
    --slurm) WITH_SLURM=1 ;;
    --fuzz) WITH_FUZZ=1 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-deps: unknown option '$arg' (known: --slurm, --fuzz)" >&2; exit 2 ;;
  esac
done

PACKAGES=(
  cmake g++ make git pkg-config ccache clang-format
  libeigen3-dev libtorch-dev
  libmujoco-dev libqhull-dev libgl-dev   # mujoco's CMake config fails without qhull and GL
  catch2 nlohmann-json3-dev libhdf5-dev zlib1g-dev libcli11-dev libbenchmark-dev
  libopenblas0-openmp
  python3 python3-h5py python3-matplotlib
)
SLURM_PACKAGES=(slurm-wlm munge)   # slurm-wlm = slurmctld + slurmd + slurm-client
FUZZ_PACKAGES=(clang-14 libclang-rt-14-dev)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-deps: not root and no sudo; cannot install packages" >&2; exit 1
  fi
fi

missing_of() {  # the packages among "$@" that are not installed
  local p status
  for p in "$@"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = "installed" ] || echo "$p"
  done
}
mapfile -t missing < <(missing_of "${PACKAGES[@]}")
if [ "$WITH_FUZZ" = 1 ]; then mapfile -t -O "${#missing[@]}" missing < <(missing_of "${FUZZ_PACKAGES[@]}"); fi
slurm_missing=()
if [ "$WITH_SLURM" = 1 ]; then mapfile -t slurm_missing < <(missing_of "${SLURM_PACKAGES[@]}"); fi

if [ ${#missing[@]} -gt 0 ] || [ ${#slurm_missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    $SUDO apt-get install -y -qq "${missing[@]}"
  fi
  if [ ${#slurm_missing[@]} -gt 0 ]; then
    # Without recommends: those are ~25 optional plugin packages (influxdb, ipmi, rrd, ...) not used here.
    echo "install-deps: installing ${slurm_missing[*]}"
    $SUDO apt-get install -y -qq --no-install-recommends "${slurm_missing[@]}"
  fi
fi

arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
for lib in libblas.so.3 liblapack.so.3; do
  want="/usr/lib/${arch}/openblas-openmp/${lib}"
  name="${lib}-${arch}"
  if [ ! -e "$want" ]; then
    echo "install-deps: $want is missing although libopenblas0-openmp is installed" >&2; exit 1
  fi
  current=$(update-alternatives --query "$name" 2>/dev/null | awk '/^Value:/{print $2}')
  if [ "$current" != "$want" ]; then
    echo "install-deps: pinning $name to $want (was ${current:-unset})"
    $SUDO update-alternatives --set "$name" "$want" >/dev/null
  fi
done
also=""
if [ "$WITH_SLURM" = 1 ]; then also=", Slurm and MUNGE too"; fi
if [ "$WITH_FUZZ" = 1 ]; then also="${also}, clang-14 + libFuzzer too"; fi
echo "install-deps: all dependencies present${also}; BLAS/LAPACK -> OpenBLAS (openmp)"
