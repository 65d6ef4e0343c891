#!/usr/bin/env bash
# The whole test suite: set up (idempotent), build, run every Catch2/CTest test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cd build
ctest --output-on-failure -j"$(nproc 2>/dev/null || echo 2)" "$@"
