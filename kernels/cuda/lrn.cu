// Local response normalisation across channels (ONNX LRN), one thread per element of x (N,C,S),
// threads of a warp on consecutive positions s (coalesced), each summing over its channel window.
// Derivation of the backward pass: docs/derivations.md#lrn.
#include "kernels/cuda/ops.h"

namespace deepinside::DI_KERNEL_NS {

namespace {

constexpr int kThreads = 256;

// scale = bias + alpha/size * sum_{j in [c - (size-1)/2, c + size/2]} x_j^2 ; y = x * scale^-beta
__global__ void lrn_forward_kernel(float* y, float* scale, const float* x, int C, int64_t S, int64_t total,
                                   LrnParams p) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const int64_t s = i % S, n = i / (S * C);
  const int c = int(i / S % C);
  const int before = (p.size - 1) / 2, after = p.size / 2;
  float sum = 0.0f;
  for (int j = max(0, c - before); j <= min(C - 1, c + after); ++j) {
    const float v = x[(n * C + j) * S + s];
    sum += v * v;
  }
  const float k = p.bias + p.alpha / float(p.size) * sum;
  scale[i] = k;
  y[i] = x[i] * powf(k, -p.beta);
}

// dx_i += dy_i scale_i^-beta - (2 alpha beta / size) x_i sum_{j : i in window(j)} dy_j y_j / scale_j
__global__ void lrn_backward_kernel(float* dx, const float* dy, const float* x, const float* y, const float* scale,
                                    int C, int64_t S, int64_t total, LrnParams p) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const int64_t s = i % S, n = i / (S * C);
  const int c = int(i / S % C);
  const int before = (p.size - 1) / 2, after = p.size / 2;
  float sum = 0.0f;
  for (int j = max(0, c - after); j <= min(C - 1, c + before); ++j) {
    const int64_t o = (n * C + j) * S + s;
    sum += dy[o] * y[o] / scale[o];
  }
  const float k = 2.0f * p.alpha * p.beta / float(p.size);
  dx[i] += dy[i] * powf(scale[i], -p.beta) - k * x[i] * sum;
}

}  // namespace

void lrn_forward(float* y, float* scale, const float* x, int N, int C, int64_t S, const LrnParams& p, Stream stream) {
  const int64_t total = int64_t(N) * C * S;
  if (total == 0) return;
  launch("lrn_forward", lrn_forward_kernel, dim3(blocks_for(total, kThreads)), dim3(kThreads), stream, y, scale, x, C,
         S, total, p);
}

void lrn_backward_input(float* dx, const float* dy, const float* x, const float* y, const float* scale, int N, int C,
                        int64_t S, const LrnParams& p, Stream stream) {
  const int64_t total = int64_t(N) * C * S;
  if (total == 0) return;
  launch("lrn_backward_input", lrn_backward_kernel, dim3(blocks_for(total, kThreads)), dim3(kThreads), stream, dx, dy,
         x, y, scale, C, S, total, p);
}

}  // namespace deepinside::DI_KERNEL_NS
