#pragma once
// Batch normalisation at inference (running statistics), the reference.
#include <cmath>

#include "engine/backend.h"
#include "engine/op_params.h"

namespace deepinside::cpu {

// Inference batch norm on x (N,C,S): y = (x - mean) / sqrt(var + eps) * gamma + beta.
template <class T>
void batchnorm_forward(T* y, const T* x, const T* gamma, const T* beta, const T* mean,
                       const T* var, int N, int C, int64_t S, T eps) {
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) {
      const T a = gamma[c] / std::sqrt(var[c] + eps);
      const int64_t base = (int64_t(n) * C + c) * S;
      for (int64_t s = 0; s < S; ++s) y[base + s] = (x[base + s] - mean[c]) * a + beta[c];
    }
}

template <class T>
void batchnorm_backward_input(T* dx, const T* dy, const T* gamma, const T* var,
                              int N, int C, int64_t S, T eps) {
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) {
      const T a = gamma[c] / std::sqrt(var[c] + eps);
      const int64_t base = (int64_t(n) * C + c) * S;
      for (int64_t s = 0; s < S; ++s) dx[base + s] += dy[base + s] * a;
    }
}

}  // namespace deepinside::cpu
