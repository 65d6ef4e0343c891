#pragma once
// The rectifier and its three backward rules: the only place where gradient, DeconvNet and guided
// backpropagation differ (paper Sec. 5; derivation in docs/derivations.md#relu-rules).
#include "engine/backend.h"
#include "engine/op_params.h"

namespace deepinside::cpu {

// Relu and its three backward rules (DESIGN.md Sec. 3).
template <class T>
void relu_forward(T* y, const T* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0.0) ? x[i] : T(0.0);
}

template <class T>
void relu_backward_input(T* dx, const T* dy, const T* x, int64_t n, BackwardRule rule) {
  switch (rule) {
    case BackwardRule::gradient:  // the true derivative: pass where the forward input was positive
      for (int64_t i = 0; i < n; ++i) dx[i] += x[i] > T(0.0) ? dy[i] : T(0.0);
      break;
    case BackwardRule::deconvnet:  // Zeiler & Fergus: rectify the signal going down, ignore x
      for (int64_t i = 0; i < n; ++i) dx[i] += dy[i] > T(0.0) ? dy[i] : T(0.0);
      break;
    case BackwardRule::guided:  // Springenberg et al.: both conditions
      for (int64_t i = 0; i < n; ++i) dx[i] += (x[i] > T(0.0) && dy[i] > T(0.0)) ? dy[i] : T(0.0);
      break;
  }
}

}  // namespace deepinside::cpu
