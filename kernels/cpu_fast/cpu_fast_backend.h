#pragma once
// The fast CPU backend ("cpu"): blocked SGEMM-based convolution and fully-connected layers, threaded
// pooling, LRN and rectifier (kernels/cpu_fast/*.cpp). Every other op runs the reference functions of
// kernels/cpu (same backend, the specification's code: nothing falls back silently to another
// backend). One workspace, sized at plan time for the largest node ever planned, serves every node;
// forward and backward_input allocate nothing.
#include <cstdint>
#include <memory>

#include "engine/backend.h"
#include "kernels/cpu/cpu_backend.h"

namespace deepinside::cpu_fast {

class CpuFastBackend final : public Backend {
 public:
  CpuFastBackend();
  std::string name() const override { return "cpu"; }
  bool supports(OpKind kind) const override { return reference_.supports(kind); }
  // Conv absorbs a following Relu: rectified in the GEMM / Winograd store, masked gradient in backward.
  bool fuses_relu(const Node& node) const override { return node.kind == OpKind::Conv; }
  void plan_saved(const Node& node, std::span<const Shape* const> input_shapes, const Shape& output_shape,
                  NodeSaved& saved) override;
  // Conv weights of 3x3 layers on the Winograd path: transformed once here, not in every pass.
  void prepare_constants(const Node& node, std::span<const Tensor* const> in, std::span<const bool> is_constant,
                         NodeSaved& saved) override;
  void forward(const Node& node, std::span<const Tensor* const> in, Tensor& out, NodeSaved& saved) override;
  void backward_input(const Node& node, BackwardRule rule, std::span<const Tensor* const> in, const Tensor& out,
                      const Tensor& grad_out, std::span<Tensor* const> grad_in, const NodeSaved& saved) override;

  int threads() const;
  int64_t workspace_floats() const { return workspace_size_; }

 private:
  // The planned workspace; throws if a node needs more than was planned (a Session bug).
  float* workspace(int64_t floats, const Node& node);

  cpu::CpuReferenceBackend reference_;
  struct FreeDeleter {
    void operator()(float* p) const;
  };
  std::unique_ptr<float, FreeDeleter> workspace_;
  int64_t workspace_size_ = 0;
};

}  // namespace deepinside::cpu_fast
