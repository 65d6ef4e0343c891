#pragma once
// The launchers of kernels/cuda, one per op and direction, in the CPU reference's argument order
// (outputs first, then inputs, then sizes; kernels/cpu/*.h). Every pointer is device memory; every
// launcher enqueues its kernels on `stream` and returns without waiting. Backward launchers ADD into
// their outputs (the Session zeroes gradients once per pass, so several consumers sum up).
#include <cstdint>

#include "engine/backend.h"
#include "engine/op_params.h"
#include "kernels/cuda/device_api.h"

namespace deepinside::DI_KERNEL_NS {

// ---- conv.cu: tiled implicit GEMM --------------------------------------------------------------
// y (N,M,OH,OW) = conv(x (N,C,H,W), w (M,C/group,KH,KW)) + b (M) (b may be nullptr).
void conv2d_forward(float* y, const float* x, const float* w, const float* b, const ConvGeometry& g, Stream stream);
// dx (N,C,H,W) += transposed convolution of dy (N,M,OH,OW) with w.
void conv2d_backward_input(float* dx, const float* dy, const float* w, const ConvGeometry& g, Stream stream);

// ---- gemm.cu: fully connected, tiled GEMM and batch-1 GEMV -------------------------------------
// Y (M,N) = alpha op(A) op(B) + beta C; A (M,K) or (K,M), B (K,N) or (N,K); C broadcast from
// (c_rows, c_cols) (a scalar, a row, a column or the full matrix), or nullptr.
void gemm_forward(float* y, const float* a, const float* b, const float* c, int c_rows, int c_cols, int M, int N,
                  int K, const GemmParams& p, Stream stream);
// dA += alpha dY op(B)^T (in A's layout); dB += alpha op(A)^T dY (in B's layout); either may be nullptr.
void gemm_backward_input(float* da, float* db, const float* dy, const float* a, const float* b, int M, int N, int K,
                         const GemmParams& p, Stream stream);
// Y (batch,M,N) = A (batch,M,K) B (batch or 1,K,N), and its input gradients.
void matmul_forward(float* y, const float* a, const float* b, int batch, bool b_batched, int M, int N, int K,
                    Stream stream);
void matmul_backward_input(float* da, float* db, const float* dy, const float* a, const float* b, int batch,
                           bool b_batched, int M, int N, int K, Stream stream);

// ---- pool.cu --------------------------------------------------------------------------------------
// Switches: h*W + w of the first maximum in scan order, -1 for an all-padding window; NaN propagates.
void maxpool2d_forward(float* y, int32_t* switches, const float* x, const PoolGeometry& g, Stream stream);
void maxpool2d_backward_input(float* dx, const float* dy, const int32_t* switches, const PoolGeometry& g,
                              Stream stream);
void avgpool2d_forward(float* y, const float* x, const PoolGeometry& g, Stream stream);
void avgpool2d_backward_input(float* dx, const float* dy, const PoolGeometry& g, Stream stream);
// y (planes) = mean of each plane of x (planes, plane_size).
void global_avgpool_forward(float* y, const float* x, int64_t planes, int64_t plane_size, Stream stream);
void global_avgpool_backward_input(float* dx, const float* dy, int64_t planes, int64_t plane_size, Stream stream);

// ---- lrn.cu: across channels of x (N,C,S) ----------------------------------------------------------
void lrn_forward(float* y, float* scale, const float* x, int N, int C, int64_t S, const LrnParams& p, Stream stream);
void lrn_backward_input(float* dx, const float* dy, const float* x, const float* y, const float* scale, int N, int C,
                        int64_t S, const LrnParams& p, Stream stream);

// ---- softmax.cu: over L of an (outer, L, inner) view ------------------------------------------------
void softmax_forward(float* y, const float* x, int64_t outer, int64_t L, int64_t inner, Stream stream);
void softmax_backward_input(float* dx, const float* dy, const float* y, int64_t outer, int64_t L, int64_t inner,
                            Stream stream);

// ---- elementwise.cu -------------------------------------------------------------------------------
void relu_forward(float* y, const float* x, int64_t n, Stream stream);
// The three rules of DESIGN.md Sec. 3: the only place where they differ.
void relu_backward_input(float* dx, const float* dy, const float* x, int64_t n, BackwardRule rule, Stream stream);
void unary_forward(float* y, const float* x, int64_t n, OpKind op, const UnaryParams& p, Stream stream);
void unary_backward_input(float* dx, const float* dy, const float* x, const float* y, int64_t n, OpKind op,
                          const UnaryParams& p, Stream stream);
// dx += dy (the backward of Flatten, Reshape, Dropout, Identity, Sum).
void add_into(float* dx, const float* dy, int64_t n, Stream stream);
// y = a (op) b with numpy broadcasting (ranks up to kMaxRank), op in Add/Sub/Mul/Div; and backward.
constexpr int kMaxRank = 6;
void binary_forward(float* y, const float* a, const float* b, const Shape& a_shape, const Shape& b_shape,
                    const Shape& y_shape, OpKind op, Stream stream);
void binary_backward_input(float* da, float* db, const float* dy, const float* a, const float* b,
                           const Shape& a_shape, const Shape& b_shape, const Shape& y_shape, OpKind op, Stream stream);
// Elementwise Max / Sum of k equal-shaped inputs (k <= kMaxInputs); Max's backward routes to the
// first input holding the maximum (a NaN wins), like max-pool.
constexpr int kMaxInputs = 8;
void max_forward(float* y, const float* const* xs, int k, int64_t n, Stream stream);
void max_backward_input(float* const* dxs, const float* dy, const float* const* xs, int k, int64_t n, Stream stream);
void sum_forward(float* y, const float* const* xs, int k, int64_t n, Stream stream);
// Concat along an axis viewed as (outer, L_t, inner): input t goes at channel offset `offset`.
void concat_copy_in(float* y, const float* x, int64_t outer, int64_t length, int64_t offset, int64_t total,
                    int64_t inner, Stream stream);
void concat_backward_slice(float* dx, const float* dy, int64_t outer, int64_t length, int64_t offset, int64_t total,
                           int64_t inner, Stream stream);
// Inference batch norm on x (N,C,S).
void batchnorm_forward(float* y, const float* x, const float* gamma, const float* beta, const float* mean,
                       const float* var, int N, int C, int64_t S, float eps, Stream stream);
void batchnorm_backward_input(float* dx, const float* dy, const float* gamma, const float* var, int N, int C,
                              int64_t S, float eps, Stream stream);

}  // namespace deepinside::DI_KERNEL_NS
