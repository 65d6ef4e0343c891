#pragma once
// The CUDA backend: every op of the CPU reference through the kernels of kernels/cuda, all buffers
// in the Runtime's device memory, all work on its one stream. Compiled twice (device_api.h):
// deepinside::cuda::CudaBackend is backend "cuda" (needs a GPU), deepinside::cuda_emu::CudaBackend
// is backend "cuda-emu" (the same kernels on the CPU through kernels/emu).
#include <memory>
#include <string>

#include "engine/backend.h"
#include "kernels/cuda/runtime.h"

namespace deepinside::DI_KERNEL_NS {

class CudaBackend : public Backend {
 public:
  CudaBackend();  // device build: throws Error when no CUDA device is present
  std::string name() const override;
  bool supports(OpKind kind) const override;
  DeviceRuntime* device_runtime() override { return &runtime_; }
  void plan_saved(const Node& node, std::span<const Shape* const> input_shapes, const Shape& output_shape,
                  NodeSaved& saved) override;
  void forward(const Node& node, std::span<const Tensor* const> in, Tensor& out, NodeSaved& saved) override;
  void backward_input(const Node& node, BackwardRule rule, std::span<const Tensor* const> in, const Tensor& out,
                      const Tensor& grad_out, std::span<Tensor* const> grad_in, const NodeSaved& saved) override;

  Runtime& runtime() { return runtime_; }

 protected:
  Runtime runtime_;
};

std::unique_ptr<Backend> make_cuda_backend();

}  // namespace deepinside::DI_KERNEL_NS
