#pragma once
// Pixels -> input tensor, as the model card says: channel conversion, resize (shorter side or
// straight), centre crop, channel order, pixel range, mean, std, scale.
#include <string>
#include <vector>

#include "engine/image.h"
#include "engine/model_card.h"
#include "engine/tensor.h"

namespace deepinside {

struct PreparedImage {
  Tensor input;        // (C,H,W) in the model's channel order and units
  Image display;       // the resized and cropped pixels (RGB or grey) the tensor was made from
  std::string note;    // what channel conversion happened, if any ("" otherwise)
};

// Resizes and crops to height x width with channels colour planes, then normalises.
PreparedImage prepare_image(const Image& image, const Preprocessing& p, int channels, int height, int width);
// Normalises pixels that already have the model's size and channel count (RGB or grey order).
Tensor pixels_to_tensor(const Image& pixels, const Preprocessing& p);
// The inverse of pixels_to_tensor up to rounding: the picture a tensor (C,H,W) shows, as RGB or grey.
Image tensor_to_pixels(const float* chw, int channels, int height, int width, const Preprocessing& p);

// Stacks (C,H,W) tensors of one shape into (N,C,H,W).
Tensor stack_batch(const std::vector<Tensor>& items);

}  // namespace deepinside
