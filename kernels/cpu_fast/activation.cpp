// Fast rectifier and gradient sums: the reference's element-wise loops, vectorised and threaded.
// The three backward rules are exactly those of kernels/cpu/activation.h (DESIGN.md Sec. 3).
#include "kernels/cpu_fast/ops.h"
#include "kernels/cpu_fast/rectifier.h"

namespace deepinside::cpu_fast {

namespace {
constexpr int64_t kParallelMin = 1 << 15;  // below this, one thread is faster than a fork
}

void relu_forward(float* y, const float* x, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

namespace {

// dx (+)= the rule's rectified dy, one vectorised loop per rule.
template <bool Accumulate>
void relu_backward(float* dx, const float* dy, const float* x, int64_t n, BackwardRule rule) {
  with_rule(rule, [&](auto r) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) {
      const float v = rectified_gradient<decltype(r)::value>(dy[i], x[i]);
      if constexpr (Accumulate)
        dx[i] += v;
      else
        dx[i] = v;
    }
  });
}

}  // namespace

void relu_backward_input(float* dx, const float* dy, const float* x, int64_t n, BackwardRule rule) {
  relu_backward<true>(dx, dy, x, n, rule);
}

void relu_backward_write(float* dx, const float* dy, const float* x, int64_t n, BackwardRule rule) {
  relu_backward<false>(dx, dy, x, n, rule);
}

void add_into(float* dx, const float* dy, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) dx[i] += dy[i];
}

}  // namespace deepinside::cpu_fast
