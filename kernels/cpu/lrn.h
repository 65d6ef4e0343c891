#pragma once
// Local response normalisation across channels (ONNX LRN), the reference. Derivation of the
// backward pass: docs/derivations.md#lrn.
#include <algorithm>
#include <cmath>

#include "engine/backend.h"
#include "engine/op_params.h"

namespace deepinside::cpu {

// Cross-channel LRN on x (N,C,S) (S = spatial size): scale = bias + alpha/size * sum of x^2 over
// channels [c - (size-1)/2, c + size/2]; y = x * scale^-beta.
template <class T>
void lrn_forward(T* y, T* scale, const T* x, int N, int C, int64_t S, const LrnParams& p) {
  const int before = (p.size - 1) / 2, after = p.size / 2;
  const T alpha_over_n = T(p.alpha) / T(p.size);
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c)
      for (int64_t s = 0; s < S; ++s) {
        T sum = T(0.0);
        for (int j = std::max(0, c - before); j <= std::min(C - 1, c + after); ++j) {
          const T v = x[(int64_t(n) * C + j) * S + s];
          sum += v * v;
        }
        const int64_t i = (int64_t(n) * C + c) * S + s;
        scale[i] = T(p.bias) + alpha_over_n * sum;
        y[i] = x[i] * std::pow(scale[i], -T(p.beta));
      }
}

// dx_i = dy_i * scale_i^-beta - (2 alpha beta / n) * x_i * sum_{j : i in window(j)} dy_j * y_j / scale_j
template <class T>
void lrn_backward_input(T* dx, const T* dy, const T* x, const T* y, const T* scale,
                        int N, int C, int64_t S, const LrnParams& p) {
  const int before = (p.size - 1) / 2, after = p.size / 2;
  const T k = T(2.0) * T(p.alpha) * T(p.beta) / T(p.size);
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c)
      for (int64_t s = 0; s < S; ++s) {
        // Channel c lies in the window of channels j in [c - after, c + before].
        T sum = T(0.0);
        for (int j = std::max(0, c - after); j <= std::min(C - 1, c + before); ++j) {
          const int64_t o = (int64_t(n) * C + j) * S + s;
          sum += dy[o] * y[o] / scale[o];
        }
        const int64_t i = (int64_t(n) * C + c) * S + s;
        dx[i] += dy[i] * std::pow(scale[i], -T(p.beta)) - k * x[i] * sum;
      }
}

}  // namespace deepinside::cpu
