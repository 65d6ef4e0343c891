// Pooling: max with int32 switches, average (padding counted or not), global average. One thread
// per output element forward; backward is a gather, one thread per input element summing the
// outputs whose window covers it (deterministic, no atomics; darknet's habit). Derivation with ceil
// mode and pads: docs/derivations.md.
#include "kernels/cuda/ops.h"

namespace deepinside::DI_KERNEL_NS {

namespace {

constexpr int kThreads = 256;

// y (N,C,OH,OW), switches: the first maximum in scan order wins ties (strictly greater replaces);
// a NaN replaces a number and then stays, as in the CPU reference.
__global__ void maxpool_forward_kernel(float* y, int32_t* switches, const float* x, PoolGeometry g) {
  const int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t total = int64_t(g.N) * g.C * g.OH * g.OW;
  if (o >= total) return;
  const int ox = int(o % g.OW), oy = int(o / g.OW % g.OH);
  const int64_t plane = o / (int64_t(g.OH) * g.OW);
  const float* xp = x + plane * g.H * g.W;
  float best = -INFINITY;
  int32_t best_at = -1;
  for (int ky = 0; ky < g.KH; ++ky) {
    const int iy = oy * g.stride_h - g.pad_t + ky * g.dil_h;
    if (iy < 0 || iy >= g.H) continue;
    for (int kx = 0; kx < g.KW; ++kx) {
      const int ix = ox * g.stride_w - g.pad_l + kx * g.dil_w;
      if (ix < 0 || ix >= g.W) continue;
      const float v = xp[iy * g.W + ix];
      if (v > best || best_at < 0 || (v != v && best == best)) {
        best = v;
        best_at = iy * g.W + ix;
      }
    }
  }
  y[o] = best;
  switches[o] = best_at;
}

// Outputs oy whose window row ky reads input row iy: oy * stride = iy + pad - ky * dil. Returns -1
// where no integer oy in [0, O) exists.
__device__ __forceinline__ int window_origin(int i, int pad, int k, int dil, int stride, int out) {
  const int t = i + pad - k * dil;
  if (t < 0 || t % stride != 0) return -1;
  const int o = t / stride;
  return o < out ? o : -1;
}

// dx (N,C,H,W) += the dy of every output whose switch is this input. Outputs are visited in
// increasing (oy, ox), the order in which the CPU reference adds them.
__global__ void maxpool_backward_kernel(float* dx, const float* dy, const int32_t* switches, PoolGeometry g) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t total = int64_t(g.N) * g.C * g.H * g.W;
  if (i >= total) return;
  const int ix = int(i % g.W), iy = int(i / g.W % g.H);
  const int64_t plane = i / (int64_t(g.H) * g.W);
  const int32_t here = iy * g.W + ix;
  const int64_t base = plane * g.OH * g.OW;
  float sum = 0.0f;
  for (int ky = g.KH - 1; ky >= 0; --ky) {
    const int oy = window_origin(iy, g.pad_t, ky, g.dil_h, g.stride_h, g.OH);
    if (oy < 0) continue;
    for (int kx = g.KW - 1; kx >= 0; --kx) {
      const int ox = window_origin(ix, g.pad_l, kx, g.dil_w, g.stride_w, g.OW);
      if (ox < 0) continue;
      const int64_t o = base + int64_t(oy) * g.OW + ox;
      if (switches[o] == here) sum += dy[o];
    }
  }
  dx[i] += sum;
}

// The window of (oy, ox) clipped to the input, and its divisor (kernels/cpu/pool.h avg_window).
struct AvgWindow {
  int y0, y1, x0, x1;
  float divisor;
};
__device__ __forceinline__ AvgWindow avg_window(const PoolGeometry& g, int oy, int ox) {
  const int ys = oy * g.stride_h - g.pad_t, xs = ox * g.stride_w - g.pad_l;
  const int py0 = max(ys, -g.pad_t), py1 = min(ys + g.KH, g.H + g.pad_b);
  const int px0 = max(xs, -g.pad_l), px1 = min(xs + g.KW, g.W + g.pad_r);
  AvgWindow w{max(ys, 0), min(ys + g.KH, g.H), max(xs, 0), min(xs + g.KW, g.W), 1.0f};
  const int count = g.count_include_pad ? (py1 - py0) * (px1 - px0) : (w.y1 - w.y0) * (w.x1 - w.x0);
  w.divisor = count > 0 ? float(count) : 1.0f;
  return w;
}

__global__ void avgpool_forward_kernel(float* y, const float* x, PoolGeometry g) {
  const int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t total = int64_t(g.N) * g.C * g.OH * g.OW;
  if (o >= total) return;
  const int ox = int(o % g.OW), oy = int(o / g.OW % g.OH);
  const float* xp = x + o / (int64_t(g.OH) * g.OW) * g.H * g.W;
  const AvgWindow w = avg_window(g, oy, ox);
  float sum = 0.0f;
  for (int iy = w.y0; iy < w.y1; ++iy)
    for (int ix = w.x0; ix < w.x1; ++ix) sum += xp[iy * g.W + ix];
  y[o] = sum / w.divisor;
}

__global__ void avgpool_backward_kernel(float* dx, const float* dy, PoolGeometry g) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t total = int64_t(g.N) * g.C * g.H * g.W;
  if (i >= total) return;
  const int ix = int(i % g.W), iy = int(i / g.W % g.H);
  const int64_t base = i / (int64_t(g.H) * g.W) * g.OH * g.OW;
  float sum = 0.0f;
  for (int ky = g.KH - 1; ky >= 0; --ky) {  // dilation is 1 for average pooling (ONNX)
    const int oy = window_origin(iy, g.pad_t, ky, 1, g.stride_h, g.OH);
    if (oy < 0) continue;
    for (int kx = g.KW - 1; kx >= 0; --kx) {
      const int ox = window_origin(ix, g.pad_l, kx, 1, g.stride_w, g.OW);
      if (ox < 0) continue;
      sum += dy[base + int64_t(oy) * g.OW + ox] / avg_window(g, oy, ox).divisor;
    }
  }
  dx[i] += sum;
}

// One block per plane: a strided sum, then a warp-shuffle tree and one shared slot per warp.
__global__ void global_avgpool_forward_kernel(float* y, const float* x, int64_t plane_size) {
  DI_SHARED(float, warp_sums, [kThreads / 32]);
  const float* xp = x + int64_t(blockIdx.x) * plane_size;
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < plane_size; i += blockDim.x) sum += xp[i];
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_down_sync(0xffffffffu, sum, offset);
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32;
  if (lane == 0) warp_sums[warp] = sum;
  __syncthreads();
  if (warp == 0) {
    sum = lane < int(blockDim.x) / 32 ? warp_sums[lane] : 0.0f;
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_down_sync(0xffffffffu, sum, offset);
    if (lane == 0) y[blockIdx.x] = sum / float(plane_size);
  }
}

__global__ void global_avgpool_backward_kernel(float* dx, const float* dy, int64_t planes, int64_t plane_size) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= planes * plane_size) return;
  dx[i] += dy[i / plane_size] / float(plane_size);
}

}  // namespace

void maxpool2d_forward(float* y, int32_t* switches, const float* x, const PoolGeometry& g, Stream stream) {
  const int64_t total = int64_t(g.N) * g.C * g.OH * g.OW;
  if (total == 0) return;
  launch("maxpool2d_forward", maxpool_forward_kernel, dim3(blocks_for(total, kThreads)), dim3(kThreads), stream, y,
         switches, x, g);
}

void maxpool2d_backward_input(float* dx, const float* dy, const int32_t* switches, const PoolGeometry& g,
                              Stream stream) {
  const int64_t total = int64_t(g.N) * g.C * g.H * g.W;
  if (total == 0) return;
  launch("maxpool2d_backward_input", maxpool_backward_kernel, dim3(blocks_for(total, kThreads)), dim3(kThreads),
         stream, dx, dy, switches, g);
}

void avgpool2d_forward(float* y, const float* x, const PoolGeometry& g, Stream stream) {
  const int64_t total = int64_t(g.N) * g.C * g.OH * g.OW;
  if (total == 0) return;
  launch("avgpool2d_forward", avgpool_forward_kernel, dim3(blocks_for(total, kThreads)), dim3(kThreads), stream, y, x,
         g);
}

void avgpool2d_backward_input(float* dx, const float* dy, const PoolGeometry& g, Stream stream) {
  const int64_t total = int64_t(g.N) * g.C * g.H * g.W;
  if (total == 0) return;
  launch("avgpool2d_backward_input", avgpool_backward_kernel, dim3(blocks_for(total, kThreads)), dim3(kThreads),
         stream, dx, dy, g);
}

void global_avgpool_forward(float* y, const float* x, int64_t planes, int64_t plane_size, Stream stream) {
  if (planes == 0) return;
  launch("global_avgpool_forward", global_avgpool_forward_kernel, dim3(unsigned(planes)), dim3(kThreads), stream, y,
         x, plane_size);
}

void global_avgpool_backward_input(float* dx, const float* dy, int64_t planes, int64_t plane_size, Stream stream) {
  const int64_t total = planes * plane_size;
  if (total == 0) return;
  launch("global_avgpool_backward_input", global_avgpool_backward_kernel, dim3(blocks_for(total, kThreads)),
         dim3(kThreads), stream, dx, dy, planes, plane_size);
}

}  // namespace deepinside::DI_KERNEL_NS
