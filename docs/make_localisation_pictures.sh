#!/usr/bin/env bash
# Regenerates docs/localisation.md's numbers and pictures with the tool itself (run after scripts/setup.sh):
#   1. the 1,000-image benchmark (tools/make_fashion_scenes.py, split test, seed 0) evaluated and timed;
#   2. successes and failures of GraphCut on it: the scene with its ground-truth box, the class saliency
#      map, the GraphCut mask and the boxes `deepinside localize` draws;
#   3. SqueezeNet v1.1's top-5 boxes on the shared photos (needs ../shared).
# Writes docs/images/loc_*.png and prints the table (also saved to out/localisation/eval.txt and .json).
set -euo pipefail
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}  # the machine is shared: OpenMP threads sleep while they wait
cd "$(dirname "$0")/.."
bin=./build/deepinside
py=/usr/bin/python3
out=docs/images
work=out/localisation
model=weights/fashion_scenes/fashion_scenes_cnn.onnx
mkdir -p "$work" "$out"

# 1. The benchmark.
$py tools/make_fashion_scenes.py --out "$work/test1000" --count 1000 --split test --seed 0
/usr/bin/time -f "wall %e s, user %U s, system %S s" -o "$work/time.txt" \
  $bin eval-localization --model $model --data "$work/test1000" --per-image "$work/per_image.jsonl" | tee "$work/eval.txt"
cat "$work/time.txt"
$bin eval-localization --model $model --data "$work/test1000" --json > "$work/eval.json"
# GraphCut with the seed quantiles chosen on the validation split (docs/tune_localisation.py), for the
# table's last row; the defaults above stay the paper's.
$bin eval-localization --model $model --data "$work/test1000" --methods graphcut --fg-quantile 0.99 \
  --bg-quantile 0.3 | tee "$work/eval_tuned.txt"

# 2. Successes and failures: the first four scenes of each kind in file order. A success: top-1 class
# right and its GraphCut box at IoU >= 0.5; a failure: the true class in the top 5 but its GraphCut
# box below 0.5 (the classifier found the class, the localisation missed).
$py - "$work" <<'EOF'
import json, sys
work = sys.argv[1]
rows = [json.loads(line) for line in open(f"{work}/per_image.jsonl")]
good = [r for r in rows if r["top"][0] == r["class"] and r["iou"]["graphcut"] >= 0.5][:4]
bad = [r for r in rows if r["iou"]["graphcut"] is not None and r["iou"]["graphcut"] < 0.5][:4]
with open(f"{work}/examples.txt", "w") as f:
    for kind, rs in (("success", good), ("failure", bad)):
        for r in rs:
            f.write(f"{kind} {r['file']} {r['class']} {' '.join(map(str, r['box']))}\n")
EOF
i=0
while read -r kind file cls x0 y0 x1 y1; do
  stem=$(basename "$file" .png)
  $bin localize --model $model --image "$file" --class "$cls" --upscale 3 --out "$work/$stem.json" > /dev/null
  $bin saliency --model $model --image "$file" --class "$cls" --upscale 3 --out "$work/${stem}_saliency.png" \
    --overlay "$work/${stem}_saliency_overlay.png" > /dev/null
  $py - "$work" "$stem" "$file" "$x0" "$y0" "$x1" "$y1" "$out/loc_${kind}_${stem}.png" <<'EOF'
# One row: the scene with its ground-truth box (white), the saliency map, the GraphCut mask, and the
# tool's picture (mask tinted, predicted box red) with the ground truth added in white.
import sys
from PIL import Image, ImageDraw
work, stem, scene, x0, y0, x1, y1, dst = sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:8]), sys.argv[8]
s = 3
def with_truth(img):
    img = img.convert("RGB")
    ImageDraw.Draw(img).rectangle([x0 * s, y0 * s, x1 * s - 1, y1 * s - 1], outline=(255, 255, 255), width=2)
    return img
tiles = [with_truth(Image.open(scene).resize((96 * s, 96 * s), Image.NEAREST)),
         Image.open(f"{work}/{stem}_saliency.png").convert("RGB"),
         Image.open(f"{work}/{stem}_mask1.png").convert("RGB"),
         with_truth(Image.open(f"{work}/{stem}_boxes.png"))]
row = Image.new("RGB", (len(tiles) * 96 * s + (len(tiles) - 1) * 6, 96 * s), (255, 255, 255))
for k, t in enumerate(tiles):
    row.paste(t, (k * (96 * s + 6), 0))
row.save(dst)
EOF
  echo "$kind $stem: class $cls, ground truth [$x0, $y0, $x1, $y1)"
  i=$((i + 1))
done < "$work/examples.txt"

# 3. SqueezeNet on the shared photos: top-5 boxes (rank 1 red, 2 green, 3 blue, 4 yellow, 5 violet).
shared=../shared
if [ -d "$shared/models/squeezenet1.1" ]; then
  for image in cat dog eagle fish-bike; do
    $bin localize --model $shared/models/squeezenet1.1/squeezenet1.1.onnx --image $shared/images/$image.jpg \
      --upscale 2 --out "$work/squeezenet_$image.json" --overlay "$out/loc_squeezenet_${image}.png"
    cp "$work/squeezenet_${image}_mask1.png" "$out/loc_squeezenet_${image}_mask.png"
  done
fi
