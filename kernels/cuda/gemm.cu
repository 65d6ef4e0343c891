// Fully connected layers (Gemm, MatMul): the tiled GEMM of tiled_gemm.cuh for batch > 1, and at
// batch 1 (M == 1) two GEMV kernels, since a single row would use 1/64 of a GEMM tile and the layer
// is bound by reading the weights once:
//   row_dot: out[r] = sum_c mat[r, c] v[c]  one warp per r, reading row r contiguously, shuffle-reduced
//   col_sum: out[c] = sum_r mat[r, c] v[r]  one thread per c, a warp reading 32 consecutive c per r
#include "kernels/cuda/ops.h"
#include "kernels/cuda/tiled_gemm.cuh"

namespace deepinside::DI_KERNEL_NS {

namespace {

// op(X)[i, j] of X stored (rows, cols) or, transposed, (cols, rows).
__device__ __forceinline__ float op_at(const float* x, bool trans, int rows, int cols, int i, int j) {
  return trans ? x[int64_t(j) * rows + i] : x[int64_t(i) * cols + j];
}

// Batches z (MatMul) step through the operands by these strides (0: shared by every batch).
struct BatchStrides {
  int64_t a = 0, b = 0, y = 0;
};

struct GemmForwardProblem {  // y = alpha op(A) op(B) + beta C
  float* y;
  const float* a;
  const float* b;
  const float* c;
  int c_rows, c_cols;
  bool trans_a, trans_b;
  float alpha, beta;
  BatchStrides s;
  int rows, cols, depth;  // M, N, K
  __device__ float load_a(int z, int i, int k) const { return op_at(a + z * s.a, trans_a, rows, depth, i, k); }
  __device__ float load_b(int z, int k, int j) const { return op_at(b + z * s.b, trans_b, depth, cols, k, j); }
  __device__ void store(int z, int i, int j, float sum) const {
    const float bias = c ? c[(c_rows == 1 ? 0 : i) * c_cols + (c_cols == 1 ? 0 : j)] : 0.0f;
    y[z * s.y + int64_t(i) * cols + j] = alpha * sum + beta * bias;
  }
  // B stored (K, N) with N % 4 == 0: four consecutive columns of a row are one 16-byte load.
  __device__ bool vector_b() const { return !trans_b && cols % 4 == 0 && s.b % 4 == 0 && aligned16(b); }
  __device__ float4 load_b4(int z, int k, int j) const {
    return *reinterpret_cast<const float4*>(b + z * s.b + int64_t(k) * cols + j);
  }
};

struct GemmGradAProblem : ScalarB {  // dA += alpha dY op(B)^T: rows M, cols K, depth N
  float* da;
  const float* dy;
  const float* b;
  bool trans_a, trans_b;
  float alpha;
  BatchStrides s;  // s.a: da, s.b: b, s.y: dy
  int rows, cols, depth;
  __device__ float load_a(int z, int i, int j) const { return dy[z * s.y + int64_t(i) * depth + j]; }
  __device__ float load_b(int z, int j, int k) const { return op_at(b + z * s.b, trans_b, cols, depth, k, j); }
  __device__ void store(int z, int i, int k, float sum) const {
    float* d = da + z * s.a;
    (trans_a ? d[int64_t(k) * rows + i] : d[int64_t(i) * cols + k]) += alpha * sum;
  }
};

struct GemmGradBProblem {  // dB += alpha op(A)^T dY: rows K, cols N, depth M
  float* db;
  const float* dy;
  const float* a;
  bool trans_a, trans_b;
  float alpha;
  BatchStrides s;  // s.a: a, s.b: db, s.y: dy
  int rows, cols, depth;
  __device__ float load_a(int z, int k, int i) const { return op_at(a + z * s.a, trans_a, depth, rows, i, k); }
  __device__ float load_b(int z, int i, int j) const { return dy[z * s.y + int64_t(i) * cols + j]; }
  __device__ void store(int z, int k, int j, float sum) const {
    float* d = db + z * s.b;
    (trans_b ? d[int64_t(j) * rows + k] : d[int64_t(k) * cols + j]) += alpha * sum;
  }
  // dY (M, N) rows with N % 4 == 0: 16-byte loads.
  __device__ bool vector_b() const { return cols % 4 == 0 && s.y % 4 == 0 && aligned16(dy); }
  __device__ float4 load_b4(int z, int i, int j) const {
    return *reinterpret_cast<const float4*>(dy + z * s.y + int64_t(i) * cols + j);
  }
};

// out[r] (= or +=) alpha * sum_c mat[r*cols + c] v[c] (+ beta * bias[r * bias_step]). One warp per r.
__global__ void row_dot_kernel(float* out, const float* mat, const float* v, int rows, int cols, float alpha,
                               const float* bias, int bias_step, float beta, bool accumulate) {
  const int warps_per_block = int(blockDim.x) / 32;
  const int r = int(blockIdx.x) * warps_per_block + int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  float sum = 0.0f;
  if (r < rows) {
    const float* row = mat + int64_t(r) * cols;
    if (cols % 4 == 0 && reinterpret_cast<uintptr_t>(row) % 16 == 0 && reinterpret_cast<uintptr_t>(v) % 16 == 0) {
      // Aligned rows: 16-byte loads, a warp reading 512 contiguous bytes per step.
      const float4* row4 = reinterpret_cast<const float4*>(row);
      const float4* v4 = reinterpret_cast<const float4*>(v);
      for (int c = lane; c < cols / 4; c += 32) {
        const float4 m = row4[c], x = v4[c];
        sum += m.x * x.x + m.y * x.y + m.z * x.z + m.w * x.w;
      }
    } else {
      for (int c = lane; c < cols; c += 32) sum += row[c] * v[c];
    }
  }
  // Every lane of the warp takes part in the shuffles (r is the same for the whole warp).
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_down_sync(0xffffffffu, sum, offset);
  if (lane == 0 && r < rows) {
    const float value = alpha * sum;
    if (accumulate)
      out[r] += value;
    else
      out[r] = value + (bias ? beta * bias[r * bias_step] : 0.0f);
  }
}

// out[c] (= or +=) alpha * sum_r mat[r*cols + c] v[r] (+ beta * bias[c * bias_step]). One thread per c.
__global__ void col_sum_kernel(float* out, const float* mat, const float* v, int rows, int cols, float alpha,
                               const float* bias, int bias_step, float beta, bool accumulate) {
  const int c = int(blockIdx.x * blockDim.x + threadIdx.x);
  if (c >= cols) return;
  float sum = 0.0f;
  for (int r = 0; r < rows; ++r) sum += mat[int64_t(r) * cols + c] * v[r];
  const float value = alpha * sum;
  if (accumulate)
    out[c] += value;
  else
    out[c] = value + (bias ? beta * bias[c * bias_step] : 0.0f);
}

void row_dot(float* out, const float* mat, const float* v, int rows, int cols, float alpha, const float* bias,
             int bias_step, float beta, bool accumulate, Stream stream) {
  constexpr int kWarps = 8;
  launch("row_dot (gemv)", row_dot_kernel, dim3(blocks_for(rows, kWarps)), dim3(32 * kWarps), stream, out, mat, v,
         rows, cols, alpha, bias, bias_step, beta, accumulate);
}

void col_sum(float* out, const float* mat, const float* v, int rows, int cols, float alpha, const float* bias,
             int bias_step, float beta, bool accumulate, Stream stream) {
  launch("col_sum (gemv)", col_sum_kernel, dim3(blocks_for(cols, 128)), dim3(128), stream, out, mat, v, rows, cols,
         alpha, bias, bias_step, beta, accumulate);
}

}  // namespace

void gemm_forward(float* y, const float* a, const float* b, const float* c, int c_rows, int c_cols, int M, int N,
                  int K, const GemmParams& p, Stream stream) {
  if (M == 1) {  // batch 1: y[j] = alpha sum_k a[k] op(B)[k, j] + beta c[j]
    const int bias_step = c_cols == 1 ? 0 : 1;
    if (p.trans_b)  // B is (N, K): row j of B dotted with a
      row_dot(y, b, a, N, K, p.alpha, c, bias_step, p.beta, false, stream);
    else  // B is (K, N)
      col_sum(y, b, a, K, N, p.alpha, c, bias_step, p.beta, false, stream);
    return;
  }
  const GemmForwardProblem prob{y, a, b, c, c_rows, c_cols, p.trans_a, p.trans_b, p.alpha, p.beta, {}, M, N, K};
  run_tiled_gemm("gemm_forward", prob, 1, stream);
}

void gemm_backward_input(float* da, float* db, const float* dy, const float* a, const float* b, int M, int N, int K,
                         const GemmParams& p, Stream stream) {
  if (da) {
    if (M == 1) {  // da[k] += alpha sum_j dy[j] op(B)[k, j]; A (1,K) and (K,1) store alike
      if (p.trans_b)  // B (N, K): column k of B against dy
        col_sum(da, b, dy, N, K, p.alpha, nullptr, 0, 0.0f, true, stream);
      else  // B (K, N): row k of B dotted with dy
        row_dot(da, b, dy, K, N, p.alpha, nullptr, 0, 0.0f, true, stream);
    } else {
      const GemmGradAProblem prob{{}, da, dy, b, p.trans_a, p.trans_b, p.alpha, {}, M, K, N};
      run_tiled_gemm("gemm_backward_a", prob, 1, stream);
    }
  }
  if (db) {
    const GemmGradBProblem prob{db, dy, a, p.trans_a, p.trans_b, p.alpha, {}, K, N, M};
    run_tiled_gemm("gemm_backward_b", prob, 1, stream);
  }
}

void matmul_forward(float* y, const float* a, const float* b, int batch, bool b_batched, int M, int N, int K,
                    Stream stream) {
  const GemmParams plain;
  if (!b_batched) {  // one B for every batch: a single (batch*M, K) x (K, N) product
    gemm_forward(y, a, b, nullptr, 1, 1, batch * M, N, K, plain, stream);
    return;
  }
  const BatchStrides s{int64_t(M) * K, int64_t(K) * N, int64_t(M) * N};
  const GemmForwardProblem prob{y, a, b, nullptr, 1, 1, false, false, 1.0f, 0.0f, s, M, N, K};
  run_tiled_gemm("matmul_forward", prob, batch, stream);
}

void matmul_backward_input(float* da, float* db, const float* dy, const float* a, const float* b, int batch,
                           bool b_batched, int M, int N, int K, Stream stream) {
  const GemmParams plain;
  if (!b_batched) {  // dB sums over every batch: the (batch*M)-row product does exactly that
    gemm_backward_input(da, db, dy, a, b, batch * M, N, K, plain, stream);
    return;
  }
  if (da) {
    const BatchStrides s{int64_t(M) * K, int64_t(K) * N, int64_t(M) * N};
    const GemmGradAProblem prob{{}, da, dy, b, false, false, 1.0f, s, M, K, N};
    run_tiled_gemm("matmul_backward_a", prob, batch, stream);
  }
  if (db) {
    const BatchStrides s{int64_t(M) * K, int64_t(K) * N, int64_t(M) * N};
    const GemmGradBProblem prob{db, dy, a, false, false, 1.0f, s, K, N, M};
    run_tiled_gemm("matmul_backward_b", prob, batch, stream);
  }
}

}  // namespace deepinside::DI_KERNEL_NS
