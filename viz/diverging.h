#pragma once
// Pictures of a signed map (LRP relevance, gradient x input): a diverging colour map, blue for
// negative, white for zero, red for positive, on one symmetric scale so that the two signs compare.
#include <vector>

#include "engine/image.h"

namespace deepinside::viz {

// Values divided by the 99.5th percentile of |map| (a few extreme pixels would otherwise wash the
// rest out to white) and clipped to [-1, 1]; the sign is kept.
std::vector<float> normalize_signed(const float* map, int height, int width);
// -1 -> blue (0,0,255), 0 -> white, +1 -> red (255,0,0), linear in between.
Image render_diverging(const float* map, int height, int width);
// The same colours blended over a greyed copy of an RGB or grey image of the map's size: weight
// |v|, so that irrelevant pixels show the picture.
Image render_diverging_overlay(const Image& display, const float* map);

}  // namespace deepinside::viz
