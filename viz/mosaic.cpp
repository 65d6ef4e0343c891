#include "viz/mosaic.h"

#include <algorithm>

namespace deepinside::viz {

Image to_rgb(const Image& img) {
  Image out{img.width, img.height, 3, std::vector<uint8_t>(size_t(img.width) * img.height * 3)};
  for (size_t i = 0; i < size_t(img.width) * img.height; ++i)
    for (int c = 0; c < 3; ++c) out.pixels[i * 3 + c] = img.pixels[i * img.channels + (img.channels >= 3 ? c : 0)];
  return out;
}

Image tile_grid(const std::vector<std::vector<Image>>& rows, int gap) {
  size_t cols = 0;
  for (const auto& row : rows) cols = std::max(cols, row.size());
  std::vector<int> col_w(cols, 0), row_h(rows.size(), 0);
  for (size_t r = 0; r < rows.size(); ++r)
    for (size_t c = 0; c < rows[r].size(); ++c) {
      col_w[c] = std::max(col_w[c], rows[r][c].width);
      row_h[r] = std::max(row_h[r], rows[r][c].height);
    }
  int W = gap, H = gap;
  for (int w : col_w) W += w + gap;
  for (int h : row_h) H += h + gap;
  Image out{W, H, 3, std::vector<uint8_t>(size_t(W) * H * 3, 255)};
  int y = gap;
  for (size_t r = 0; r < rows.size(); ++r) {
    int x = gap;
    for (size_t c = 0; c < rows[r].size(); ++c) {
      const Image rgb = to_rgb(rows[r][c]);
      for (int ty = 0; ty < rgb.height; ++ty)
        std::copy_n(&rgb.pixels[size_t(ty) * rgb.width * 3], size_t(rgb.width) * 3,
                    &out.pixels[(size_t(y + ty) * W + x) * 3]);
      x += col_w[c] + gap;
    }
    y += row_h[r] + gap;
  }
  return out;
}

void draw_box(Image& img, int y0, int x0, int y1, int x1, uint8_t r, uint8_t g, uint8_t b) {
  const auto put = [&](int y, int x) {
    if (y < 0 || x < 0 || y >= img.height || x >= img.width) return;
    uint8_t* p = &img.pixels[(size_t(y) * img.width + x) * img.channels];
    p[0] = r;
    if (img.channels >= 3) p[1] = g, p[2] = b;
  };
  for (int x = x0; x <= x1; ++x) put(y0, x), put(y1, x);
  for (int y = y0; y <= y1; ++y) put(y, x0), put(y, x1);
}

}  // namespace deepinside::viz
