#pragma once
// The fast CPU path's matrix products: a blocked SGEMM on packed panels (an AVX-512 micro-kernel
// when the build targets it, a portable one otherwise) and the batch-1 GEMV of fully-connected
// layers. Conv and Gemm nodes (conv.cpp, fc.cpp) pack their right-hand operand straight into the
// panel layout below (im2col writes panels directly), so no matrix is copied twice.
//
// Packed B: the N columns are cut into panels of kNr = 48 columns; panel p holds rows k = 0..K-1 of
// its 48 columns, row after row (K x 48 floats, zero-padded past N), at B + p * panel_stride.
// Packed A is internal: blocks of kMc rows x kKc depth, cut into kMr-row micro-panels.
#include <cstdint>

namespace deepinside::cpu_fast {

constexpr int kMr = 8;    // rows of the micro-tile (C is kMr x kNr per micro-kernel call)
constexpr int kNr = 48;   // columns of the micro-tile and width of a packed-B panel
constexpr int kKc = 256;  // depth of one packed-A block
constexpr int kMc = 192;  // rows of one packed-A block (kMc * kKc floats, per thread)

// Floats of per-thread A-packing scratch the driver needs (fixed, independent of the shapes).
constexpr int64_t kApackFloats = int64_t(kMc) * kKc;

inline int64_t panels_for(int64_t n) { return (n + kNr - 1) / kNr; }

// C (M x N, row stride ldc) = A (M x K) * B + bias, or += A * B when accumulate. A is read through
// strides: A(i, k) = a[i * a_rs + k * a_cs] (row-major: a_rs = K, a_cs = 1; transposed: a_rs = 1,
// a_cs = M). B is packed (see above); bias (M) may be nullptr and is used only when !accumulate.
struct GemmArgs {
  int M = 0, N = 0, K = 0;
  const float* a = nullptr;
  int64_t a_rs = 0, a_cs = 0;
  const float* b_packed = nullptr;
  int64_t panel_stride = 0;  // floats between packed-B panels (>= K * kNr)
  // Floats between rows k of a panel: kNr when packed. A row-major B (K x N, row stride ldb) can be
  // read in place with b_ld = ldb and panel_stride = kNr (the columns past N are never loaded).
  int64_t b_ld = kNr;
  float* c = nullptr;
  int64_t ldc = 0;
  const float* bias = nullptr;
  bool accumulate = false;
  // C = max(0, A * B + bias): a Relu fused into the store (forward only; not with accumulate).
  bool relu = false;
  // Optional: the reduction runs over a subset of A's columns, A(i, k) = a[i*a_rs + k_index[k]*a_cs]
  // (the output channels whose gradient is not all zero, in conv backward).
  const int32_t* k_index = nullptr;
};

// Computes the part of C in rows [m0, m1) and packed-B panels [p0, p1) on the calling thread.
// apack: kApackFloats floats of scratch owned by this thread.
void gemm_range(const GemmArgs& g, int m0, int m1, int p0, int p1, float* apack);

// Splits C between `threads` threads; the part of thread `tid` is rows [m0,m1) x panels [p0,p1).
struct GemmPart {
  int m0, m1, p0, p1;
};
GemmPart gemm_partition(const GemmArgs& g, int tid, int threads);

// Packs B (K x N, element (k, n) at b[k * b_rs + n * b_cs]) for panels [p0, p1) into the panel
// layout. Used for dense operands (1x1 convolutions, Gemm inputs).
void pack_b(float* packed, int64_t panel_stride, const float* b, int64_t b_rs, int64_t b_cs, int K, int N,
            int p0, int p1);

// The same for the rows row_index[0..K) of B (element (row_index[k], n)).
void pack_b_rows(float* packed, int64_t panel_stride, const float* b, int64_t b_rs, int64_t b_cs,
                 const int32_t* row_index, int K, int N, int p0, int p1);

// y (rows) = alpha * W (rows x cols, row-major) x (cols), or y += that when accumulate: the batch-1
// fully-connected forward, one pass over W split by rows across threads.
void gemv_rows(float* y, const float* w, const float* x, int rows, int cols, float alpha, bool accumulate);

// dx (cols) += alpha * W^T dy: streams only the rows of W whose dy is non-zero (after a rectifier,
// about half of them), columns split across threads.
void gemv_transposed_add(float* dx, const float* w, const float* dy, int rows, int cols, float alpha);

// The build's micro-kernel: "avx512" or "portable".
const char* gemm_kernel_name();

}  // namespace deepinside::cpu_fast
