// Fast Concat along an axis viewed as (outer, L_i, inner): the reference's copies, split across
// threads by (outer index, input) blocks. Takes the inputs as the backend receives them, so a pass
// allocates nothing.
#include <cstring>

#include "kernels/cpu_fast/ops.h"

namespace deepinside::cpu_fast {

void concat_forward(float* y, std::span<const Tensor* const> xs, int axis, int64_t outer, int64_t inner) {
  int64_t total = 0;
  for (const Tensor* t : xs) total += t->dim(axis);
  const int k = int(xs.size());
#pragma omp parallel for schedule(static) collapse(2)
  for (int64_t o = 0; o < outer; ++o)
    for (int t = 0; t < k; ++t) {
      int64_t offset = 0;
      for (int u = 0; u < t; ++u) offset += xs[u]->dim(axis) * inner;
      const int64_t chunk = xs[t]->dim(axis) * inner;
      std::memcpy(y + o * total * inner + offset, xs[t]->data() + o * chunk, sizeof(float) * chunk);
    }
}

void concat_backward_input(std::span<Tensor* const> dxs, std::span<const Tensor* const> xs, const float* dy, int axis,
                           int64_t outer, int64_t inner) {
  int64_t total = 0;
  for (const Tensor* t : xs) total += t->dim(axis);
  const int k = int(xs.size());
#pragma omp parallel for schedule(static) collapse(2)
  for (int64_t o = 0; o < outer; ++o)
    for (int t = 0; t < k; ++t) {
      if (!dxs[t]) continue;
      int64_t offset = 0;
      for (int u = 0; u < t; ++u) offset += xs[u]->dim(axis) * inner;
      const int64_t chunk = xs[t]->dim(axis) * inner;
      float* d = dxs[t]->data() + o * chunk;
      const float* s = dy + o * total * inner + offset;
#pragma omp simd
      for (int64_t i = 0; i < chunk; ++i) d[i] += s[i];
    }
}

}  // namespace deepinside::cpu_fast
