#pragma once
// Gemm and MatMul, the reference: triple loops, accumulation in T.
#include "engine/backend.h"
#include "engine/op_params.h"

namespace deepinside::cpu {

namespace detail {  // helpers of this header only
// Element (i, j) of op(A) where op(A) is (rows, cols) and A is stored (rows, cols) or transposed.
template <class T>
inline T at(const T* a, bool trans, int rows, int cols, int i, int j) {
  return trans ? a[int64_t(j) * rows + i] : a[int64_t(i) * cols + j];
}
}  // namespace detail

// Y (M,N) = alpha * op(A) op(B) + beta * C, op = transpose when asked; C (broadcast to (M,N)) may be
// nullptr. A is (M,K) or (K,M), B is (K,N) or (N,K).
template <class T>
void gemm_forward(T* y, const T* a, const T* b, const T* c, const Shape& c_shape,
                  int M, int N, int K, const GemmParams& p) {
  // C broadcasts to (M,N): a scalar, a row (N), a column (M,1) or the full matrix.
  const int64_t c_rows = c_shape.size() == 2 ? c_shape[0] : 1;
  const int64_t c_cols = c_shape.empty() ? 1 : c_shape.back();
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      T sum = T(0.0);
      for (int k = 0; k < K; ++k) sum += detail::at(a, p.trans_a, M, K, i, k) * detail::at(b, p.trans_b, K, N, k, j);
      T bias = T(0.0);
      if (c) bias = c[(c_rows == 1 ? 0 : i) * c_cols + (c_cols == 1 ? 0 : j)];
      y[int64_t(i) * N + j] = T(p.alpha) * sum + T(p.beta) * bias;
    }
}

// dA += alpha * dY op(B)^T (in A's layout); dB += alpha * op(A)^T dY (in B's layout). Either may be nullptr.
template <class T>
void gemm_backward_input(T* da, T* db, const T* dy, const T* a, const T* b,
                         int M, int N, int K, const GemmParams& p) {
  if (da)  // d op(A)[i,k] = alpha * sum_j dY[i,j] op(B)[k,j], stored back in A's layout
    for (int i = 0; i < M; ++i)
      for (int k = 0; k < K; ++k) {
        T sum = T(0.0);
        for (int j = 0; j < N; ++j) sum += dy[int64_t(i) * N + j] * detail::at(b, p.trans_b, K, N, k, j);
        (p.trans_a ? da[int64_t(k) * M + i] : da[int64_t(i) * K + k]) += T(p.alpha) * sum;
      }
  if (db)  // d op(B)[k,j] = alpha * sum_i op(A)[i,k] dY[i,j]
    for (int k = 0; k < K; ++k)
      for (int j = 0; j < N; ++j) {
        T sum = T(0.0);
        for (int i = 0; i < M; ++i) sum += detail::at(a, p.trans_a, M, K, i, k) * dy[int64_t(i) * N + j];
        (p.trans_b ? db[int64_t(j) * K + k] : db[int64_t(k) * N + j]) += T(p.alpha) * sum;
      }
}

// Y (batch,M,N) = A (batch,M,K) B (batch or 1,K,N).
template <class T>
void matmul_forward(T* y, const T* a, const T* b, int batch, bool b_batched, int M, int N, int K) {
  const GemmParams plain;
  for (int t = 0; t < batch; ++t) {
    const T* bt = b + (b_batched ? int64_t(t) * K * N : 0);
    gemm_forward(y + int64_t(t) * M * N, a + int64_t(t) * M * K, bt, static_cast<const T*>(nullptr), {}, M, N, K, plain);
  }
}

template <class T>
void matmul_backward_input(T* da, T* db, const T* dy, const T* a, const T* b,
                           int batch, bool b_batched, int M, int N, int K) {
  const GemmParams plain;
  for (int t = 0; t < batch; ++t) {
    const int64_t b_off = b_batched ? int64_t(t) * K * N : 0;
    gemm_backward_input(da ? da + int64_t(t) * M * K : nullptr, db ? db + b_off : nullptr,
                        dy + int64_t(t) * M * N, a + int64_t(t) * M * K, b + b_off, M, N, K, plain);
  }
}

}  // namespace deepinside::cpu
