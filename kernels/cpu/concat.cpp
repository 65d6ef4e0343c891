// Concat along one axis of an (outer, L, inner) view, the reference; backward slices.
#include "kernels/cpu/reference.h"

namespace deepinside::cpu {

void concat_forward(float* y, const float* const* xs, const int64_t* lengths, int k, int64_t outer,
                    int64_t inner) {
  int64_t total = 0;
  for (int t = 0; t < k; ++t) total += lengths[t];
  int64_t offset = 0;
  for (int t = 0; t < k; ++t) {
    const int64_t chunk = lengths[t] * inner;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < chunk; ++i) y[o * total * inner + offset + i] = xs[t][o * chunk + i];
    offset += chunk;
  }
}

void concat_backward_input(float* const* dxs, const float* dy, const int64_t* lengths, int k, int64_t outer,
                           int64_t inner) {
  int64_t total = 0;
  for (int t = 0; t < k; ++t) total += lengths[t];
  int64_t offset = 0;
  for (int t = 0; t < k; ++t) {
    const int64_t chunk = lengths[t] * inner;
    if (dxs[t])
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < chunk; ++i) dxs[t][o * chunk + i] += dy[o * total * inner + offset + i];
    offset += chunk;
  }
}

}  // namespace deepinside::cpu
