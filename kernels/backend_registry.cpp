// make_backend: the one place that knows which backends this build has.
#include "engine/backend.h"
#include "engine/error.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu_fast/cpu_fast_backend.h"

namespace deepinside {

// The CUDA backends are compiled from one source into two namespaces (kernels/cuda/device_api.h),
// so their factories are declared here rather than through their headers.
namespace cuda_emu {
std::unique_ptr<Backend> make_cuda_backend();
}
#ifdef DEEPINSIDE_HAVE_CUDA
namespace cuda {
std::unique_ptr<Backend> make_cuda_backend();
}
#endif
#ifdef DEEPINSIDE_HAVE_CUDNN
namespace cudnn {
std::unique_ptr<Backend> make_cudnn_backend();
}
#endif

namespace {
const char* const kBackendList =
    "cpu, cpu-reference, cuda-emu"
#ifdef DEEPINSIDE_HAVE_CUDA
    ", cuda"
#endif
#ifdef DEEPINSIDE_HAVE_CUDNN
    ", cudnn"
#endif
    ;
}  // namespace

std::unique_ptr<Backend> make_backend(const std::string& name) {
  if (name == "cpu") return std::make_unique<cpu_fast::CpuFastBackend>();
  if (name == "cpu-reference") return std::make_unique<cpu::CpuReferenceBackend>();
  if (name == "cuda-emu") return cuda_emu::make_cuda_backend();
#if defined(DEEPINSIDE_HAVE_CUDA)
  if (name == "cuda" || name == "cudnn") {
    try {
#ifdef DEEPINSIDE_HAVE_CUDNN
      if (name == "cudnn") return cudnn::make_cudnn_backend();
#endif
      if (name == "cuda") return cuda::make_cuda_backend();
    } catch (const Error& e) {  // e.g. no CUDA device on this machine
      throw Error("backend '" + name + "' is not available: " + e.what());
    }
  }
#endif
  if (name == "cuda" || name == "cudnn")
    throw Error("backend '" + name + "' is not available: this build has no " + (name == "cuda" ? "CUDA" : "cuDNN") +
                " support (backends: " + kBackendList + "; 'cuda-emu' runs the CUDA kernels on the CPU)");
  throw Error("unknown backend '" + name + "' (backends in this build: " + std::string(kBackendList) + ")");
}

}  // namespace deepinside
