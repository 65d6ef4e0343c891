// Fast rectifier and gradient sums: the reference's element-wise loops, vectorised and threaded.
// The three backward rules are exactly those of kernels/cpu/activation.h (DESIGN.md Sec. 3).
#include "kernels/cpu_fast/ops.h"

namespace deepinside::cpu_fast {

namespace {
constexpr int64_t kParallelMin = 1 << 15;  // below this, one thread is faster than a fork
}

void relu_forward(float* y, const float* x, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void relu_backward_input(float* dx, const float* dy, const float* x, int64_t n, BackwardRule rule) {
  switch (rule) {
    case BackwardRule::gradient:
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
      for (int64_t i = 0; i < n; ++i) dx[i] += x[i] > 0.0f ? dy[i] : 0.0f;
      break;
    case BackwardRule::deconvnet:
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
      for (int64_t i = 0; i < n; ++i) dx[i] += dy[i] > 0.0f ? dy[i] : 0.0f;
      break;
    case BackwardRule::guided:
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
      for (int64_t i = 0; i < n; ++i) dx[i] += (x[i] > 0.0f && dy[i] > 0.0f) ? dy[i] : 0.0f;
      break;
  }
}

void add_into(float* dx, const float* dy, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) dx[i] += dy[i];
}

}  // namespace deepinside::cpu_fast
