#!/usr/bin/env bash
# Installs what mopo needs from Debian bookworm packages, only what is missing, and pins the
# BLAS/LAPACK alternatives to OpenBLAS (OpenMP build). Idempotent; takes well under a second when
# everything is present. Uses sudo only when not root.
#
# Why OpenBLAS is pinned: libtorch-dev pulls in Debian's reference BLAS, on which LibTorch runs
# 15-30x slower. The OpenMP build follows at::set_num_threads (the pthread build ignores it and
# oversubscribes the cores).
set -euo pipefail

PACKAGES=(
  cmake g++ make git pkg-config ccache clang-format
  libeigen3-dev libtorch-dev
  libmujoco-dev libqhull-dev libgl-dev   # mujoco's CMake config fails without qhull and GL
  catch2 nlohmann-json3-dev libhdf5-dev libcli11-dev libbenchmark-dev
  libopenblas0-openmp
  python3 python3-h5py python3-matplotlib
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-deps: not root and no sudo; cannot install packages" >&2; exit 1
  fi
fi

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${missing[@]}"
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
echo "install-deps: all dependencies present; BLAS/LAPACK -> OpenBLAS (openmp)"
