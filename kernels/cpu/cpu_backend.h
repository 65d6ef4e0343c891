#pragma once
// The CPU reference backend ("cpu-reference"): dispatches each node to the plain loops of
// kernels/cpu/reference.h. The fast "cpu" backend (kernels/cpu_fast) is tested against it.
#include "engine/backend.h"

namespace deepinside::cpu {

class CpuReferenceBackend final : public Backend {
 public:
  std::string name() const override { return "cpu-reference"; }
  bool supports(OpKind kind) const override;
  void plan_saved(const Node& node, std::span<const Shape* const> input_shapes, const Shape& output_shape,
                  NodeSaved& saved) override;
  void forward(const Node& node, std::span<const Tensor* const> in, Tensor& out, NodeSaved& saved) override;
  void backward_input(const Node& node, BackwardRule rule, std::span<const Tensor* const> in, const Tensor& out,
                      const Tensor& grad_out, std::span<Tensor* const> grad_in, const NodeSaved& saved) override;
};

}  // namespace deepinside::cpu
