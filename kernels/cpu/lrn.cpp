// Local response normalisation across channels (ONNX LRN), the reference. Derivation of the
// backward pass: docs/derivations.md#lrn.
#include <algorithm>
#include <cmath>

#include "kernels/cpu/reference.h"

namespace deepinside::cpu {

void lrn_forward(float* y, float* scale, const float* x, int N, int C, int64_t S, const LrnParams& p) {
  const int before = (p.size - 1) / 2, after = p.size / 2;
  const float alpha_over_n = p.alpha / float(p.size);
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c)
      for (int64_t s = 0; s < S; ++s) {
        float sum = 0.0f;
        for (int j = std::max(0, c - before); j <= std::min(C - 1, c + after); ++j) {
          const float v = x[(int64_t(n) * C + j) * S + s];
          sum += v * v;
        }
        const int64_t i = (int64_t(n) * C + c) * S + s;
        scale[i] = p.bias + alpha_over_n * sum;
        y[i] = x[i] * std::pow(scale[i], -p.beta);
      }
}

// dx_i = dy_i * scale_i^-beta - (2 alpha beta / n) * x_i * sum_{j : i in window(j)} dy_j * y_j / scale_j
void lrn_backward_input(float* dx, const float* dy, const float* x, const float* y, const float* scale,
                        int N, int C, int64_t S, const LrnParams& p) {
  const int before = (p.size - 1) / 2, after = p.size / 2;
  const float k = 2.0f * p.alpha * p.beta / float(p.size);
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c)
      for (int64_t s = 0; s < S; ++s) {
        // Channel c lies in the window of channels j in [c - after, c + before].
        float sum = 0.0f;
        for (int j = std::max(0, c - after); j <= std::min(C - 1, c + before); ++j) {
          const int64_t o = (int64_t(n) * C + j) * S + s;
          sum += dy[o] * y[o] / scale[o];
        }
        const int64_t i = (int64_t(n) * C + c) * S + s;
        dx[i] += dy[i] * std::pow(scale[i], -p.beta) - k * x[i] * sum;
      }
}

}  // namespace deepinside::cpu
