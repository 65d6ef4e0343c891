#pragma once
// Feature inversion (Mahendran & Vedaldi 2015): an image whose activations at a layer match those of
// a given image, found by the gradient ascent of viz/optimize.h from noise, with its regularisers.
// docs/inversion-dream.md.
#include <functional>

#include "viz/optimize.h"

namespace deepinside::viz {

// Normalised steps (lr / mean|G|), TV and a small L2, clamped to showable pixels (docs say why).
AscentSettings invert_defaults();

// target: the images to invert, in grey levels (N,C,H,W) at the model's size. start_noise: std of
// the start image in grey levels (0: the mean image).
AscentResult invert_features(const Model& model, Backend& backend, int layer, const Tensor& target, float start_noise,
                             const AscentSettings& settings,
                             const std::function<void(const AscentProgress&)>& progress = {});

}  // namespace deepinside::viz
