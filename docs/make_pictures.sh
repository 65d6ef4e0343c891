#!/usr/bin/env bash
# Regenerates the pictures in docs/images with the tool itself (run after scripts/setup.sh).
# The SqueezeNet pictures need ../shared (the real ImageNet model and photos).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=./build/deepinside
out=docs/images
fashion=weights/fashion_mnist
for sample in test0000_ankle_boot test0002_trouser test0008_sandal; do
  $bin saliency --model $fashion/fashion_cnn.onnx --image $fashion/samples/$sample.png --upscale 8 \
    --out $out/fashion_${sample}_saliency.png --overlay $out/fashion_${sample}_overlay.png
done
shared=../shared
if [ -d "$shared/models/squeezenet1.1" ]; then
  model=$shared/models/squeezenet1.1/squeezenet1.1.onnx
  for image in eagle cat dog; do
    $bin saliency --model $model --image $shared/images/$image.jpg \
      --out $out/squeezenet_${image}_saliency.png --overlay $out/squeezenet_${image}_overlay.png
  done
  for rule in deconvnet guided; do
    $bin saliency --model $model --image $shared/images/eagle.jpg --rule $rule \
      --out $out/squeezenet_eagle_${rule}.png --overlay /tmp/deepinside_unused_overlay.png
  done
fi
# The converted cuda-convnet CIFAR-10 net (docs/cuda-convnet.md, worked example).
cc=$shared/cuda-convnet/cifar10-18pct
if [ -d "$cc" ]; then
  mkdir -p out/cifar18
  /usr/bin/python3 tools/convert_cuda_convnet.py $cc/ConvNet__2014-03-02_11.28.44 \
    --meta $cc/cifar-10-py-colmajor/batches.meta -o out/cifar18/cifar18.onnx > /dev/null
  for image in cat10 dog10 truck10; do
    $bin saliency --model out/cifar18/cifar18.onnx --image $shared/images/$image.png --upscale 8 \
      --out $out/cifar10_${image}_saliency.png --overlay $out/cifar10_${image}_overlay.png 2>/dev/null
  done
fi
