// Fast cross-channel LRN: the reference's sums, vectorised along the spatial axis (contiguous in
// NCHW) and split across threads by (image, block of positions). scale^-beta is computed with two
// square roots for the common beta = 0.75 (AlexNet, Caffe, the paper's net), std::pow otherwise.
#include <algorithm>
#include <cmath>

#include "kernels/cpu_fast/ops.h"

namespace deepinside::cpu_fast {

namespace {

constexpr int64_t kBlock = 256;  // positions per task

inline float neg_pow(float s, float beta, bool three_quarters) {
  if (three_quarters) {
    const float r = std::sqrt(s);
    return 1.0f / (r * std::sqrt(r));
  }
  return std::pow(s, -beta);
}

}  // namespace

void lrn_forward(float* y, float* scale, const float* x, int N, int C, int64_t S, const LrnParams& p) {
  const int before = (p.size - 1) / 2, after = p.size / 2;
  const float alpha_over_n = p.alpha / float(p.size);
  const bool tq = p.beta == 0.75f;
  const int64_t blocks = (S + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (int64_t task = 0; task < int64_t(N) * blocks; ++task) {
    const int n = int(task / blocks);
    const int64_t s0 = (task % blocks) * kBlock, len = std::min(kBlock, S - s0);
    const float* xn = x + int64_t(n) * C * S + s0;
    for (int c = 0; c < C; ++c) {
      float sum[kBlock];
      for (int64_t s = 0; s < len; ++s) sum[s] = 0.0f;
      for (int j = std::max(0, c - before); j <= std::min(C - 1, c + after); ++j) {
        const float* xj = xn + int64_t(j) * S;
        for (int64_t s = 0; s < len; ++s) sum[s] += xj[s] * xj[s];
      }
      const int64_t off = (int64_t(n) * C + c) * S + s0;
      const float* xc = x + off;
      float* sc = scale + off;
      float* yc = y + off;
      for (int64_t s = 0; s < len; ++s) {
        sc[s] = p.bias + alpha_over_n * sum[s];
        yc[s] = xc[s] * neg_pow(sc[s], p.beta, tq);
      }
    }
  }
}

void lrn_backward_input(float* dx, const float* dy, const float* x, const float* y, const float* scale, int N,
                        int C, int64_t S, const LrnParams& p) {
  const int before = (p.size - 1) / 2, after = p.size / 2;
  const float k = 2.0f * p.alpha * p.beta / float(p.size);
  const bool tq = p.beta == 0.75f;
  const int64_t blocks = (S + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (int64_t task = 0; task < int64_t(N) * blocks; ++task) {
    const int n = int(task / blocks);
    const int64_t s0 = (task % blocks) * kBlock, len = std::min(kBlock, S - s0);
    const int64_t base = int64_t(n) * C * S + s0;
    for (int c = 0; c < C; ++c) {
      // Channel c lies in the window of channels j in [c - after, c + before].
      float sum[kBlock];
      for (int64_t s = 0; s < len; ++s) sum[s] = 0.0f;
      for (int j = std::max(0, c - after); j <= std::min(C - 1, c + before); ++j) {
        const int64_t o = base + int64_t(j) * S;
        for (int64_t s = 0; s < len; ++s) sum[s] += dy[o + s] * y[o + s] / scale[o + s];
      }
      const int64_t i = base + int64_t(c) * S;
      for (int64_t s = 0; s < len; ++s)
        dx[i + s] += dy[i + s] * neg_pow(scale[i + s], p.beta, tq) - k * x[i + s] * sum[s];
    }
  }
}

}  // namespace deepinside::cpu_fast
