#pragma once
// What every file of kernels/cuda includes: the CUDA runtime on the device build, or the host
// emulation (kernels/emu) when DEEPINSIDE_EMU is defined; the one launcher both paths share; the one
// macro that checks every CUDA call.
//
// The same sources are compiled twice: by nvcc into namespace deepinside::cuda (backend "cuda"), and
// by the host compiler with DEEPINSIDE_EMU into namespace deepinside::cuda_emu (backend "cuda-emu"),
// so that both can live in one binary. Code here writes `namespace deepinside::DI_KERNEL_NS`.
//
// Shared memory is declared with DI_SHARED(type, name, dims), unconditionally at the top of a
// kernel: e.g. DI_SHARED(float, tile, [16][65]); the emulation hands the n-th declaration of every
// thread of a block the same storage.
#include <string>

#include "engine/error.h"

#ifdef DEEPINSIDE_EMU
#include "kernels/emu/emu.h"
#define DI_KERNEL_NS cuda_emu
#define DI_SHARED(type, name, dims) \
  type(&name) dims = *reinterpret_cast<type(*) dims>(::deepinside::emu::shared_alloc(sizeof(type dims), alignof(type)))
#else
#include <cuda_runtime.h>
#define DI_KERNEL_NS cuda
#define DI_SHARED(type, name, dims) __shared__ type name dims
#endif

namespace deepinside::DI_KERNEL_NS {

#ifdef DEEPINSIDE_EMU
using Stream = void*;  // the emulation runs every launch to completion, in order
#else
using Stream = cudaStream_t;

// Throws Error naming the call, file and line when a CUDA runtime call fails.
inline void check_cuda(cudaError_t status, const char* call, const char* file, int line) {
  if (status != cudaSuccess)
    throw Error(std::string("CUDA error in ") + call + " at " + file + ":" + std::to_string(line) + ": " +
                cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")");
}
#define DI_CUDA_CHECK(call) ::deepinside::DI_KERNEL_NS::check_cuda((call), #call, __FILE__, __LINE__)
#endif

// Ceiling division for grid sizes.
constexpr unsigned blocks_for(long long work, long long per_block) {
  return unsigned((work + per_block - 1) / per_block);
}

#if defined(DEEPINSIDE_EMU) || defined(__CUDACC__)
// The one launcher: kernel<<<grid, block, 0, stream>>>(args...) on the device (the launch checked),
// the fiber scheduler of kernels/emu on the host. name identifies the kernel in errors.
template <class... Params, class... Args>
void launch(const char* name, void (*kernel)(Params...), dim3 grid, dim3 block, Stream stream, Args... args) {
  static_assert(sizeof...(Params) == sizeof...(Args), "launch: wrong number of kernel arguments");
#ifdef DEEPINSIDE_EMU
  (void)stream;
  // By value: a launch recorded into a capture (a CUDA graph) runs after this function returns.
  emu::run_grid(name, grid, block, [=] { kernel(Params(args)...); });
#else
  kernel<<<grid, block, 0, stream>>>(Params(args)...);
  check_cuda(cudaGetLastError(), name, __FILE__, __LINE__);
#endif
}
#endif

}  // namespace deepinside::DI_KERNEL_NS
