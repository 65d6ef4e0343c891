#pragma once
// 8-bit images: decode (stb_image), resize, crop, encode PNG, colour maps and overlays.
#include <cstdint>
#include <string>
#include <vector>

namespace deepinside {

// Interleaved pixels, row-major: pixels[(y * width + x) * channels + c]. channels is 1 (grey),
// 2 (grey + alpha), 3 (RGB) or 4 (RGBA).
struct Image {
  int width = 0, height = 0, channels = 0;
  std::vector<uint8_t> pixels;
  uint8_t at(int x, int y, int c) const { return pixels[(size_t(y) * width + x) * channels + c]; }
};

// Decodes JPEG, PNG, BMP, ... Throws Error naming the file and the decoder's reason.
Image load_image(const std::string& path);

// Antialiased bilinear resampling (a triangle filter widened by the scale factor when shrinking,
// as PIL's BILINEAR does), rounded to 8 bits.
Image resize_image(const Image& in, int width, int height);
Image crop_image(const Image& in, int x0, int y0, int width, int height);
// Each pixel becomes a factor x factor block (for looking at small inputs such as 28x28).
Image upscale_nearest(const Image& in, int factor);

// RGB <-> grey and alpha removal; `note` receives a sentence saying what was done, if anything.
Image convert_channels(const Image& in, int channels, std::string* note);

std::string encode_png(const Image& image);
void write_png(const std::string& path, const Image& image);  // atomic

// A perceptually ordered colour map (dark purple -> yellow, like matplotlib's inferno) of
// values in [0, 1]; width x height row-major values.
Image colorize(const std::vector<float>& values, int width, int height);
// The heat map blended over an RGB or grey image of the same size: the more salient, the more colour.
Image overlay(const Image& base, const std::vector<float>& values);

}  // namespace deepinside
