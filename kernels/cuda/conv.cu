// Convolution forward and backward-data as implicit GEMMs through the tiled kernel of
// tiled_gemm.cuh, one GEMM per group (blockIdx.z). Derivation of the backward pass (the transposed
// convolution): docs/derivations.md.
//   forward:       y[n, m, p]  = sum_{k=(c,ky,kx)} w[m, k] * x[n, c, p*stride - pad + k*dil]
//                  rows m (M/group), cols (n, oy, ox), depth C/group * KH * KW
//   backward-data: dx[n, c, q] += sum_{k=(m,ky,kx)} w[m, c, ky, kx] * dy[n, m, (q + pad - k*dil)/stride]
//                  rows c (C/group), cols (n, iy, ix), depth M/group * KH * KW; a term exists only
//                  where the division is exact and lands inside the output (a gather: no atomics).
// Strided backward-data is split by stride phase: the inputs with (iy + pad) % stride == ry receive
// only the taps ky == ry (mod stride), so each phase is its own GEMM over those pixels and taps and
// no zero term is multiplied (at stride 2 the unsplit GEMM would be 3/4 zeros).
#include "kernels/cuda/ops.h"
#include "kernels/cuda/tiled_gemm.cuh"

namespace deepinside::DI_KERNEL_NS {

namespace {

struct ConvForwardProblem {
  float* y;
  const float* x;
  const float* w;
  const float* b;  // may be nullptr
  ConvGeometry g;
  int rows, cols, depth;  // M/group, N*OH*OW, C/group*KH*KW

  __device__ float load_a(int group, int m, int k) const {
    return w[int64_t(group * rows + m) * depth + k];
  }
  __device__ float load_b(int group, int k, int col) const {
    const int taps = g.KH * g.KW, c = k / taps, ky = (k % taps) / g.KW, kx = k % g.KW;
    const int plane = g.OH * g.OW, n = col / plane, oy = (col % plane) / g.OW, ox = col % g.OW;
    const int iy = oy * g.stride_h - g.pad_t + ky * g.dil_h, ix = ox * g.stride_w - g.pad_l + kx * g.dil_w;
    if (iy < 0 || iy >= g.H || ix < 0 || ix >= g.W) return 0.0f;  // zero padding
    const int channel = group * (g.C / g.group) + c;
    return x[((int64_t(n) * g.C + channel) * g.H + iy) * g.W + ix];
  }
  __device__ void store(int group, int m, int col, float sum) const {
    const int channel = group * rows + m, plane = g.OH * g.OW, n = col / plane;
    y[(int64_t(n) * g.M + channel) * plane + col % plane] = sum + (b ? b[channel] : 0.0f);
  }
  // A 1x1, stride-1, unpadded convolution reads B = x itself: (C, pixels) rows, contiguous; four
  // consecutive pixels stay in one image when the plane size is a multiple of 4.
  __device__ bool vector_b() const {
    return g.KH == 1 && g.KW == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_t == 0 && g.pad_l == 0 &&
           g.OH == g.H && g.OW == g.W && (g.H * g.W) % 4 == 0 && aligned16(x);
  }
  __device__ float4 load_b4(int group, int c, int col) const {
    const int plane = g.H * g.W, n = col / plane, channel = group * (g.C / g.group) + c;
    return *reinterpret_cast<const float4*>(x + (int64_t(n) * g.C + channel) * plane + col % plane);
  }
};

struct ConvBackwardDataProblem : ScalarB {
  float* dx;
  const float* dy;
  const float* w;
  ConvGeometry g;
  int rows, cols, depth;  // C/group, N*H*W, M/group*KH*KW

  __device__ float load_a(int group, int c, int k) const {  // w[group*Mg + m, c, ky, kx], k = (m, ky, kx)
    const int taps = g.KH * g.KW, m = k / taps;
    return w[(int64_t(group * (g.M / g.group) + m) * rows + c) * taps + k % taps];
  }
  __device__ float load_b(int group, int k, int col) const {
    const int taps = g.KH * g.KW, m = k / taps, ky = (k % taps) / g.KW, kx = k % g.KW;
    const int plane = g.H * g.W, n = col / plane, iy = (col % plane) / g.W, ix = col % g.W;
    const int ty = iy + g.pad_t - ky * g.dil_h, tx = ix + g.pad_l - kx * g.dil_w;
    if (ty < 0 || tx < 0 || ty % g.stride_h != 0 || tx % g.stride_w != 0) return 0.0f;
    const int oy = ty / g.stride_h, ox = tx / g.stride_w;
    if (oy >= g.OH || ox >= g.OW) return 0.0f;
    const int channel = group * (g.M / g.group) + m;
    return dy[((int64_t(n) * g.M + channel) * g.OH + oy) * g.OW + ox];
  }
  __device__ void store(int group, int c, int col, float sum) const {
    const int channel = group * rows + c, plane = g.H * g.W, n = col / plane;
    dx[(int64_t(n) * g.C + channel) * plane + col % plane] += sum;
  }
};

// One stride phase (ry, rx) of the backward-data GEMM (dilation 1): pixels iy = iy0 + py * stride_h
// (py < HY), taps ky = ry + ty * stride_h (ty < TY); likewise along x. rows c, cols (n, py, px),
// depth (m, ty, tx).
struct ConvBackwardDataPhaseProblem : ScalarB {
  float* dx;
  const float* dy;
  const float* w;
  ConvGeometry g;
  int ry, rx, iy0, ix0, HY, WX, TY, TX;
  int rows, cols, depth;  // C/group, N*HY*WX, M/group*TY*TX

  __device__ float load_a(int group, int c, int k) const {
    const int taps = TY * TX, m = k / taps, ky = ry + (k % taps) / TX * g.stride_h, kx = rx + k % TX * g.stride_w;
    return w[((int64_t(group * (g.M / g.group) + m) * rows + c) * g.KH + ky) * g.KW + kx];
  }
  __device__ float load_b(int group, int k, int col) const {
    const int taps = TY * TX, m = k / taps, ky = ry + (k % taps) / TX * g.stride_h, kx = rx + k % TX * g.stride_w;
    const int plane = HY * WX, n = col / plane, iy = iy0 + (col % plane) / WX * g.stride_h,
              ix = ix0 + col % WX * g.stride_w;
    const int oy = (iy + g.pad_t - ky) / g.stride_h, ox = (ix + g.pad_l - kx) / g.stride_w;  // exact
    if (iy + g.pad_t - ky < 0 || ix + g.pad_l - kx < 0 || oy >= g.OH || ox >= g.OW) return 0.0f;
    const int channel = group * (g.M / g.group) + m;
    return dy[((int64_t(n) * g.M + channel) * g.OH + oy) * g.OW + ox];
  }
  __device__ void store(int group, int c, int col, float sum) const {
    const int plane = HY * WX, n = col / plane, iy = iy0 + (col % plane) / WX * g.stride_h,
              ix = ix0 + col % WX * g.stride_w;
    dx[((int64_t(n) * g.C + group * rows + c) * g.H + iy) * g.W + ix] += sum;
  }
};

// Pixels i in [0, size) with (i + pad) % stride == r: the first, and how many.
void phase_pixels(int r, int pad, int stride, int size, int& first, int& count) {
  first = ((r - pad) % stride + stride) % stride;
  count = first < size ? (size - first + stride - 1) / stride : 0;
}

}  // namespace

void conv2d_forward(float* y, const float* x, const float* w, const float* b, const ConvGeometry& g, Stream stream) {
  const ConvForwardProblem p{y, x, w, b, g, g.M / g.group, g.N * g.OH * g.OW, (g.C / g.group) * g.KH * g.KW};
  run_tiled_gemm("conv2d_forward", p, g.group, stream);
}

void conv2d_backward_input(float* dx, const float* dy, const float* w, const ConvGeometry& g, Stream stream) {
  if ((g.stride_h > 1 || g.stride_w > 1) && g.dil_h == 1 && g.dil_w == 1) {
    for (int ry = 0; ry < g.stride_h; ++ry)
      for (int rx = 0; rx < g.stride_w; ++rx) {
        ConvBackwardDataPhaseProblem p{};
        p.dx = dx;
        p.dy = dy;
        p.w = w;
        p.g = g;
        p.ry = ry;
        p.rx = rx;
        p.TY = ry < g.KH ? (g.KH - ry + g.stride_h - 1) / g.stride_h : 0;
        p.TX = rx < g.KW ? (g.KW - rx + g.stride_w - 1) / g.stride_w : 0;
        phase_pixels(ry, g.pad_t, g.stride_h, g.H, p.iy0, p.HY);
        phase_pixels(rx, g.pad_l, g.stride_w, g.W, p.ix0, p.WX);
        p.rows = g.C / g.group;
        p.cols = g.N * p.HY * p.WX;
        p.depth = (g.M / g.group) * p.TY * p.TX;
        // A phase without taps (stride > kernel) receives no gradient: nothing to add.
        if (p.depth > 0 && p.cols > 0) run_tiled_gemm("conv2d_backward_input (stride phase)", p, g.group, stream);
      }
    return;
  }
  const ConvBackwardDataProblem p{{}, dx, dy, w, g, g.C / g.group, g.N * g.H * g.W, (g.M / g.group) * g.KH * g.KW};
  run_tiled_gemm("conv2d_backward_input", p, g.group, stream);
}

}  // namespace deepinside::DI_KERNEL_NS
