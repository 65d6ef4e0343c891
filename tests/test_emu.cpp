// kernels/emu itself: kernels written as for the device, launched through the one launcher, must
// see barriers, shared memory and warp shuffles behave as on a GPU, and a kernel that lacks a
// barrier it needs must give a wrong answer here too (each test below can fail).
#include <numeric>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/error.h"
#include "kernels/cuda/device_api.h"

using namespace deepinside;
using deepinside::cuda_emu::launch;

namespace {

constexpr int kBlock = 128;

// out[blockIdx.x] = sum of x over the block's 128 elements: a shared-memory tree, __syncthreads
// between levels.
__global__ void block_sum_kernel(float* out, const float* x) {
  DI_SHARED(float, partial, [kBlock]);
  const int t = int(threadIdx.x);
  partial[t] = x[blockIdx.x * kBlock + t];
  __syncthreads();
  for (int half = kBlock / 2; half > 0; half /= 2) {
    if (t < half) partial[t] += partial[t + half];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = partial[0];
}

// The same tree without the barriers: thread 0 reads partial sums its neighbours have not written.
__global__ void block_sum_without_barriers_kernel(float* out, const float* x) {
  DI_SHARED(float, partial, [kBlock]);
  const int t = int(threadIdx.x);
  partial[t] = x[blockIdx.x * kBlock + t];
  for (int half = kBlock / 2; half > 0; half /= 2)
    if (t < half) partial[t] += partial[t + half];
  if (t == 0) out[blockIdx.x] = partial[0];
}

// Warp sums by __shfl_down_sync (lane 0 holds the total) and __shfl_xor_sync (every lane does).
__global__ void warp_sum_kernel(float* down_out, float* xor_out, const float* x) {
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x), lane = int(threadIdx.x) % 32;
  float down = x[i], butterfly = x[i];
  for (int offset = 16; offset > 0; offset /= 2) {
    down += __shfl_down_sync(0xffffffffu, down, offset);
    butterfly += __shfl_xor_sync(0xffffffffu, butterfly, offset);
  }
  if (lane == 0) down_out[i / 32] = down;
  xor_out[i] = butterfly;
}

// Rotation through shared memory: out[t] = t's right neighbour's value, needs the barrier.
__global__ void rotate_kernel(int* out, bool with_barrier) {
  DI_SHARED(int, slot, [kBlock]);
  const int t = int(threadIdx.x);
  slot[t] = t * 10;
  if (with_barrier) __syncthreads();
  out[blockIdx.x * kBlock + t] = slot[(t + 1) % kBlock];
}

// Thread and block coordinates of a 3-D launch: out[linear thread] = encoded coordinates.
__global__ void coordinates_kernel(int* out) {
  const int block = int(blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z));
  const int per_block = int(blockDim.x * blockDim.y * blockDim.z);
  const int thread = int(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z));
  out[block * per_block + thread] = int(threadIdx.x) + 10 * int(threadIdx.y) + 100 * int(threadIdx.z) +
                                    1000 * int(blockIdx.x) + 10000 * int(blockIdx.y) + 100000 * int(blockIdx.z);
}

// Two shared arrays, a broadcast through __shfl_sync and __shfl_up_sync (an inclusive warp scan).
__global__ void warp_scan_kernel(int* scan_out, int* broadcast_out) {
  const int lane = int(threadIdx.x) % 32;
  int v = lane + 1;
  for (int offset = 1; offset < 32; offset *= 2) {
    const int up = __shfl_up_sync(0xffffffffu, v, offset);
    if (lane >= offset) v += up;
  }
  scan_out[threadIdx.x] = v;
  broadcast_out[threadIdx.x] = __shfl_sync(0xffffffffu, v, 5);
}

// A barrier only half of the block reaches: an error on the host, a hang or worse on the device.
__global__ void divergent_barrier_kernel(int* out) {
  if (threadIdx.x < 64) {
    __syncthreads();
    out[threadIdx.x] = 1;
  }
}

__global__ void too_much_shared_kernel(float* out) {
  DI_SHARED(float, big, [16 * 1024]);  // 64 KiB: over the 48 KiB static limit
  big[threadIdx.x] = 1.0f;
  out[threadIdx.x] = big[threadIdx.x];
}

// Atomics across blocks that run on several CPU threads.
__global__ void count_kernel(int* counter, float* total) {
  atomicAdd(counter, 1);
  atomicAdd(total, 0.5f);
}

std::vector<float> iota_floats(size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = float(int(i % 97) - 48);
  return v;
}

}  // namespace

TEST_CASE("emu: a shared-memory block reduction with __syncthreads sums every block", "[emu]") {
  const int blocks = 37;
  const auto x = iota_floats(size_t(blocks) * kBlock);
  std::vector<float> out(blocks, -1.0f);
  launch("block_sum", block_sum_kernel, dim3(blocks), dim3(kBlock), nullptr, out.data(), x.data());
  for (int b = 0; b < blocks; ++b) {
    const float expected = std::accumulate(x.begin() + b * kBlock, x.begin() + (b + 1) * kBlock, 0.0f);
    REQUIRE(out[size_t(b)] == expected);
  }
}

TEST_CASE("emu: the same reduction without its barriers gives wrong sums, as on a GPU", "[emu]") {
  const int blocks = 4;
  const auto x = iota_floats(size_t(blocks) * kBlock);
  std::vector<float> out(blocks, -1.0f);
  launch("block_sum_without_barriers", block_sum_without_barriers_kernel, dim3(blocks), dim3(kBlock), nullptr,
         out.data(), x.data());
  int wrong = 0;
  for (int b = 0; b < blocks; ++b) {
    const float expected = std::accumulate(x.begin() + b * kBlock, x.begin() + (b + 1) * kBlock, 0.0f);
    wrong += !(out[size_t(b)] == expected);  // NaN (unwritten shared memory) counts as wrong
  }
  REQUIRE(wrong == blocks);
}

TEST_CASE("emu: warp shuffles (down, xor, up, broadcast) exchange values within warps of 32", "[emu]") {
  const int threads = 96, blocks = 3;
  const auto x = iota_floats(size_t(threads) * blocks);
  std::vector<float> down(size_t(threads * blocks / 32), -1.0f), butterfly(x.size(), -1.0f);
  launch("warp_sum", warp_sum_kernel, dim3(blocks), dim3(threads), nullptr, down.data(), butterfly.data(), x.data());
  for (size_t w = 0; w < down.size(); ++w) {
    const float expected = std::accumulate(x.begin() + long(w) * 32, x.begin() + long(w + 1) * 32, 0.0f);
    REQUIRE(down[w] == expected);
    for (size_t l = 0; l < 32; ++l) REQUIRE(butterfly[w * 32 + l] == expected);
  }
  std::vector<int> scan(64), broadcast(64);
  launch("warp_scan", warp_scan_kernel, dim3(1), dim3(64), nullptr, scan.data(), broadcast.data());
  for (int t = 0; t < 64; ++t) {
    const int lane = t % 32;
    REQUIRE(scan[size_t(t)] == (lane + 1) * (lane + 2) / 2);
    REQUIRE(broadcast[size_t(t)] == 21);  // lane 5's inclusive scan: 1 + ... + 6
  }
}

TEST_CASE("emu: a barrier-dependent exchange is right with __syncthreads and wrong without", "[emu]") {
  std::vector<int> out(size_t(2) * kBlock, -1);
  launch("rotate", rotate_kernel, dim3(2), dim3(kBlock), nullptr, out.data(), true);
  for (int i = 0; i < 2 * kBlock; ++i) REQUIRE(out[size_t(i)] == ((i % kBlock) + 1) % kBlock * 10);
  launch("rotate", rotate_kernel, dim3(2), dim3(kBlock), nullptr, out.data(), false);
  int right = 0;
  for (int i = 0; i < 2 * kBlock; ++i) right += out[size_t(i)] == ((i % kBlock) + 1) % kBlock * 10;
  REQUIRE(right < 2 * kBlock);
}

TEST_CASE("emu: 3-D grids and blocks see their coordinates", "[emu]") {
  const dim3 grid(3, 2, 2), block(4, 3, 2);
  std::vector<int> out(size_t(3 * 2 * 2) * (4 * 3 * 2), -1);
  launch("coordinates", coordinates_kernel, grid, block, nullptr, out.data());
  size_t i = 0;
  for (unsigned bz = 0; bz < 2; ++bz)
    for (unsigned by = 0; by < 2; ++by)
      for (unsigned bx = 0; bx < 3; ++bx)
        for (unsigned tz = 0; tz < 2; ++tz)
          for (unsigned ty = 0; ty < 3; ++ty)
            for (unsigned tx = 0; tx < 4; ++tx)
              REQUIRE(out[i++] == int(tx + 10 * ty + 100 * tz + 1000 * bx + 10000 * by + 100000 * bz));
}

TEST_CASE("emu: atomics across blocks running on several CPU threads", "[emu]") {
  int counter = 0;
  float total = 0.0f;
  launch("count", count_kernel, dim3(64), dim3(100), nullptr, &counter, &total);
  REQUIRE(counter == 6400);
  REQUIRE(total == 3200.0f);
}

TEST_CASE("emu: divergent barriers, shared-memory overflow and bad launches are errors, not hangs", "[emu]") {
  std::vector<int> out(kBlock);
  REQUIRE_THROWS_WITH(launch("divergent", divergent_barrier_kernel, dim3(2), dim3(kBlock), nullptr, out.data()),
                      Catch::Contains("kernel 'divergent'") && Catch::Contains("__syncthreads"));
  std::vector<float> f(kBlock);
  REQUIRE_THROWS_WITH(launch("too_much_shared", too_much_shared_kernel, dim3(1), dim3(kBlock), nullptr, f.data()),
                      Catch::Contains("shared memory"));
  REQUIRE_THROWS_WITH(launch("too_big", too_much_shared_kernel, dim3(1), dim3(2048), nullptr, f.data()),
                      Catch::Contains("invalid launch configuration"));
  // The scheduler is usable again after the errors.
  std::vector<int> rotated(kBlock);
  launch("rotate", rotate_kernel, dim3(1), dim3(kBlock), nullptr, rotated.data(), true);
  REQUIRE(rotated[0] == 10);
}
