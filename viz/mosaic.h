#pragma once
// Pictures side by side: a grid of RGB tiles with white gaps, and a box outline (the receptive field).
#include <vector>

#include "engine/image.h"

namespace deepinside::viz {

// rows[r][c] placed left to right, top to bottom; grey tiles become RGB; cells are as large as the
// largest tile of their row and column, tiles top-left aligned, gaps and empty cells white.
Image tile_grid(const std::vector<std::vector<Image>>& rows, int gap = 4);

// A one-pixel rectangle outline on an RGB image, rows y0..y1, columns x0..x1 (inclusive).
void draw_box(Image& img, int y0, int x0, int y1, int x1, uint8_t r, uint8_t g, uint8_t b);

// RGB copy of a grey or RGB image (alpha dropped).
Image to_rgb(const Image& img);

}  // namespace deepinside::viz
