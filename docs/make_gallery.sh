#!/usr/bin/env bash
# Regenerates the pictures of docs/methods.md, docs/reconstructions.md and docs/sanity.md
# (docs/images/methods_*, cam_*, reconstruct_*, sanity_*) with the tool itself, from SqueezeNet v1.1
# and the photos in ../shared, and prints the numbers those pages quote. Run after scripts/setup.sh
# (it needs build/deepinside); about 5 minutes on two cores.
#
# The tool writes full-colour PNGs; for the docs they are re-encoded here with a 256-colour palette
# (python3-pil), which keeps each under 200 KB. Without PIL they are left as the tool wrote them.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=./build/deepinside
out=docs/images
shared=../shared
model=$shared/models/squeezenet1.1/squeezenet1.1.onnx
if [ ! -f "$model" ]; then
  echo "make_gallery.sh: $model is absent (../shared holds the real model and photos); nothing to do" >&2
  exit 1
fi
# Passive OpenMP waiting: many small batched passes stall on spinning threads when the cores are shared.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
images="eagle cat dog fish-bike"

echo "== saliency methods (docs/methods.md)"
for image in $images; do
  photo=$shared/images/$image.jpg
  for method in gradient tencrop smoothgrad gradxinput ig; do
    map=$tmp/${image}_${method}.png
    [ "$image" = eagle ] && map=$out/methods_eagle_${method}_map.png
    $bin saliency --model "$model" --image "$photo" --method $method --out "$map" \
      --overlay "$out/methods_${image}_${method}.png"
  done
done

echo "== class activation maps (docs/methods.md)"
for image in $images; do
  for method in cam gradcam guided-gradcam; do
    $bin cam --model "$model" --image "$shared/images/$image.jpg" --method $method \
      --out "$tmp/${image}_${method}.png" --overlay "$out/cam_${image}_${method}.png"
  done
done
# Class discrimination: Grad-CAM on the last fire module for two classes of one photo.
for spec in "fish-bike 0 tench" "fish-bike 671 mountain_bike" "dog 537 dogsled" "dog 250 husky"; do
  set -- $spec
  $bin cam --model "$model" --image "$shared/images/$1.jpg" --method gradcam --layer /fires.7/Concat --class $2 \
    --out "$tmp/$1_$3.png" --overlay "$out/cam_$1_fire7_$3.png"
done

echo "== reconstructions (docs/reconstructions.md)"
$bin reconstruct --model "$model" --image $shared/images/eagle.jpg --layer /fires.1/Concat --top-k 4 --crop --upscale 4 \
  --out $out/reconstruct_eagle_fire1.png
$bin reconstruct --model "$model" --image $shared/images/eagle.jpg --layer /fires.3/Concat --top-k 4 --crop --upscale 2 \
  --out $out/reconstruct_eagle_fire3.png
$bin reconstruct --model "$model" --image $shared/images/eagle.jpg --layer /fires.7/Concat --top-k 2 \
  --out $out/reconstruct_eagle_fire7.png
$bin reconstruct --model "$model" --image $shared/images/eagle.jpg --layer /Relu_1 --channel 21 \
  --out $out/reconstruct_eagle_kite.png

echo "== sanity check (docs/sanity.md)"
$bin sanity --model "$model" --image $shared/images/eagle.jpg \
  --methods gradient,guided,smoothgrad,gradxinput,ig,gradcam,guided-gradcam --cell 64 --out $out/sanity_eagle.png
for seed in 1 2; do
  $bin sanity --model "$model" --image $shared/images/eagle.jpg --depth 8 --seed $seed \
    --methods gradient,smoothgrad,gradcam,guided
done
$bin sanity --model "$model" --image $shared/images/eagle.jpg --depth 8 --layer /fires.7/Concat \
  --methods gradcam,guided-gradcam

if /usr/bin/python3 -c "import PIL" 2>/dev/null; then
  /usr/bin/python3 - "$out" <<'EOF'
import glob, os, sys
from PIL import Image
for prefix in ("methods_", "cam_", "reconstruct_", "sanity_"):
    for path in sorted(glob.glob(os.path.join(sys.argv[1], prefix + "*.png"))):
        Image.open(path).convert("RGB").quantize(256).save(path, optimize=True)
EOF
fi
du -ch $out/methods_*.png $out/cam_*.png $out/reconstruct_*.png $out/sanity_*.png | tail -1
