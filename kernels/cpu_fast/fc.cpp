// Fast fully-connected layers (ONNX Gemm as conv nets use it: Y = alpha * A op(B) + beta * c, A the
// activations (M,K), B the constant weights, c a bias row).
//  - Batch 1 is a GEMV and memory-bound: each weight is read once per pass, by all cores, with no
//    packing. Backward reads only the weight rows whose output gradient is non-zero; behind a
//    rectifier that is about half of them.
//  - Batch > 1 is computed transposed, Y^T (N x M) = op(B)^T A^T, so that the big weight matrix is
//    the GEMM's A operand (packed block by block, read once) and the activations the small packed B
//    panels; Y^T is then written back into Y with alpha and the bias in one pass.
#include <algorithm>

#include <omp.h>

#include "kernels/cpu_fast/gemm.h"
#include "kernels/cpu_fast/ops.h"

namespace deepinside::cpu_fast {

namespace {

std::pair<int, int> split(int n, int parts, int i) {
  const int base = n / parts, extra = n % parts;
  const int begin = i * base + std::min(i, extra);
  return {begin, begin + base + (i < extra ? 1 : 0)};
}

// C' (rows x cols) = A' * B'^T-view, where B' is given as b (element (k, j) at b[k*b_rs + j*b_cs],
// K' x cols) and packed here; every thread packs its panels, then computes its part.
void gemm_packing_b(const GemmArgs& proto, const float* b, int64_t b_rs, int64_t b_cs, float* packed,
                    float* apack) {
  GemmArgs ga = proto;
  ga.b_packed = packed;
  ga.panel_stride = int64_t(ga.K) * kNr;
  const int panels = int(panels_for(ga.N));
#pragma omp parallel
  {
    const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
    const auto [q0, q1] = split(panels, nt, tid);
    pack_b(packed, ga.panel_stride, b, b_rs, b_cs, ga.K, ga.N, q0, q1);
#pragma omp barrier
    const GemmPart part = gemm_partition(ga, tid, nt);
    gemm_range(ga, part.m0, part.m1, part.p0, part.p1, apack + int64_t(tid) * kApackFloats);
  }
}

}  // namespace

bool fc_supported(const GemmParams& p, const Shape& a, const Shape& b, const Shape* c) {
  if (p.trans_a || a.size() != 2 || b.size() != 2) return false;
  if (!c) return true;
  const int64_t n = p.trans_b ? b[0] : b[1];
  const int64_t numel = shape_numel(*c);
  if (numel == 1) return true;
  return numel == n && (c->size() == 1 || (c->size() == 2 && (*c)[0] == 1));
}

int64_t fc_workspace_floats(int M, int N, int K) {
  if (M == 1) return 0;
  const int64_t big = std::max(N, K);
  return int64_t(thread_count()) * kApackFloats + panels_for(M) * big * kNr + big * M;
}

void fc_forward(float* y, const float* a, const float* b, const float* c, const Shape& c_shape, int M, int N,
                int K, const GemmParams& p, float* ws) {
  const bool scalar_c = c && shape_numel(c_shape) == 1;
  if (M == 1) {
    if (p.trans_b) {  // B (N,K): y = alpha * B a
      gemv_rows(y, b, a, N, K, p.alpha, false);
    } else {  // B (K,N): y = alpha * B^T a, skipping the zeros of a
      std::fill(y, y + N, 0.0f);
      gemv_transposed_add(y, b, a, K, N, p.alpha);
    }
    if (c)
      for (int j = 0; j < N; ++j) y[j] += p.beta * c[scalar_c ? 0 : j];
    return;
  }
  const int threads = thread_count();
  float* apack = ws;
  float* packed = apack + int64_t(threads) * kApackFloats;
  float* yt = packed + panels_for(M) * K * kNr;  // Y^T (N x M)
  GemmArgs ga;  // Y^T (N x M) = op(B)^T (N x K) * A^T (K x M)
  ga.M = N;
  ga.N = M;
  ga.K = K;
  ga.a = b;
  ga.a_rs = p.trans_b ? K : 1;
  ga.a_cs = p.trans_b ? 1 : N;
  ga.c = yt;
  ga.ldc = M;
  gemm_packing_b(ga, a, 1, K, packed, apack);
#pragma omp parallel for schedule(static)
  for (int m = 0; m < M; ++m)
    for (int j = 0; j < N; ++j)
      y[int64_t(m) * N + j] = p.alpha * yt[int64_t(j) * M + m] + (c ? p.beta * c[scalar_c ? 0 : j] : 0.0f);
}

void fc_backward_input(float* da, const float* dy, const float* b, int M, int N, int K, const GemmParams& p,
                       float* ws) {
  if (M == 1) {
    if (p.trans_b)  // B (N,K): da += alpha * B^T dy, reading only rows with dy != 0
      gemv_transposed_add(da, b, dy, N, K, p.alpha);
    else  // B (K,N): da += alpha * B dy
      gemv_rows(da, b, dy, K, N, p.alpha, true);
    return;
  }
  const int threads = thread_count();
  float* apack = ws;
  float* packed = apack + int64_t(threads) * kApackFloats;
  float* dat = packed + panels_for(M) * N * kNr;  // dA^T (K x M)
  GemmArgs ga;  // dA^T (K x M) = op(B) (K x N) * dY^T (N x M)
  ga.M = K;
  ga.N = M;
  ga.K = N;
  ga.a = b;
  ga.a_rs = p.trans_b ? 1 : N;
  ga.a_cs = p.trans_b ? K : 1;
  ga.c = dat;
  ga.ldc = M;
  gemm_packing_b(ga, dy, 1, N, packed, apack);
#pragma omp parallel for schedule(static)
  for (int m = 0; m < M; ++m)
    for (int k = 0; k < K; ++k) da[int64_t(m) * K + k] += p.alpha * dat[int64_t(k) * M + m];
}

}  // namespace deepinside::cpu_fast
