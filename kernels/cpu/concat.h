#pragma once
// Concat along one axis of an (outer, L, inner) view, the reference; backward slices.
#include "engine/backend.h"
#include "engine/op_params.h"

namespace deepinside::cpu {

// Concat along an axis viewed as (outer, L_i, inner): y (outer, sum L_i, inner).
template <class T>
void concat_forward(T* y, const T* const* xs, const int64_t* lengths, int k, int64_t outer,
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

template <class T>
void concat_backward_input(T* const* dxs, const T* dy, const int64_t* lengths, int k, int64_t outer,
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
