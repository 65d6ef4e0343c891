#!/usr/bin/env bash
# Regenerates the class model, activation maximisation, feature inversion and Deep Dream pictures
# of docs/class-models.md and docs/inversion-dream.md (docs/images/classmodel_*, neuron_*,
# invert_*, dream_*) with the tool itself. Run after building (scripts/setup.sh). The Fashion-MNIST
# pictures take seconds; the SqueezeNet ones need ../shared and take a few minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
# Passive OpenMP waiting: on a shared machine libgomp's spinning makes every pass many times slower.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
bin=./build/deepinside
out=docs/images
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The project's Fashion-MNIST classifier: the ten class models at the paper's settings, then with
# jitter and blur (28x28 pictures, enlarged in the grid).
fashion=weights/fashion_mnist/fashion_cnn.onnx
$bin class-model --model $fashion --class 0,1,2,3,4,5,6,7,8,9 --columns 5 --quiet --out $tmp/fashion
cp $tmp/fashion/grid.png $out/classmodel_fashion_paper.png
$bin class-model --model $fashion --class 0,1,2,3,4,5,6,7,8,9 --columns 5 --quiet --jitter 2 \
  --blur-every 4 --blur-sigma 0.5 --out $tmp/fashion_reg
cp $tmp/fashion_reg/grid.png $out/classmodel_fashion_regularised.png
$bin neuron --model $fashion --layer /net/Relu_1 --channel 0,1,2,3,4,5,6,7 --columns 8 --quiet --out $tmp/fneuron
cp $tmp/fneuron/grid.png $out/neuron_fashion_conv2.png
$bin invert --model $fashion --image weights/fashion_mnist/samples/test0000_ankle_boot.png \
  --layer /net/Relu,/net/Relu_1,/net/Relu_2,/net/fc2/Gemm --quiet --out $tmp/finvert
cp $tmp/finvert/grid.png $out/invert_fashion_ankle_boot.png

shared=../shared
if [ ! -d "$shared/models/squeezenet1.1" ]; then
  echo "../shared is absent: SqueezeNet pictures skipped"
  exit 0
fi
sq=$shared/models/squeezenet1.1/squeezenet1.1.onnx
classes=9,130,340,948   # ostrich, flamingo, zebra, Granny Smith
grid="--columns 4 --grid-tile 140"   # keeps each PNG under 200 KB
# The paper's settings (the defaults): plain gradient ascent on S_c from the zero image.
$bin class-model --model $sq --class $classes $grid --quiet --out $tmp/paper
cp $tmp/paper/grid.png $out/classmodel_squeezenet_paper.png
# The same classes with the regularisers: jitter, blur, pixel-norm clipping and three octaves.
$bin class-model --model $sq --class $classes $grid --quiet --steps 100 --lr 1000 \
  --jitter 8 --blur-every 4 --blur-sigma 0.5 --clip-norm 10 --octaves 3 --octave-scale 1.4 --out $tmp/reg
cp $tmp/reg/grid.png $out/classmodel_squeezenet_regularised.png
# The paper's remark: optimising the (log-)probability instead of the score.
for objective in logprob prob; do
  $bin class-model --model $sq --class $classes $grid --quiet --objective $objective \
    --out $tmp/$objective
  cp $tmp/$objective/grid.png $out/classmodel_squeezenet_$objective.png
done
# Activation maximisation: channels of a middle fire module, with the regularisers.
$bin neuron --model $sq --layer /fires.3/Concat --channel 3,40,100,200 --columns 4 --grid-tile 120 \
  --quiet --jitter 8 --blur-every 4 --blur-sigma 0.5 --octaves 2 --steps 100 --out $tmp/neuron
cp $tmp/neuron/grid.png $out/neuron_squeezenet_fire3.png
# Feature inversion of eagle.jpg from four depths.
$bin invert --model $sq --image $shared/images/eagle.jpg --grid-tile 110 --quiet \
  --layer /Relu,/fires.1/Concat,/fires.3/Concat,/fires.7/Concat --out $tmp/invert
cp $tmp/invert/grid.png $out/invert_squeezenet_eagle.png
# Deep Dream on two photos, at a low and at a middle layer.
$bin dream --model $sq --image $shared/images/eagle.jpg --layer /fires.1/Concat --max-side 280 --quiet --out $tmp/d1
cp $tmp/d1/eagle_dream.png $out/dream_squeezenet_eagle_fire1.png
$bin dream --model $sq --image $shared/images/cat.jpg --layer /fires.4/Concat --max-side 280 --quiet --out $tmp/d2
cp $tmp/d2/cat_dream.png $out/dream_squeezenet_cat_fire4.png
ls -l $out/classmodel_* $out/neuron_* $out/invert_* $out/dream_*
