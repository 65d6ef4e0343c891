#pragma once
// Pooling, the reference: max with switches, average with or without padding in the divisor,
// global average.
#include <algorithm>
#include <limits>

#include "engine/backend.h"
#include "engine/op_params.h"

namespace deepinside::cpu {

// y (N,C,OH,OW) = max over each window of x (N,C,H,W); switches (N,C,OH,OW) = h*W + w of the first
// maximum in scan order (row-major within the window), -1 when the window holds only padding.
template <class T>
void maxpool2d_forward(T* y, int32_t* switches, const T* x, const PoolGeometry& g) {
  for (int64_t plane = 0; plane < int64_t(g.N) * g.C; ++plane) {
    const T* xp = x + plane * g.H * g.W;
    for (int oy = 0; oy < g.OH; ++oy)
      for (int ox = 0; ox < g.OW; ++ox) {
        T best = -std::numeric_limits<T>::infinity();
        int32_t best_at = -1;
        for (int ky = 0; ky < g.KH; ++ky) {
          const int iy = oy * g.stride_h - g.pad_t + ky * g.dil_h;
          if (iy < 0 || iy >= g.H) continue;
          for (int kx = 0; kx < g.KW; ++kx) {
            const int ix = ox * g.stride_w - g.pad_l + kx * g.dil_w;
            if (ix < 0 || ix >= g.W) continue;
            const T v = xp[iy * g.W + ix];
            // Strictly greater: ties keep the first maximum in scan order (DESIGN.md Sec. 4).
            // A NaN wins and stays (nothing compares greater than it), so NaNs propagate as in
            // PyTorch instead of hiding behind a later finite maximum.
            if (v > best || best_at < 0 || (v != v && best == best)) {
              best = v;
              best_at = iy * g.W + ix;
            }
          }
        }
        const int64_t o = plane * g.OH * g.OW + oy * g.OW + ox;
        y[o] = best;
        switches[o] = best_at;
      }
  }
}

// dx (N,C,H,W) += dy routed through the switches.
template <class T>
void maxpool2d_backward_input(T* dx, const T* dy, const int32_t* switches, const PoolGeometry& g) {
  for (int64_t plane = 0; plane < int64_t(g.N) * g.C; ++plane) {
    T* dxp = dx + plane * g.H * g.W;
    const int64_t base = plane * g.OH * g.OW;
    for (int64_t o = 0; o < int64_t(g.OH) * g.OW; ++o)
      if (switches[base + o] >= 0) dxp[switches[base + o]] += dy[base + o];
  }
}

namespace detail {  // helpers of this header only

// The window of output (oy, ox) clipped to the input, and the divisor of its average.
struct AvgWindow {
  int y0, y1, x0, x1;  // half-open input ranges actually read (dilation 1)
  double divisor;
};

inline AvgWindow avg_window(const PoolGeometry& g, int oy, int ox) {
  const int ys = oy * g.stride_h - g.pad_t, xs = ox * g.stride_w - g.pad_l;
  // With padding counted, the window is clipped to the padded extent only.
  const int py0 = std::max(ys, -g.pad_t), py1 = std::min(ys + g.KH, g.H + g.pad_b);
  const int px0 = std::max(xs, -g.pad_l), px1 = std::min(xs + g.KW, g.W + g.pad_r);
  AvgWindow w{std::max(ys, 0), std::min(ys + g.KH, g.H), std::max(xs, 0), std::min(xs + g.KW, g.W), 0.0};
  const int count = g.count_include_pad ? (py1 - py0) * (px1 - px0) : (w.y1 - w.y0) * (w.x1 - w.x0);
  w.divisor = count > 0 ? double(count) : 1.0;
  return w;
}

}  // namespace detail

// y = mean over each window; the divisor counts padding only when g.count_include_pad.
template <class T>
void avgpool2d_forward(T* y, const T* x, const PoolGeometry& g) {
  for (int64_t plane = 0; plane < int64_t(g.N) * g.C; ++plane) {
    const T* xp = x + plane * g.H * g.W;
    for (int oy = 0; oy < g.OH; ++oy)
      for (int ox = 0; ox < g.OW; ++ox) {
        const detail::AvgWindow w = detail::avg_window(g, oy, ox);
        T sum = T(0.0);
        for (int iy = w.y0; iy < w.y1; ++iy)
          for (int ix = w.x0; ix < w.x1; ++ix) sum += xp[iy * g.W + ix];
        y[plane * g.OH * g.OW + oy * g.OW + ox] = T(sum / w.divisor);
      }
  }
}

template <class T>
void avgpool2d_backward_input(T* dx, const T* dy, const PoolGeometry& g) {
  for (int64_t plane = 0; plane < int64_t(g.N) * g.C; ++plane) {
    T* dxp = dx + plane * g.H * g.W;
    for (int oy = 0; oy < g.OH; ++oy)
      for (int ox = 0; ox < g.OW; ++ox) {
        const detail::AvgWindow w = detail::avg_window(g, oy, ox);
        const T d = T(dy[plane * g.OH * g.OW + oy * g.OW + ox] / w.divisor);
        for (int iy = w.y0; iy < w.y1; ++iy)
          for (int ix = w.x0; ix < w.x1; ++ix) dxp[iy * g.W + ix] += d;
      }
  }
}

// y (N,C,1,1) = mean over H*W of x (N,C,H,W).
template <class T>
void global_avgpool_forward(T* y, const T* x, int64_t planes, int64_t plane_size) {
  for (int64_t p = 0; p < planes; ++p) {
    double sum = 0.0;
    for (int64_t i = 0; i < plane_size; ++i) sum += x[p * plane_size + i];
    y[p] = T(sum / double(plane_size));
  }
}

template <class T>
void global_avgpool_backward_input(T* dx, const T* dy, int64_t planes, int64_t plane_size) {
  for (int64_t p = 0; p < planes; ++p) {
    const T d = dy[p] / T(plane_size);
    for (int64_t i = 0; i < plane_size; ++i) dx[p * plane_size + i] += d;
  }
}

}  // namespace deepinside::cpu
