#pragma once
// Convolution, the reference: direct loops over (n, m, oy, ox, c, ky, kx).
#include "engine/backend.h"
#include "engine/op_params.h"

namespace deepinside::cpu {

// y (N,M,OH,OW) = conv(x (N,C,H,W), w (M,C/group,KH,KW)) + b (M) ; b may be nullptr.
template <class T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const ConvGeometry& g) {
  const int c_per_group = g.C / g.group, m_per_group = g.M / g.group;
  for (int n = 0; n < g.N; ++n)
    for (int m = 0; m < g.M; ++m) {
      const int group = m / m_per_group;
      const T* wm = w + int64_t(m) * c_per_group * g.KH * g.KW;
      T* ym = y + (int64_t(n) * g.M + m) * g.OH * g.OW;
      for (int oy = 0; oy < g.OH; ++oy)
        for (int ox = 0; ox < g.OW; ++ox) {
          T sum = b ? b[m] : T(0.0);
          for (int c = 0; c < c_per_group; ++c) {
            const T* xc = x + (int64_t(n) * g.C + group * c_per_group + c) * g.H * g.W;
            const T* wc = wm + int64_t(c) * g.KH * g.KW;
            for (int ky = 0; ky < g.KH; ++ky) {
              const int iy = oy * g.stride_h - g.pad_t + ky * g.dil_h;
              if (iy < 0 || iy >= g.H) continue;
              for (int kx = 0; kx < g.KW; ++kx) {
                const int ix = ox * g.stride_w - g.pad_l + kx * g.dil_w;
                if (ix < 0 || ix >= g.W) continue;
                sum += xc[iy * g.W + ix] * wc[ky * g.KW + kx];
              }
            }
          }
          ym[oy * g.OW + ox] = sum;
        }
    }
}

// The input gradient is the transposed convolution: each output gradient is spread back over the
// inputs its window read, with the same weights (dx[c, iy, ix] += dy[m, oy, ox] * w[m, c, ky, kx]).
// dx (N,C,H,W) += transposed conv of dy (N,M,OH,OW) with w: the input gradient.
template <class T>
void conv2d_backward_input(T* dx, const T* dy, const T* w, const ConvGeometry& g) {
  const int c_per_group = g.C / g.group, m_per_group = g.M / g.group;
  for (int n = 0; n < g.N; ++n)
    for (int m = 0; m < g.M; ++m) {
      const int group = m / m_per_group;
      const T* wm = w + int64_t(m) * c_per_group * g.KH * g.KW;
      const T* dym = dy + (int64_t(n) * g.M + m) * g.OH * g.OW;
      for (int oy = 0; oy < g.OH; ++oy)
        for (int ox = 0; ox < g.OW; ++ox) {
          const T d = dym[oy * g.OW + ox];
          if (d == T(0.0)) continue;
          for (int c = 0; c < c_per_group; ++c) {
            T* dxc = dx + (int64_t(n) * g.C + group * c_per_group + c) * g.H * g.W;
            const T* wc = wm + int64_t(c) * g.KH * g.KW;
            for (int ky = 0; ky < g.KH; ++ky) {
              const int iy = oy * g.stride_h - g.pad_t + ky * g.dil_h;
              if (iy < 0 || iy >= g.H) continue;
              for (int kx = 0; kx < g.KW; ++kx) {
                const int ix = ox * g.stride_w - g.pad_l + kx * g.dil_w;
                if (ix < 0 || ix >= g.W) continue;
                dxc[iy * g.W + ix] += d * wc[ky * g.KW + kx];
              }
            }
          }
        }
    }
}

}  // namespace deepinside::cpu
