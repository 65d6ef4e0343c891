#pragma once
// Pictures of a saliency map: a heat map and an overlay on the input the network saw.
#include "engine/image.h"

namespace deepinside::viz {

// Values scaled to [0, 1] by the map's 99th percentile (a few extreme pixels would otherwise
// flatten the rest to black), clipped above. The raw .npy keeps the unscaled map.
std::vector<float> normalize_for_display(const float* map, int height, int width);
Image render_heatmap(const float* map, int height, int width);
Image render_overlay(const Image& display, const float* map);

}  // namespace deepinside::viz
