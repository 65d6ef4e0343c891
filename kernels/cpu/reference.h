#pragma once
// The CPU reference: one plain function per op and direction, the specification every faster or
// GPU path is tested against. Outputs first, then inputs, then sizes. Every *_backward ADDS its
// contribution into dx (the caller zeroes it), so gradients of values with several consumers sum.
#include <cstdint>

#include "engine/backend.h"
#include "engine/op_params.h"

namespace deepinside::cpu {

// y (N,M,OH,OW) = conv(x (N,C,H,W), w (M,C/group,KH,KW)) + b (M) ; b may be nullptr.
void conv2d_forward(float* y, const float* x, const float* w, const float* b, const ConvGeometry& g);
// dx (N,C,H,W) += transposed conv of dy (N,M,OH,OW) with w: the input gradient.
void conv2d_backward_input(float* dx, const float* dy, const float* w, const ConvGeometry& g);

// y (N,C,OH,OW) = max over each window of x (N,C,H,W); switches (N,C,OH,OW) = h*W + w of the first
// maximum in scan order (row-major within the window), -1 when the window holds only padding.
void maxpool2d_forward(float* y, int32_t* switches, const float* x, const PoolGeometry& g);
// dx (N,C,H,W) += dy routed through the switches.
void maxpool2d_backward_input(float* dx, const float* dy, const int32_t* switches, const PoolGeometry& g);

// y = mean over each window; the divisor counts padding only when g.count_include_pad.
void avgpool2d_forward(float* y, const float* x, const PoolGeometry& g);
void avgpool2d_backward_input(float* dx, const float* dy, const PoolGeometry& g);

// y (N,C,1,1) = mean over H*W of x (N,C,H,W).
void global_avgpool_forward(float* y, const float* x, int64_t planes, int64_t plane_size);
void global_avgpool_backward_input(float* dx, const float* dy, int64_t planes, int64_t plane_size);

// Cross-channel LRN on x (N,C,S) (S = spatial size): scale = bias + alpha/size * sum of x^2 over
// channels [c - (size-1)/2, c + size/2]; y = x * scale^-beta.
void lrn_forward(float* y, float* scale, const float* x, int N, int C, int64_t S, const LrnParams& p);
void lrn_backward_input(float* dx, const float* dy, const float* x, const float* y, const float* scale,
                        int N, int C, int64_t S, const LrnParams& p);

// Y (M,N) = alpha * op(A) op(B) + beta * C, op = transpose when asked; C (broadcast to (M,N)) may be
// nullptr. A is (M,K) or (K,M), B is (K,N) or (N,K).
void gemm_forward(float* y, const float* a, const float* b, const float* c, const Shape& c_shape,
                  int M, int N, int K, const GemmParams& p);
// dA += alpha * dY op(B)^T (in A's layout); dB += alpha * op(A)^T dY (in B's layout). Either may be nullptr.
void gemm_backward_input(float* da, float* db, const float* dy, const float* a, const float* b,
                         int M, int N, int K, const GemmParams& p);

// Y (batch,M,N) = A (batch,M,K) B (batch or 1,K,N).
void matmul_forward(float* y, const float* a, const float* b, int batch, bool b_batched, int M, int N, int K);
void matmul_backward_input(float* da, float* db, const float* dy, const float* a, const float* b,
                           int batch, bool b_batched, int M, int N, int K);

// y = a (op) b with numpy broadcasting to y_shape, op in Add/Sub/Mul/Div.
void binary_forward(float* y, const float* a, const float* b, const Shape& a_shape, const Shape& b_shape,
                    const Shape& y_shape, OpKind op);
// da (a_shape) += reduce(dy * d op/da) over broadcast axes; likewise db. Either may be nullptr.
void binary_backward_input(float* da, float* db, const float* dy, const float* a, const float* b,
                           const Shape& a_shape, const Shape& b_shape, const Shape& y_shape, OpKind op);

// Unary elementwise op (Sigmoid .. Pow) of n elements, and its backward from x and y.
void unary_forward(float* y, const float* x, int64_t n, OpKind op, const UnaryParams& p);
void unary_backward_input(float* dx, const float* dy, const float* x, const float* y, int64_t n,
                          OpKind op, const UnaryParams& p);

// Relu and its three backward rules (DESIGN.md Sec. 3).
void relu_forward(float* y, const float* x, int64_t n);
void relu_backward_input(float* dx, const float* dy, const float* x, int64_t n, BackwardRule rule);

// Elementwise max of k equal-shaped inputs; backward routes to the first input holding the max.
void max_forward(float* y, const float* const* xs, int k, int64_t n);
void max_backward_input(float* const* dxs, const float* dy, const float* const* xs, int k, int64_t n);

// Softmax over a (outer, L, inner) view: y[o,:,i] = softmax(x[o,:,i]).
void softmax_forward(float* y, const float* x, int64_t outer, int64_t L, int64_t inner);
void softmax_backward_input(float* dx, const float* dy, const float* y, int64_t outer, int64_t L, int64_t inner);

// Inference batch norm on x (N,C,S): y = (x - mean) / sqrt(var + eps) * gamma + beta.
void batchnorm_forward(float* y, const float* x, const float* gamma, const float* beta, const float* mean,
                       const float* var, int N, int C, int64_t S, float eps);
void batchnorm_backward_input(float* dx, const float* dy, const float* gamma, const float* var,
                              int N, int C, int64_t S, float eps);

// Concat along an axis viewed as (outer, L_i, inner): y (outer, sum L_i, inner).
void concat_forward(float* y, const float* const* xs, const int64_t* lengths, int k, int64_t outer, int64_t inner);
void concat_backward_input(float* const* dxs, const float* dy, const int64_t* lengths, int k, int64_t outer,
                           int64_t inner);

}  // namespace deepinside::cpu
