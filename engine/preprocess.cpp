#include "engine/preprocess.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/error.h"

namespace deepinside {

namespace {

// The source plane (in RGB / grey pixel order) that model channel c reads.
int source_channel(const Preprocessing& p, int c, int channels) {
  return (channels == 3 && p.channel_order == ChannelOrder::bgr) ? 2 - c : c;
}

float mean_at(const Preprocessing& p, int c, int64_t pixel) {
  if (p.mean_image) return (*p.mean_image)[int64_t(c) * p.mean_image->dim(1) * p.mean_image->dim(2) + pixel];
  return p.mean.empty() ? 0.0f : p.mean[c];
}

}  // namespace

Tensor pixels_to_tensor(const Image& img, const Preprocessing& p) {
  const int C = img.channels, H = img.height, W = img.width;
  if (p.mean_image)
    require(p.mean_image->dim(1) == H && p.mean_image->dim(2) == W,
            "the mean image is " + shape_to_string(p.mean_image->shape()) + " but the input is " +
                std::to_string(H) + "x" + std::to_string(W));
  Tensor t(Shape{C, H, W});
  const float step = (p.range_hi - p.range_lo) / 255.0f;
  for (int c = 0; c < C; ++c) {
    const int src = source_channel(p, c, C);
    const float inv_std = p.std.empty() ? 1.0f : 1.0f / p.std[c];
    for (int64_t i = 0; i < int64_t(H) * W; ++i) {
      const float v = p.range_lo + float(img.pixels[size_t(i) * C + src]) * step;
      t[int64_t(c) * H * W + i] = (v - mean_at(p, c, i)) * inv_std * p.scale;
    }
  }
  return t;
}

Image tensor_to_pixels(const float* chw, int channels, int height, int width, const Preprocessing& p) {
  Image img{width, height, channels, std::vector<uint8_t>(size_t(width) * height * channels)};
  const float step = (p.range_hi - p.range_lo) / 255.0f;
  for (int c = 0; c < channels; ++c) {
    const int dst = source_channel(p, c, channels);
    const float std_c = p.std.empty() ? 1.0f : p.std[c];
    for (int64_t i = 0; i < int64_t(height) * width; ++i) {
      const float x = chw[int64_t(c) * height * width + i];
      const float v = (x / p.scale * std_c + mean_at(p, c, i) - p.range_lo) / step;
      img.pixels[size_t(i) * channels + dst] = uint8_t(std::clamp(std::lround(v), 0L, 255L));
    }
  }
  return img;
}

PreparedImage prepare_image(const Image& image, const Preprocessing& p, int channels, int height, int width) {
  PreparedImage out;
  Image img = convert_channels(image, channels, &out.note);
  if (p.resize_shorter > 0) {
    const double s = double(p.resize_shorter) / std::min(img.width, img.height);
    int w = std::max(1, int(std::lround(img.width * s))), h = std::max(1, int(std::lround(img.height * s)));
    // The shorter side is exactly N; the crop below must still fit.
    if (img.width <= img.height) w = p.resize_shorter; else h = p.resize_shorter;
    require(w >= width && h >= height, "after resizing the shorter side to " + std::to_string(p.resize_shorter) +
                                           " the image is " + std::to_string(w) + "x" + std::to_string(h) +
                                           ", smaller than the " + std::to_string(width) + "x" +
                                           std::to_string(height) + " crop");
    img = resize_image(img, w, h);
    img = crop_image(img, (w - width) / 2, (h - height) / 2, width, height);
  } else {
    img = resize_image(img, width, height);
  }
  out.input = pixels_to_tensor(img, p);
  out.display = std::move(img);
  return out;
}

Tensor stack_batch(const std::vector<Tensor>& items) {
  require(!items.empty(), "empty batch");
  Shape shape = items[0].shape();
  shape.insert(shape.begin(), int64_t(items.size()));
  Tensor batch(shape);
  const int64_t each = items[0].numel();
  for (size_t i = 0; i < items.size(); ++i) {
    require(items[i].shape() == items[0].shape(), "batch items differ in shape");
    std::memcpy(batch.data() + int64_t(i) * each, items[i].data(), sizeof(float) * each);
  }
  return batch;
}

}  // namespace deepinside
