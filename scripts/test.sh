#!/usr/bin/env bash
# The whole test suite: set up (idempotent), build, run every Catch2/CTest test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cd build
# Tests run two at a time on a 2-core machine; OpenMP threads that spin while waiting would steal
# the other test's core, so they sleep instead (a benchmark run may choose otherwise).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
ctest --output-on-failure -j"$(nproc 2>/dev/null || echo 2)" "$@"
