#!/usr/bin/env bash
# The main job on what ships in the repository: the project's own Fashion-MNIST classifier
# (weights/fashion_mnist) explains its prediction for a test image with a saliency map.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p out
model=weights/fashion_mnist/fashion_cnn.onnx
image=$(ls weights/fashion_mnist/samples/*.png | head -n 1)
./build/deepinside predict --model "$model" "$image" --top 3
./build/deepinside saliency --model "$model" --image "$image" --upscale 8 \
  --out out/saliency.png --overlay out/saliency_overlay.png --raw out/saliency.npy
echo
echo "demo: saliency map of $image written to out/saliency.png (heat map),"
echo "      out/saliency_overlay.png (over the input) and out/saliency.npy (raw float32 map)"
