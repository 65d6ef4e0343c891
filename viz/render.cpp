#include "viz/render.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace deepinside::viz {

std::vector<float> normalize_for_display(const float* map, int height, int width) {
  const size_t n = size_t(height) * width;
  std::vector<float> sorted(map, map + n);
  const size_t at = std::min(n - 1, size_t(std::floor(0.99 * double(n - 1))));
  std::nth_element(sorted.begin(), sorted.begin() + at, sorted.end());
  float top = sorted[at];
  if (!(top > 0.0f)) top = *std::max_element(map, map + n);
  std::vector<float> out(n, 0.0f);
  if (top > 0.0f)
    for (size_t i = 0; i < n; ++i) out[i] = std::min(map[i] / top, 1.0f);
  return out;
}

Image render_heatmap(const float* map, int height, int width) {
  return colorize(normalize_for_display(map, height, width), width, height);
}

Image render_overlay(const Image& display, const float* map) {
  return overlay(display, normalize_for_display(map, display.height, display.width));
}

}  // namespace deepinside::viz
