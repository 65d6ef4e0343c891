#pragma once
// kernels/emu: the CUDA kernel sources of kernels/cuda compiled for the host (DESIGN.md Sec. 5).
// Every thread block runs on one CPU thread with its CUDA threads as cooperative fibers
// (Boost.Context); blocks of a grid run in parallel on OpenMP threads. A fiber runs until it reaches
// a barrier (__syncthreads, a warp shuffle, __syncwarp), so that shared memory, barriers and warp
// shuffles (warps of 32 consecutive linear thread ids) behave as on the device, and a kernel that
// depends on a barrier it does not have gives wrong results here as it would there.
//
// Stricter than the device on purpose: a barrier that not every live thread of the block (or of the
// warp's mask) reaches is an Error naming the kernel, not a hang; shared memory starts as NaN bytes
// (0xFF), so a read before any write shows up in parity tests.
//
// This header is included only through kernels/cuda/device_api.h, when DEEPINSIDE_EMU is defined.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <type_traits>
#include <vector>

namespace deepinside::emu {

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3 {
  unsigned x = 0, y = 0, z = 0;
};

struct BlockState;  // emu.cpp: the fibers, barriers and shared memory of the block being run

// What the running emulated thread sees; set by the scheduler before it resumes each fiber.
struct ThreadContext {
  uint3 thread_idx, block_idx;
  dim3 block_dim, grid_dim;
  int linear = 0;           // threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)
  size_t shared_cursor = 0; // bytes of the block's shared memory this thread has declared so far
  BlockState* block = nullptr;
};

ThreadContext& current_thread();  // throws Error outside a kernel

// Bytes of static shared memory a block may declare (the device's 48 KiB limit).
constexpr size_t kSharedBytes = 48 * 1024;

// Shared memory: every thread of a block executes the same declarations in the same order, so the
// n-th declaration of every thread gets the same offset in the block's arena.
void* shared_alloc(size_t bytes, size_t align);

void syncthreads();
void syncwarp(unsigned mask);
// Every lane in mask writes value; returns the value written by lane source (of this warp), or the
// caller's own value where source is out of range (as the device's shuffles do).
uint64_t warp_exchange(unsigned mask, uint64_t value, int source_lane);

// Runs body once per thread of every block of the grid. name identifies the kernel in errors.
void run_grid(const char* name, dim3 grid, dim3 block, const std::function<void()>& body);

// Blocks run on this many OpenMP threads (default: all); tests set 1 to make runs reproducible.
void set_block_threads(int threads);

// Stream capture, as CUDA graphs do it: between begin_capture and end_capture, launches (and the
// runtime's copies and zero-fills) are recorded instead of run; the recording replays them in order.
void begin_capture();
bool capturing();
void record(std::function<void()> work);  // while capturing
std::vector<std::function<void()>> end_capture();

template <class T>
T shuffle(unsigned mask, T value, int source_lane) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "warp shuffles move up to 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  bits = warp_exchange(mask, bits, source_lane);
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}

inline int lane_id() { return current_thread().linear & 31; }

}  // namespace deepinside::emu

// ---- the CUDA spellings kernels use ----------------------------------------------------------------

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__ __restrict

using deepinside::emu::dim3;
using deepinside::emu::uint3;

#define threadIdx (::deepinside::emu::current_thread().thread_idx)
#define blockIdx (::deepinside::emu::current_thread().block_idx)
#define blockDim (::deepinside::emu::current_thread().block_dim)
#define gridDim (::deepinside::emu::current_thread().grid_dim)

inline void __syncthreads() { ::deepinside::emu::syncthreads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { ::deepinside::emu::syncwarp(mask); }

template <class T>
T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  const int lane = ::deepinside::emu::lane_id();
  return ::deepinside::emu::shuffle(mask, v, (lane & ~(width - 1)) + (src & (width - 1)));
}
template <class T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  const int lane = ::deepinside::emu::lane_id();
  const bool inside = (lane & (width - 1)) + int(delta) < width;
  return ::deepinside::emu::shuffle(mask, v, inside ? lane + int(delta) : lane);
}
template <class T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  const int lane = ::deepinside::emu::lane_id();
  const bool inside = (lane & (width - 1)) >= int(delta);
  return ::deepinside::emu::shuffle(mask, v, inside ? lane - int(delta) : lane);
}
template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  const int lane = ::deepinside::emu::lane_id();
  const int src = lane ^ lane_mask;
  const bool inside = (src & ~(width - 1)) == (lane & ~(width - 1));
  return ::deepinside::emu::shuffle(mask, v, inside ? src : lane);
}

// Atomics: blocks run on several CPU threads, so these are real atomics.
template <class T>
T atomicAdd(T* address, T value) {
  return std::atomic_ref<T>(*address).fetch_add(value);
}
template <class T>
T atomicMax(T* address, T value) {
  static_assert(std::is_integral_v<T>, "atomicMax: integers only, as on the device");
  std::atomic_ref<T> a(*address);
  T old = a.load();
  while (old < value && !a.compare_exchange_weak(old, value)) {
  }
  return old;
}

// Read-only cache loads are plain loads on the host.
template <class T>
T __ldg(const T* p) {
  return *p;
}

struct float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline float __expf(float x) { return std::exp(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
// expf, powf, sqrtf, fmaxf, ... are the C library's (math.h), as in device code.
// Device code calls min/max unqualified on ints and floats.
using std::max;
using std::min;
