// Batch normalisation at inference (running statistics), the reference.
#include <cmath>

#include "kernels/cpu/reference.h"

namespace deepinside::cpu {

void batchnorm_forward(float* y, const float* x, const float* gamma, const float* beta, const float* mean,
                       const float* var, int N, int C, int64_t S, float eps) {
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) {
      const float a = gamma[c] / std::sqrt(var[c] + eps);
      const int64_t base = (int64_t(n) * C + c) * S;
      for (int64_t s = 0; s < S; ++s) y[base + s] = (x[base + s] - mean[c]) * a + beta[c];
    }
}

void batchnorm_backward_input(float* dx, const float* dy, const float* gamma, const float* var,
                              int N, int C, int64_t S, float eps) {
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) {
      const float a = gamma[c] / std::sqrt(var[c] + eps);
      const int64_t base = (int64_t(n) * C + c) * S;
      for (int64_t s = 0; s < S; ++s) dx[base + s] += dy[base + s] * a;
    }
}

}  // namespace deepinside::cpu
