// make_backend: the one place that knows which backends this build has.
#include "engine/backend.h"
#include "engine/error.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu_fast/cpu_fast_backend.h"

namespace deepinside {

std::unique_ptr<Backend> make_backend(const std::string& name) {
  if (name == "cpu") return std::make_unique<cpu_fast::CpuFastBackend>();
  if (name == "cpu-reference") return std::make_unique<cpu::CpuReferenceBackend>();
  if (name == "cuda" || name == "cudnn")
    throw Error("backend '" + name +
                "' is not available: this build has no CUDA support (backends: cpu, cpu-reference)");
  throw Error("unknown backend '" + name + "' (backends in this build: cpu, cpu-reference)");
}

}  // namespace deepinside
