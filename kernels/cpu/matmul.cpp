// Gemm and MatMul, the reference: triple loops, accumulation in float.
#include "engine/shape_inference.h"
#include "kernels/cpu/reference.h"

namespace deepinside::cpu {

namespace {
// Element (i, j) of op(A) where op(A) is (rows, cols) and A is stored (rows, cols) or transposed.
inline float at(const float* a, bool trans, int rows, int cols, int i, int j) {
  return trans ? a[int64_t(j) * rows + i] : a[int64_t(i) * cols + j];
}
}  // namespace

void gemm_forward(float* y, const float* a, const float* b, const float* c, const Shape& c_shape,
                  int M, int N, int K, const GemmParams& p) {
  // C broadcasts to (M,N): a scalar, a row (N), a column (M,1) or the full matrix.
  const int64_t c_rows = c_shape.size() == 2 ? c_shape[0] : 1;
  const int64_t c_cols = c_shape.empty() ? 1 : c_shape.back();
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      float sum = 0.0f;
      for (int k = 0; k < K; ++k) sum += at(a, p.trans_a, M, K, i, k) * at(b, p.trans_b, K, N, k, j);
      float bias = 0.0f;
      if (c) bias = c[(c_rows == 1 ? 0 : i) * c_cols + (c_cols == 1 ? 0 : j)];
      y[int64_t(i) * N + j] = p.alpha * sum + p.beta * bias;
    }
}

void gemm_backward_input(float* da, float* db, const float* dy, const float* a, const float* b,
                         int M, int N, int K, const GemmParams& p) {
  if (da)  // d op(A)[i,k] = alpha * sum_j dY[i,j] op(B)[k,j], stored back in A's layout
    for (int i = 0; i < M; ++i)
      for (int k = 0; k < K; ++k) {
        float sum = 0.0f;
        for (int j = 0; j < N; ++j) sum += dy[int64_t(i) * N + j] * at(b, p.trans_b, K, N, k, j);
        (p.trans_a ? da[int64_t(k) * M + i] : da[int64_t(i) * K + k]) += p.alpha * sum;
      }
  if (db)  // d op(B)[k,j] = alpha * sum_i op(A)[i,k] dY[i,j]
    for (int k = 0; k < K; ++k)
      for (int j = 0; j < N; ++j) {
        float sum = 0.0f;
        for (int i = 0; i < M; ++i) sum += at(a, p.trans_a, M, K, i, k) * dy[int64_t(i) * N + j];
        (p.trans_b ? db[int64_t(j) * K + k] : db[int64_t(k) * N + j]) += p.alpha * sum;
      }
}

void matmul_forward(float* y, const float* a, const float* b, int batch, bool b_batched, int M, int N, int K) {
  const GemmParams plain;
  for (int t = 0; t < batch; ++t) {
    const float* bt = b + (b_batched ? int64_t(t) * K * N : 0);
    gemm_forward(y + int64_t(t) * M * N, a + int64_t(t) * M * K, bt, nullptr, {}, M, N, K, plain);
  }
}

void matmul_backward_input(float* da, float* db, const float* dy, const float* a, const float* b,
                           int batch, bool b_batched, int M, int N, int K) {
  const GemmParams plain;
  for (int t = 0; t < batch; ++t) {
    const int64_t b_off = b_batched ? int64_t(t) * K * N : 0;
    gemm_backward_input(da ? da + int64_t(t) * M * K : nullptr, db ? db + b_off : nullptr,
                        dy + int64_t(t) * M * N, a + int64_t(t) * M * K, b + b_off, M, N, K, plain);
  }
}

}  // namespace deepinside::cpu
