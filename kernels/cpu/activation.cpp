// The rectifier and its three backward rules: the only place where gradient, DeconvNet and guided
// backpropagation differ (paper Sec. 5; derivation in docs/derivations.md#relu-rules).
#include "kernels/cpu/reference.h"

namespace deepinside::cpu {

void relu_forward(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void relu_backward_input(float* dx, const float* dy, const float* x, int64_t n, BackwardRule rule) {
  switch (rule) {
    case BackwardRule::gradient:  // the true derivative: pass where the forward input was positive
      for (int64_t i = 0; i < n; ++i) dx[i] += x[i] > 0.0f ? dy[i] : 0.0f;
      break;
    case BackwardRule::deconvnet:  // Zeiler & Fergus: rectify the signal going down, ignore x
      for (int64_t i = 0; i < n; ++i) dx[i] += dy[i] > 0.0f ? dy[i] : 0.0f;
      break;
    case BackwardRule::guided:  // Springenberg et al.: both conditions
      for (int64_t i = 0; i < n; ++i) dx[i] += (x[i] > 0.0f && dy[i] > 0.0f) ? dy[i] : 0.0f;
      break;
  }
}

}  // namespace deepinside::cpu
