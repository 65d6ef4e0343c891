#pragma once
// Deep Dream (Mordvintsev et al. 2015): amplify what a layer sees in a photo, maximising
// 1/2 ||phi(I)||^2 over octaves, from the photo. docs/inversion-dream.md.
#include <functional>

#include "viz/optimize.h"

namespace deepinside::viz {

// Deep Dream's own settings: 4 octaves of scale 1.4, 10 normalised steps of 1.5 grey levels each,
// jitter 32, pixels kept showable.
AscentSettings dream_defaults();

// photo: (N,C,H,W) grey levels, any size the network takes up to `layer`.
AscentResult deep_dream(const Model& model, Backend& backend, int layer, const Tensor& photo,
                        const AscentSettings& settings,
                        const std::function<void(const AscentProgress&)>& progress = {});

}  // namespace deepinside::viz
