#include "viz/diverging.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"

namespace deepinside::viz {

namespace {

struct Rgb {
  float r, g, b;
};

Rgb diverging_colour(float v) {  // v in [-1, 1]
  const float t = std::min(std::fabs(v), 1.0f);
  return v >= 0.0f ? Rgb{255.0f, 255.0f * (1.0f - t), 255.0f * (1.0f - t)}
                   : Rgb{255.0f * (1.0f - t), 255.0f * (1.0f - t), 255.0f};
}

uint8_t to_byte(float v) { return uint8_t(std::clamp(std::lround(v), 0L, 255L)); }

}  // namespace

std::vector<float> normalize_signed(const float* map, int height, int width) {
  const size_t n = size_t(height) * width;
  require(n > 0, "an empty map has no picture");
  std::vector<float> mag(n);
  for (size_t i = 0; i < n; ++i) mag[i] = std::isfinite(map[i]) ? std::fabs(map[i]) : 0.0f;
  const size_t at = std::min(n - 1, size_t(std::floor(0.995 * double(n - 1))));
  std::nth_element(mag.begin(), mag.begin() + at, mag.end());
  float top = mag[at];
  if (!(top > 0.0f)) top = *std::max_element(mag.begin(), mag.end());
  std::vector<float> out(n, 0.0f);
  if (top > 0.0f)
    for (size_t i = 0; i < n; ++i)
      out[i] = std::isfinite(map[i]) ? std::clamp(map[i] / top, -1.0f, 1.0f) : 0.0f;
  return out;
}

Image render_diverging(const float* map, int height, int width) {
  const std::vector<float> v = normalize_signed(map, height, width);
  Image img{width, height, 3, std::vector<uint8_t>(size_t(width) * height * 3)};
  for (size_t i = 0; i < v.size(); ++i) {
    const Rgb c = diverging_colour(v[i]);
    img.pixels[3 * i] = to_byte(c.r);
    img.pixels[3 * i + 1] = to_byte(c.g);
    img.pixels[3 * i + 2] = to_byte(c.b);
  }
  return img;
}

Image render_diverging_overlay(const Image& display, const float* map) {
  require(display.channels == 1 || display.channels == 3, "an overlay needs an RGB or grey picture");
  const std::vector<float> v = normalize_signed(map, display.height, display.width);
  Image img{display.width, display.height, 3, std::vector<uint8_t>(size_t(display.width) * display.height * 3)};
  for (size_t i = 0; i < v.size(); ++i) {
    float grey = 0.0f;  // the picture, greyed and lightened so that both colours stand out on it
    if (display.channels == 1) {
      grey = display.pixels[i];
    } else {
      grey = 0.299f * display.pixels[3 * i] + 0.587f * display.pixels[3 * i + 1] + 0.114f * display.pixels[3 * i + 2];
    }
    grey = 96.0f + 0.6f * grey;
    const float a = std::min(std::fabs(v[i]) * 1.5f, 1.0f);
    const Rgb c = diverging_colour(v[i] >= 0.0f ? 1.0f : -1.0f);
    img.pixels[3 * i] = to_byte((1.0f - a) * grey + a * c.r);
    img.pixels[3 * i + 1] = to_byte((1.0f - a) * grey + a * c.g);
    img.pixels[3 * i + 2] = to_byte((1.0f - a) * grey + a * c.b);
  }
  return img;
}

}  // namespace deepinside::viz
