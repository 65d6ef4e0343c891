#!/usr/bin/env bash
# Installs every Debian package deepinside needs (idempotent, non-interactive) and builds it in build/.
# Usage: bash scripts/setup.sh            (as root, or with sudo available)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config git
  libeigen3-dev libstb-dev catch2 libcli11-dev nlohmann-json3-dev
  libonnx-dev libprotobuf-dev protobuf-compiler
  libmaxflow-dev libboost-context-dev
  libonnx-testdata dataset-fashion-mnist
  python3 python3-numpy python3-onnx python3-torch python3-pil
  libopenblas0-openmp  # the BLAS that PyTorch, the benchmark's peer, is fastest with here
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > build.log 2>&1 || { cat build.log; exit 1; }
cmake --build build -j"$jobs" >> build.log 2>&1 || { tail -n 60 build.log; echo "setup: build failed (full log: build.log)"; exit 1; }
echo "setup: built build/deepinside"
