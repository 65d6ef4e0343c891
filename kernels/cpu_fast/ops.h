#pragma once
// The fast CPU kernels, one file per op (conv.cpp + winograd.cpp, fc.cpp, pool.cpp, lrn.cpp, concat.cpp,
// activation.cpp; gemm.h for the matrix products), each
// the same function as its reference in kernels/cpu/<op>.h (same arguments, outputs first, and the
// same accumulate-into-dx contract for backward) plus a workspace planned by the backend.
// Every function here is checked against the reference by tests/test_parity.cpp.
#include <cstdint>
#include <span>

#include "engine/backend.h"
#include "engine/op_params.h"

namespace deepinside::cpu_fast {

// Threads the kernels use: OpenMP's default (the machine's cores, or OMP_NUM_THREADS).
int thread_count();

// ---- convolution (conv.cpp): im2col written straight into packed GEMM panels + blocked SGEMM ----
// Floats of packed operand per pixel (or Winograd tile) chunk: ~8 MB, so a chunk stays in the
// last-level cache. Tests set it small to run the chunk loops; plan again after changing it.
int64_t conv_chunk_floats();
void set_conv_chunk_floats(int64_t floats);
// Floats of workspace conv2d_forward / conv2d_backward_input need for this geometry.
int64_t conv_workspace_floats(const ConvGeometry& g);
// y (N,M,OH,OW) = conv(x (N,C,H,W), w (M,C/group,KH,KW)) + b (M, may be nullptr), rectified in the
// store (max(0, .)) when fused_relu. winograd_u: w's Winograd transform made at plan time
// (winograd.h), or nullptr; read only where winograd_applies(g).
void conv2d_forward(float* y, const float* x, const float* w, const float* b, const ConvGeometry& g, float* ws,
                    const float* winograd_u = nullptr, bool fused_relu = false);
// A Relu fused into the convolution (NodeSaved::relu_fused): dy is d(loss)/d(Relu output) and is
// rectified by the rule against the Relu's output y (N,M,OH,OW) before the transposed convolution.
// The im2col and 1x1 paths (padded or not) do it while packing dy; Winograd first writes it into
// scratch (N*M*OH*OW floats, beside the convolution's own workspace).
struct FusedRelu {
  const float* y;
  BackwardRule rule;
  float* scratch;
};
// dx (N,C,H,W) += transposed convolution of dy (N,M,OH,OW) with w (of the rectified dy with relu).
void conv2d_backward_input(float* dx, const float* dy, const float* w, const ConvGeometry& g, float* ws,
                           const float* winograd_u = nullptr, const FusedRelu* relu = nullptr);

// ---- fully connected (fc.cpp): Gemm nodes Y = alpha * A op(B) + beta * c ----------------------
// Handles what conv nets use: A (M,K) not transposed, B (K,N) or transposed (N,K) constant, c absent
// or a row of N (or a scalar). fc_supported says whether a node fits; others run the reference.
bool fc_supported(const GemmParams& p, const Shape& a, const Shape& b, const Shape* c);
int64_t fc_workspace_floats(int M, int N, int K);
// y (M,N); M == 1 is a GEMV (memory-bound: one pass over the weights).
void fc_forward(float* y, const float* a, const float* b, const float* c, const Shape& c_shape, int M, int N,
                int K, const GemmParams& p, float* ws);
// da (M,K) += alpha * dy op(B)^T. With M == 1 only the rows of B whose dy is non-zero are read.
void fc_backward_input(float* da, const float* dy, const float* b, int M, int N, int K, const GemmParams& p,
                       float* ws);

// ---- pooling (pool.cpp): max-pool, global average pool -----------------------------------------
// Same outputs, switches and tie rule (first maximum in scan order) as the reference.
void maxpool2d_forward(float* y, int32_t* switches, const float* x, const PoolGeometry& g);
void maxpool2d_backward_input(float* dx, const float* dy, const int32_t* switches, const PoolGeometry& g);
// y (planes) = the mean of each plane of x (planes, plane_size), summed in double like the reference.
void global_avgpool_forward(float* y, const float* x, int64_t planes, int64_t plane_size);
// dx (planes, plane_size) += dy[p] / plane_size: bit-identical to the reference.
void global_avgpool_backward_input(float* dx, const float* dy, int64_t planes, int64_t plane_size);

// ---- local response normalisation (lrn.cpp) -----------------------------------------------------
void lrn_forward(float* y, float* scale, const float* x, int N, int C, int64_t S, const LrnParams& p);
void lrn_backward_input(float* dx, const float* dy, const float* x, const float* y, const float* scale, int N,
                        int C, int64_t S, const LrnParams& p);

// ---- concatenation (concat.cpp): inputs (outer, L_i, inner) along `axis` ------------------------
void concat_forward(float* y, std::span<const Tensor* const> xs, int axis, int64_t outer, int64_t inner);
void concat_backward_input(std::span<Tensor* const> dxs, std::span<const Tensor* const> xs, const float* dy, int axis,
                           int64_t outer, int64_t inner);

// ---- rectifier (activation.cpp) -----------------------------------------------------------------
void relu_forward(float* y, const float* x, int64_t n);
void relu_backward_input(float* dx, const float* dy, const float* x, int64_t n, BackwardRule rule);
// dx = the same gradient, written rather than added (a fused Relu's masked gradient, into a workspace).
// x may be the Relu's output instead of its input: x > 0 and max(0, x) > 0 are the same test.
void relu_backward_write(float* dx, const float* dy, const float* x, int64_t n, BackwardRule rule);
// dx += dy, threaded (copy ops' backward and fan-in sums).
void add_into(float* dx, const float* dy, int64_t n);

}  // namespace deepinside::cpu_fast
