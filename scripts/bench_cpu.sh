#!/bin/bash
# The CPU benchmark of docs/benchmarks.md: saliency time per image at batch 1 (with the per-layer
# breakdown), 16 and 64 for the four networks, ours and PyTorch's in the same invocation, then the
# plot and the Markdown tables. Run on a quiet machine (the load average is recorded per network).
#   bash scripts/bench_cpu.sh            # all of it (~15 minutes on the 2-core machine)
#   bash scripts/bench_cpu.sh 1 16 64 plot   # or some of the steps
# Writes docs/bench/cpu_b{1,16,64}.{json,txt} and docs/images/bench_cpu.png (OUT= and BIN= override).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/deepinside}
OUT=${OUT:-docs/bench}
SQUEEZENET=${SQUEEZENET:-../shared/models/squeezenet1.1/squeezenet1.1.onnx}
NETS=(--net simonyan13 --net "$SQUEEZENET" --net alexnet --net vgg16)
mkdir -p "$OUT"
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(1 16 64 plot)
for step in "${steps[@]}"; do
  case "$step" in
    1) args=(--batch 1 --repeat 7 --layers) ;;
    16) args=(--batch 16 --repeat 3) ;;
    64) args=(--batch 64 --repeat 2) ;;
    plot)
      /usr/bin/python3 tools/plot_bench.py "$OUT"/cpu_b1.json "$OUT"/cpu_b16.json "$OUT"/cpu_b64.json \
        --out docs/images/bench_cpu.png --table > "$OUT"/cpu_tables.md
      continue ;;
    *) echo "bench_cpu.sh: unknown step '$step' (1, 16, 64, plot)" >&2; exit 1 ;;
  esac
  { echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git rev-parse --short HEAD), uptime: $(uptime)"
    "$BIN" bench "${NETS[@]}" "${args[@]}" --json "$OUT/cpu_b$step.json"
    echo "# done $(date -u '+%H:%M:%S UTC'), uptime: $(uptime)"; } > "$OUT/cpu_b$step.txt" 2>&1
done
