// Softmax over L of an (outer, L, inner) view: one block per (o, i) line, its threads striding over
// L, reductions (max, then the sum of exponentials; dy.y for backward) by warp shuffles and one
// shared slot per warp.
#include "kernels/cuda/ops.h"

namespace deepinside::DI_KERNEL_NS {

namespace {

constexpr int kThreads = 256, kWarps = kThreads / 32;

enum class Reduce { sum, max };

// Every thread returns the block-wide reduction of v. Called by all threads of the block.
template <Reduce kind>
__device__ float block_reduce(float v, float* warp_slots) {
  for (int offset = 16; offset > 0; offset /= 2) {
    const float other = __shfl_xor_sync(0xffffffffu, v, offset);
    v = kind == Reduce::sum ? v + other : fmaxf(v, other);
  }
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32;
  __syncthreads();  // warp_slots may still be read by an earlier reduction
  if (lane == 0) warp_slots[warp] = v;
  __syncthreads();
  v = warp_slots[0];
  for (int w = 1; w < kWarps; ++w) v = kind == Reduce::sum ? v + warp_slots[w] : fmaxf(v, warp_slots[w]);
  return v;
}

__global__ void __launch_bounds__(kThreads) softmax_forward_kernel(float* y, const float* x, int64_t L, int64_t inner) {
  DI_SHARED(float, warp_slots, [kWarps]);
  const int64_t line = blockIdx.x, o = line / inner, i = line % inner;
  const float* xs = x + o * L * inner + i;
  float* ys = y + o * L * inner + i;
  float peak = -INFINITY;
  for (int64_t l = threadIdx.x; l < L; l += kThreads) peak = fmaxf(peak, xs[l * inner]);
  peak = block_reduce<Reduce::max>(peak, warp_slots);
  float total = 0.0f;
  for (int64_t l = threadIdx.x; l < L; l += kThreads) total += expf(xs[l * inner] - peak);
  total = block_reduce<Reduce::sum>(total, warp_slots);
  for (int64_t l = threadIdx.x; l < L; l += kThreads) ys[l * inner] = expf(xs[l * inner] - peak) / total;
}

// dx_l += y_l (dy_l - sum_k dy_k y_k)
__global__ void __launch_bounds__(kThreads) softmax_backward_kernel(float* dx, const float* dy, const float* y,
                                                                    int64_t L, int64_t inner) {
  DI_SHARED(float, warp_slots, [kWarps]);
  const int64_t line = blockIdx.x, base = line / inner * L * inner + line % inner;
  float dot = 0.0f;
  for (int64_t l = threadIdx.x; l < L; l += kThreads) dot += dy[base + l * inner] * y[base + l * inner];
  dot = block_reduce<Reduce::sum>(dot, warp_slots);
  for (int64_t l = threadIdx.x; l < L; l += kThreads) {
    const int64_t e = base + l * inner;
    dx[e] += y[e] * (dy[e] - dot);
  }
}

}  // namespace

void softmax_forward(float* y, const float* x, int64_t outer, int64_t L, int64_t inner, Stream stream) {
  if (outer * L * inner == 0) return;
  launch("softmax_forward", softmax_forward_kernel, dim3(unsigned(outer * inner)), dim3(kThreads), stream, y, x, L,
         inner);
}

void softmax_backward_input(float* dx, const float* dy, const float* y, int64_t outer, int64_t L, int64_t inner,
                            Stream stream) {
  if (outer * L * inner == 0) return;
  launch("softmax_backward_input", softmax_backward_kernel, dim3(unsigned(outer * inner)), dim3(kThreads), stream,
         dx, dy, y, L, inner);
}

}  // namespace deepinside::DI_KERNEL_NS
