#pragma once
// One tiled GEMM kernel, out(rows, cols) = A(rows, depth) B(depth, cols), for every problem that is
// a GEMM once its operands are gathered: convolution forward and backward-data (implicit GEMM: the
// B operand is read straight from the image, im2col never materialised) and the fully-connected
// layers. A Problem supplies the sizes and three device functions:
//   float load_a(int z, int row, int k)   element (row, k) of A, for batch/group z (blockIdx.z)
//   float load_b(int z, int k, int col)   element (k, col) of B
//   void  store(int z, int row, int col, float sum)
// and, for 16-byte loads of B:
//   bool   vector_b() const               true when B's rows are contiguous, 16-byte aligned, cols % 4 == 0
//   float4 load_b4(int z, int k, int col) elements (k, col .. col+3), col a multiple of 4
// Block tile (16 RM) x (16 RN), stepping kTileK along the depth through shared memory (the next
// step's operands prefetched into registers during the current step's arithmetic); each of the
// 256 threads (16 x 16) accumulates an RM x RN register block at rows ty + 16 i, cols tx + 16 j
// (strided, so that the shared-memory reads of a warp hit distinct banks). Three shapes: 64 x 64 for
// wide problems, 32 x 128 and 16 x 128 for thin ones (a first conv layer's input gradient has 3 rows;
// a squeeze layer has 16 output channels), which would leave most of a 64-row tile idle.
#include <cstdint>

#include "kernels/cuda/device_api.h"

namespace deepinside::DI_KERNEL_NS {

// Problems without 16-byte B loads derive from this.
struct ScalarB {
  __device__ bool vector_b() const { return false; }
  __device__ float4 load_b4(int, int, int) const { return make_float4(0.0f, 0.0f, 0.0f, 0.0f); }
};

__device__ __forceinline__ bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

constexpr int kTileK = 16, kTileThreads = 256;

template <int RM, int RN, class Problem>
__global__ void __launch_bounds__(256) tiled_gemm_kernel(Problem p) {
  constexpr int kTileM = 16 * RM, kTileN = 16 * RN;
  DI_SHARED(float, a_tile, [kTileK][kTileM + 1]);  // a_tile[k][row]
  DI_SHARED(float, b_tile, [kTileK][kTileN + 1]);  // b_tile[k][col]
  const int tid = int(threadIdx.x);
  const int tx = tid % 16, ty = tid / 16;
  const int row0 = int(blockIdx.y) * kTileM, col0 = int(blockIdx.x) * kTileN;
  const int z = int(blockIdx.z);
  const bool vector_b = p.vector_b();
  float acc[RM][RN] = {};
  // Software pipelining: while the block multiplies the tiles in shared memory, each thread's share
  // of the next tiles is already on its way from global memory into registers. Shares: A tile
  // element e = tid + 256 i (i < RM; k fastest), B tile element tid + 256 j (j < RN; cols fastest),
  // or with 16-byte loads groups of 4 columns tid + 256 j (j < RN / 4).
  float a_next[RM], b_next[RN];
  auto fetch = [&](int k0) {
#pragma unroll
    for (int i = 0; i < RM; ++i) {
      const int e = tid + kTileThreads * i, row = e / kTileK, k = e % kTileK;
      a_next[i] = row0 + row < p.rows && k0 + k < p.depth ? p.load_a(z, row0 + row, k0 + k) : 0.0f;
    }
    if (vector_b) {
#pragma unroll
      for (int j = 0; j < RN / 4; ++j) {
        const int e = tid + kTileThreads * j, k = e / (kTileN / 4), col = 4 * (e % (kTileN / 4));
        const float4 v = col0 + col < p.cols && k0 + k < p.depth ? p.load_b4(z, k0 + k, col0 + col)
                                                                 : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        b_next[4 * j] = v.x;
        b_next[4 * j + 1] = v.y;
        b_next[4 * j + 2] = v.z;
        b_next[4 * j + 3] = v.w;
      }
    } else {
#pragma unroll
      for (int j = 0; j < RN; ++j) {
        const int e = tid + kTileThreads * j, k = e / kTileN, col = e % kTileN;
        b_next[j] = col0 + col < p.cols && k0 + k < p.depth ? p.load_b(z, k0 + k, col0 + col) : 0.0f;
      }
    }
  };
  auto stash = [&] {  // the fetched shares into the shared tiles
#pragma unroll
    for (int i = 0; i < RM; ++i) {
      const int e = tid + kTileThreads * i;
      a_tile[e % kTileK][e / kTileK] = a_next[i];
    }
    if (vector_b) {
#pragma unroll
      for (int j = 0; j < RN / 4; ++j) {
        const int e = tid + kTileThreads * j, k = e / (kTileN / 4), col = 4 * (e % (kTileN / 4));
#pragma unroll
        for (int q = 0; q < 4; ++q) b_tile[k][col + q] = b_next[4 * j + q];
      }
    } else {
#pragma unroll
      for (int j = 0; j < RN; ++j) {
        const int e = tid + kTileThreads * j;
        b_tile[e / kTileN][e % kTileN] = b_next[j];
      }
    }
  };
  fetch(0);
  for (int k0 = 0; k0 < p.depth; k0 += kTileK) {
    stash();
    __syncthreads();
    if (k0 + kTileK < p.depth) fetch(k0 + kTileK);  // in flight during the multiply-adds below
#pragma unroll
    for (int k = 0; k < kTileK; ++k) {
      float a[RM], b[RN];
#pragma unroll
      for (int i = 0; i < RM; ++i) a[i] = a_tile[k][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < RN; ++j) b[j] = b_tile[k][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < RM; ++i)
#pragma unroll
        for (int j = 0; j < RN; ++j) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();  // the tiles are overwritten by the next step
  }
#pragma unroll
  for (int i = 0; i < RM; ++i)
#pragma unroll
    for (int j = 0; j < RN; ++j) {
      const int row = row0 + ty + 16 * i, col = col0 + tx + 16 * j;
      if (row < p.rows && col < p.cols) p.store(z, row, col, acc[i][j]);
    }
}

template <int RM, int RN, class Problem>
void run_tiled_gemm_shape(const char* name, const Problem& p, int batches, Stream stream) {
  launch(name, tiled_gemm_kernel<RM, RN, Problem>,
         dim3(blocks_for(p.cols, 16 * RN), blocks_for(p.rows, 16 * RM), unsigned(batches)), dim3(kTileThreads), stream, p);
}

// Launches the kernel over p.rows x p.cols, for z = 0 .. batches-1, with the tile shape that wastes
// the fewest rows.
template <class Problem>
void run_tiled_gemm(const char* name, const Problem& p, int batches, Stream stream) {
  if (p.rows <= 0 || p.cols <= 0 || batches <= 0) return;
  if (p.rows <= 16)
    run_tiled_gemm_shape<1, 8>(name, p, batches, stream);
  else if (p.rows <= 32)
    run_tiled_gemm_shape<2, 8>(name, p, batches, stream);
  else
    run_tiled_gemm_shape<4, 4>(name, p, batches, stream);
}

}  // namespace deepinside::DI_KERNEL_NS
