// Softmax over one axis of an (outer, L, inner) view, the reference (max-subtracted, double sums).
#include <cmath>

#include "kernels/cpu/reference.h"

namespace deepinside::cpu {

void softmax_forward(float* y, const float* x, int64_t outer, int64_t L, int64_t inner) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const float* xs = x + o * L * inner + i;
      float* ys = y + o * L * inner + i;
      float peak = xs[0];
      for (int64_t l = 1; l < L; ++l) peak = xs[l * inner] > peak ? xs[l * inner] : peak;
      double total = 0.0;
      for (int64_t l = 0; l < L; ++l) total += std::exp(double(xs[l * inner] - peak));
      for (int64_t l = 0; l < L; ++l) ys[l * inner] = float(std::exp(double(xs[l * inner] - peak)) / total);
    }
}

// dx_l = y_l * (dy_l - sum_k dy_k y_k)
void softmax_backward_input(float* dx, const float* dy, const float* y, int64_t outer, int64_t L, int64_t inner) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const int64_t base = o * L * inner + i;
      double dot = 0.0;
      for (int64_t l = 0; l < L; ++l) dot += double(dy[base + l * inner]) * y[base + l * inner];
      for (int64_t l = 0; l < L; ++l)
        dx[base + l * inner] += y[base + l * inner] * float(dy[base + l * inner] - dot);
    }
}

}  // namespace deepinside::cpu
