#pragma once
// Winograd F(2x2, 3x3) convolution (winograd.cpp): the fast path's choice for 3x3, stride-1,
// undilated, ungrouped convolutions with at least 16 channels in and out, forward and backward-data.
#include <cstdint>

#include "engine/op_params.h"

namespace deepinside::cpu_fast {

// False when the environment sets DEEPINSIDE_WINOGRAD=0 (to compare with the im2col path).
bool winograd_enabled();
bool winograd_applies(const ConvGeometry& g);
int64_t winograd_workspace_floats(const ConvGeometry& g);

// The transformed weights U = G w G^T, (16, M, C): U_xi (M x C) for each of the 16 positions xi of
// the 4x4 tile. The backend makes them once at plan time when the weights are constants; forward
// and backward-data both read them (backward reads them flipped and transposed).
int64_t winograd_weight_floats(const ConvGeometry& g);
void winograd_transform_weights(float* u, const float* w, const ConvGeometry& g);

// y (N,M,OH,OW) = conv(x, w) + b (b may be nullptr), or max(0, that) when relu. u: w's transform
// from winograd_transform_weights, or nullptr to transform w into the workspace in this call.
void winograd_forward(float* y, const float* x, const float* w, const float* u, const float* b,
                      const ConvGeometry& g, float* ws, bool relu = false);
// dx (N,C,H,W) += transposed convolution of dy with w; u as above.
void winograd_backward_input(float* dx, const float* dy, const float* w, const float* u, const ConvGeometry& g,
                             float* ws);

}  // namespace deepinside::cpu_fast
