#pragma once
// Softmax over one axis of an (outer, L, inner) view, the reference (max-subtracted, double sums).
#include <cmath>

#include "engine/backend.h"
#include "engine/op_params.h"

namespace deepinside::cpu {

// Softmax over a (outer, L, inner) view: y[o,:,i] = softmax(x[o,:,i]).
template <class T>
void softmax_forward(T* y, const T* x, int64_t outer, int64_t L, int64_t inner) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const T* xs = x + o * L * inner + i;
      T* ys = y + o * L * inner + i;
      T peak = xs[0];
      for (int64_t l = 1; l < L; ++l) peak = xs[l * inner] > peak ? xs[l * inner] : peak;
      double total = 0.0;
      for (int64_t l = 0; l < L; ++l) total += std::exp(double(xs[l * inner] - peak));
      for (int64_t l = 0; l < L; ++l) ys[l * inner] = T(std::exp(double(xs[l * inner] - peak)) / total);
    }
}

// dx_l = y_l * (dy_l - sum_k dy_k y_k)
template <class T>
void softmax_backward_input(T* dx, const T* dy, const T* y, int64_t outer, int64_t L, int64_t inner) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const int64_t base = o * L * inner + i;
      double dot = 0.0;
      for (int64_t l = 0; l < L; ++l) dot += double(dy[base + l * inner]) * y[base + l * inner];
      for (int64_t l = 0; l < L; ++l)
        dx[base + l * inner] += y[base + l * inner] * T(dy[base + l * inner] - dot);
    }
}

}  // namespace deepinside::cpu
