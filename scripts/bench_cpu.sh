#!/bin/bash
# The CPU benchmark of docs/benchmarks.md: saliency time per image at batch 1 (with the per-layer
# breakdown), 16 and 64 for the four networks, ours and PyTorch's in the same invocation (one
# invocation per network and batch size), then the plot and the Markdown tables.
#   bash scripts/bench_cpu.sh                 # all of it (~15 minutes on a quiet 2-core machine)
#   bash scripts/bench_cpu.sh 1 16 64 plot    # or some of the steps; 'merge' turns rounds of
#                                             # step 1 kept in $OUT/b1_rounds/<round>/ into medians;
#                                             # 'fusion' times ours fused and --no-fusion, alternated
# Environment: BIN (default build/deepinside), OUT (default docs/bench), NETS (default the four),
# PRIORITY (a command prefix for each invocation, e.g. "chrt -f 10": see docs/benchmarks.md on
# measuring on a shared machine), PAUSE (seconds between invocations, default 0).
# Writes $OUT/cpu_b<batch>_<net>.{json,txt}, docs/images/bench_cpu.png and $OUT/cpu_tables.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/deepinside}
OUT=${OUT:-docs/bench}
NETS=${NETS:-"simonyan13 ../shared/models/squeezenet1.1/squeezenet1.1.onnx alexnet vgg16"}
PRIORITY=${PRIORITY:-}
PAUSE=${PAUSE:-0}
mkdir -p "$OUT"
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(1 16 64 plot)
for step in "${steps[@]}"; do
  case "$step" in
    1) args=(--batch 1 --repeat 7 --layers) ;;
    16) args=(--batch 16 --repeat 3) ;;
    64) args=(--batch 64 --repeat 2) ;;
    merge)  # batch-1 rounds in $OUT/b1_rounds/*/ (one bench_cpu.sh 1 each) -> medians
      files=()
      for net in $NETS; do files+=("$OUT"/b1_rounds/*/cpu_b1_"$(basename "$net" .onnx)".json); done
      /usr/bin/python3 tools/bench_rounds.py "${files[@]}" --out "$OUT"/cpu_b1_rounds_merged.json
      continue ;;
    fusion)  # ours only, batch 1: fused (default) and --no-fusion alternated, 3 pairs per network
      f="$OUT"/fusion_ab.txt
      echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git rev-parse --short HEAD), $(uptime)" > "$f"
      for net in $NETS; do
        rep=20; [ "$net" = vgg16 ] && rep=5
        for pair in 1 2 3; do
          for mode in fused unfused; do
            flag=(); [ $mode = unfused ] && flag=(--no-fusion)
            line=$($PRIORITY "$BIN" bench --net "$net" --batch 1 --no-peer --repeat $rep "${flag[@]}" 2>&1 |
                   grep -E "^  cpu  batch")
            echo "$(basename "$net" .onnx) pair $pair $mode: $(echo "$line" | awk '{print $4, $6}') ms/image," \
                 "$(echo "$line" | grep -o 'peak RSS [0-9.]* MB')" >> "$f"
          done
        done
      done
      echo "# done $(date -u '+%H:%M:%S UTC'), $(uptime)" >> "$f"
      continue ;;
    plot)  # batch 1 from the merged rounds where present, else the single run; nets in NETS order
      files=()
      for b in 1 16 64; do
        if [ "$b" = 1 ] && [ -f "$OUT"/cpu_b1_rounds_merged.json ]; then files+=("$OUT"/cpu_b1_rounds_merged.json); continue; fi
        for net in $NETS; do
          f="$OUT/cpu_b${b}_$(basename "$net" .onnx).json"
          [ -f "$f" ] && files+=("$f")
        done
      done
      /usr/bin/python3 tools/plot_bench.py "${files[@]}" --out docs/images/bench_cpu.png --table > "$OUT"/cpu_tables.md
      continue ;;
    *) echo "bench_cpu.sh: unknown step '$step' (1, 16, 64, merge, fusion, plot)" >&2; exit 1 ;;
  esac
  for net in $NETS; do
    name=$(basename "$net" .onnx)
    { echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git rev-parse --short HEAD), priority '${PRIORITY}', uptime: $(uptime)"
      $PRIORITY "$BIN" bench --net "$net" "${args[@]}" --json "$OUT/cpu_b${step}_${name}.json"
      echo "# done $(date -u '+%H:%M:%S UTC'), uptime: $(uptime)"; } > "$OUT/cpu_b${step}_${name}.txt" 2>&1
    sleep "$PAUSE"
  done
done
