#include "engine/image.h"

#include <algorithm>
#include <array>
#include <cmath>

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include "engine/atomic_file.h"
#include "engine/error.h"

namespace deepinside {

Image load_image(const std::string& path) {
  int w = 0, h = 0, c = 0;
  FILE* f = std::fopen(path.c_str(), "rb");
  require(f != nullptr, "cannot open image '" + path + "'");
  uint8_t* data = stbi_load_from_file(f, &w, &h, &c, 0);
  std::fclose(f);
  if (!data) throw Error("cannot decode image '" + path + "': " + stbi_failure_reason());
  Image img{w, h, c, std::vector<uint8_t>(data, data + size_t(w) * h * c)};
  stbi_image_free(data);
  require(w > 0 && h > 0, "image '" + path + "' is empty");
  return img;
}

namespace {

// Per output coordinate: the first source index and normalised weights of the triangle filter.
struct Taps {
  std::vector<int> first;
  std::vector<std::vector<float>> weights;
};

Taps resample_taps(int in_size, int out_size) {
  Taps taps;
  const double scale = double(in_size) / out_size;
  const double filter_scale = std::max(scale, 1.0);  // widen when shrinking: antialiasing
  const double support = filter_scale;               // triangle filter support 1, scaled
  for (int o = 0; o < out_size; ++o) {
    const double center = (o + 0.5) * scale;
    const int lo = std::max(int(center - support + 0.5), 0);
    const int hi = std::min(int(center + support + 0.5), in_size);
    std::vector<float> w;
    double total = 0.0;
    for (int i = lo; i < hi; ++i) {
      const double t = std::fabs((i - center + 0.5) / filter_scale);
      const double v = t < 1.0 ? 1.0 - t : 0.0;
      w.push_back(float(v));
      total += v;
    }
    if (total > 0)
      for (float& v : w) v = float(v / total);
    taps.first.push_back(lo);
    taps.weights.push_back(std::move(w));
  }
  return taps;
}

}  // namespace

Image resize_image(const Image& in, int width, int height) {
  require(width > 0 && height > 0, "cannot resize to " + std::to_string(width) + "x" + std::to_string(height));
  if (width == in.width && height == in.height) return Image{in.width, in.height, in.channels, in.pixels};
  const int C = in.channels;
  const Taps tx = resample_taps(in.width, width), ty = resample_taps(in.height, height);
  // Horizontal pass into floats (in.height x width), then vertical pass with rounding.
  std::vector<float> mid(size_t(in.height) * width * C);
  for (int y = 0; y < in.height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < C; ++c) {
        float sum = 0.0f;
        for (size_t k = 0; k < tx.weights[x].size(); ++k) sum += tx.weights[x][k] * in.at(tx.first[x] + int(k), y, c);
        mid[(size_t(y) * width + x) * C + c] = sum;
      }
  Image out{width, height, C, std::vector<uint8_t>(size_t(width) * height * C)};
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < C; ++c) {
        float sum = 0.0f;
        for (size_t k = 0; k < ty.weights[y].size(); ++k)
          sum += ty.weights[y][k] * mid[(size_t(ty.first[y] + int(k)) * width + x) * C + c];
        out.pixels[(size_t(y) * width + x) * C + c] = uint8_t(std::clamp(std::lround(sum), 0L, 255L));
      }
  return out;
}

Image crop_image(const Image& in, int x0, int y0, int width, int height) {
  require(x0 >= 0 && y0 >= 0 && x0 + width <= in.width && y0 + height <= in.height,
          "crop " + std::to_string(width) + "x" + std::to_string(height) + " does not fit image " +
              std::to_string(in.width) + "x" + std::to_string(in.height));
  Image out{width, height, in.channels, std::vector<uint8_t>(size_t(width) * height * in.channels)};
  for (int y = 0; y < height; ++y)
    std::copy_n(&in.pixels[(size_t(y0 + y) * in.width + x0) * in.channels], size_t(width) * in.channels,
                &out.pixels[size_t(y) * width * in.channels]);
  return out;
}

Image upscale_nearest(const Image& in, int factor) {
  require(factor >= 1, "upscale factor must be >= 1");
  if (factor == 1) return Image{in.width, in.height, in.channels, in.pixels};
  Image out{in.width * factor, in.height * factor, in.channels, {}};
  out.pixels.resize(size_t(out.width) * out.height * out.channels);
  for (int y = 0; y < out.height; ++y)
    for (int x = 0; x < out.width; ++x)
      for (int c = 0; c < in.channels; ++c)
        out.pixels[(size_t(y) * out.width + x) * out.channels + c] = in.at(x / factor, y / factor, c);
  return out;
}

Image convert_channels(const Image& in, int channels, std::string* note) {
  require(channels == 1 || channels == 3, "models take 1 (grey) or 3 (colour) channels, not " +
                                              std::to_string(channels));
  if (note) note->clear();
  const bool has_alpha = in.channels == 2 || in.channels == 4;
  const int colour = has_alpha ? in.channels - 1 : in.channels;
  if (colour == channels && !has_alpha) return Image{in.width, in.height, in.channels, in.pixels};
  Image out{in.width, in.height, channels, std::vector<uint8_t>(size_t(in.width) * in.height * channels)};
  for (int y = 0; y < in.height; ++y)
    for (int x = 0; x < in.width; ++x) {
      uint8_t* o = &out.pixels[(size_t(y) * in.width + x) * channels];
      if (channels == 3) {
        for (int c = 0; c < 3; ++c) o[c] = in.at(x, y, colour == 1 ? 0 : c);
      } else if (colour == 1) {
        o[0] = in.at(x, y, 0);
      } else {  // ITU-R BT.601 luma, as PIL's convert('L')
        o[0] = uint8_t(std::lround(0.299 * in.at(x, y, 0) + 0.587 * in.at(x, y, 1) + 0.114 * in.at(x, y, 2)));
      }
    }
  if (note) {
    std::string what;
    if (colour != channels) what = colour == 1 ? "greyscale image converted to RGB" : "colour image converted to greyscale";
    if (has_alpha) what += std::string(what.empty() ? "" : "; ") + "alpha channel dropped";
    *note = what;
  }
  return out;
}

std::string encode_png(const Image& image) {
  std::string bytes;
  auto sink = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), size_t(size));
  };
  const int ok = stbi_write_png_to_func(sink, &bytes, image.width, image.height, image.channels,
                                        image.pixels.data(), image.width * image.channels);
  require(ok != 0 && !bytes.empty(), "PNG encoding failed");
  return bytes;
}

void write_png(const std::string& path, const Image& image) { write_file_atomic(path, encode_png(image)); }

namespace {
// Nine samples of matplotlib's inferno colour map, interpolated linearly.
constexpr std::array<std::array<float, 3>, 9> kInferno = {{{0, 0, 4},
                                                            {31, 12, 72},
                                                            {85, 15, 109},
                                                            {136, 34, 106},
                                                            {186, 54, 85},
                                                            {227, 89, 51},
                                                            {249, 140, 10},
                                                            {249, 201, 50},
                                                            {252, 255, 164}}};

std::array<uint8_t, 3> inferno(float v) {
  v = std::clamp(std::isfinite(v) ? v : 0.0f, 0.0f, 1.0f) * float(kInferno.size() - 1);
  const int i = std::min(int(v), int(kInferno.size()) - 2);
  const float t = v - float(i);
  std::array<uint8_t, 3> rgb{};
  for (int c = 0; c < 3; ++c) rgb[c] = uint8_t(std::lround(kInferno[i][c] * (1 - t) + kInferno[i + 1][c] * t));
  return rgb;
}
}  // namespace

Image colorize(const std::vector<float>& values, int width, int height) {
  Image out{width, height, 3, std::vector<uint8_t>(size_t(width) * height * 3)};
  for (size_t i = 0; i < size_t(width) * height; ++i) {
    const auto rgb = inferno(values[i]);
    std::copy(rgb.begin(), rgb.end(), &out.pixels[i * 3]);
  }
  return out;
}

Image overlay(const Image& base, const std::vector<float>& values) {
  Image out{base.width, base.height, 3, std::vector<uint8_t>(size_t(base.width) * base.height * 3)};
  for (size_t i = 0; i < size_t(base.width) * base.height; ++i) {
    const float s = std::clamp(std::isfinite(values[i]) ? values[i] : 0.0f, 0.0f, 1.0f);
    const float alpha = 0.75f * std::sqrt(s);  // sqrt: faint saliency stays visible
    const auto heat = inferno(s);
    for (int c = 0; c < 3; ++c) {
      const float b = base.pixels[i * base.channels + (base.channels >= 3 ? c : 0)];
      out.pixels[i * 3 + c] = uint8_t(std::lround(b * (1 - alpha) + heat[c] * alpha));
    }
  }
  return out;
}

}  // namespace deepinside
