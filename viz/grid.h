#pragma once
// A labelled grid of pictures (class models, channels, reconstructions): each tile with up to two
// lines of text under it, drawn with a small built-in 5x7 bitmap font (upper case, digits and
// common punctuation; lower case is drawn in upper case), so no font file is needed.
#include <string>
#include <vector>

#include "engine/image.h"

namespace deepinside::viz {

// Tiles must share one size and channel count (grey tiles become RGB when mixed). columns <= 0:
// about square. Labels longer than two lines of the tile's width are cut with ".."; a label with a
// newline is drawn as those two lines. Tiles narrower than 96 pixels are enlarged (nearest) to fit.
Image labelled_grid(const std::vector<Image>& tiles, const std::vector<std::string>& labels, int columns = 0);

// Draws text in colour rgb with its top-left corner at (x, y), each font pixel a scale x scale block;
// clipped to the image. Returns the width drawn in pixels.
int draw_text(Image& image, int x, int y, const std::string& text, int scale, const uint8_t rgb[3]);

// "n02123045 tabby, tabby cat" style labels shortened for a caption: the part before the first comma.
std::string short_label(const std::string& label);

}  // namespace deepinside::viz
