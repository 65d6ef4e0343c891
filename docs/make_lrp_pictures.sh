#!/usr/bin/env bash
# Regenerates the LRP pictures of docs/lrp.md (docs/images/lrp_*.png) with the tool itself, and
# prints each run's conservation ratio (the numbers quoted in docs/lrp.md). Needs a build
# (cmake --build build --target deepinside) and ../shared (SqueezeNet v1.1 and the photos).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=./build/deepinside
out=docs/images
shared=${DEEPINSIDE_SHARED:-../shared}
model=$shared/models/squeezenet1.1/squeezenet1.1.onnx
if [ ! -f "$model" ]; then
  echo "skipped: $model is absent (../shared holds the real models and photos)" >&2
  exit 0
fi
for image in eagle cat dog; do
  in=$shared/images/$image.jpg
  # epsilon as a stabiliser (the default, 0.01: close to gradient x input), epsilon large enough to
  # absorb the weak and contradictory contributions, z+ everywhere, z^B on conv1 with z+ above.
  $bin lrp --model "$model" --image "$in" --rule epsilon --out $out/lrp_${image}_epsilon.png
  $bin lrp --model "$model" --image "$in" --rule epsilon --epsilon 100 --out $out/lrp_${image}_epsilon100.png \
    --overlay $out/lrp_${image}_epsilon100_overlay.png
  $bin lrp --model "$model" --image "$in" --rule zplus --out $out/lrp_${image}_zplus.png
  $bin lrp --model "$model" --image "$in" --rule zplus --zb --out $out/lrp_${image}_zb.png
done
# The conservation table of docs/lrp.md: epsilon from 0 (LRP-0) up, on eagle.jpg.
for eps in 0 0.01 1 10 100; do
  $bin lrp --model "$model" --image $shared/images/eagle.jpg --rule epsilon --epsilon $eps \
    --out /tmp/deepinside_lrp_unused.png | grep -E "relevance:"
done
rm -f /tmp/deepinside_lrp_unused.png
