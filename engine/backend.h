#pragma once
// The Backend interface: every op's forward and input-gradient on one device. Backends are chosen
// at run time by name ("cpu", "cpu-reference"; "cuda" and "cudnn" in CUDA builds). Nothing falls
// back silently: an op a backend lacks is an Error naming op and backend.
#include <memory>
#include <span>
#include <string>

#include "engine/device.h"
#include "engine/graph.h"
#include "engine/tensor.h"

namespace deepinside {

// How the rectifier passes a gradient back (paper Sec. 5; DESIGN.md Sec. 3). Only Relu reads it.
enum class BackwardRule {
  gradient,   // g_in = g_out * [x_in > 0]
  deconvnet,  // g_in = g_out * [g_out > 0]
  guided,     // g_in = g_out * [x_in > 0] * [g_out > 0]
};

const char* rule_name(BackwardRule rule);
BackwardRule parse_rule(const std::string& name);  // throws Error on an unknown name

// What a node's forward keeps for its backward, allocated once at plan time (in the backend's device
// memory for a device backend: read it with to_host()).
struct NodeSaved {
  IndexTensor switches;  // MaxPool: (N,C,OH,OW) index h*W+w of the chosen input in its plane
  Tensor scale;          // LRN: (N,C,...) the denominator base k + alpha/n * sum x^2
  // A backend's own form of the node's constant inputs, made once at plan time by
  // Backend::prepare_constants (cpu: the Winograd transform of 3x3 conv weights, (16,M,C)); empty
  // if none. Valid only for the tensor it was made from (prepared_from) while that tensor holds the
  // values it held then (prepared_fingerprint, a hash of sampled values); a call with other weights
  // (LRP's z+ variants) ignores it.
  Tensor prepared;
  const Tensor* prepared_from = nullptr;
  uint64_t prepared_fingerprint = 0;
  // Set by a fusing Session before plan_saved (backend said fuses_relu): the node's only consumer is
  // a Relu, which the session no longer runs. forward writes max(0, op(in)) (the Relu's output);
  // backward_input receives that output and d(loss)/d(Relu output) and applies the rule's rectifier
  // mask to it first (gradient: out > 0, which is in > 0; deconvnet: grad > 0; guided: both).
  bool relu_fused = false;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual bool supports(OpKind kind) const = 0;
  // The device whose memory this backend's kernels read and write; nullptr for host backends. A
  // Session on a device backend keeps every buffer (activations, saved state, gradients, the
  // graph's constants) in this runtime's memory.
  virtual DeviceRuntime* device_runtime() { return nullptr; }
  // Whether this node can absorb a following Relu (NodeSaved::relu_fused). Default: no.
  virtual bool fuses_relu(const Node& node) const { return false; }

  // Allocates node's saved state for these shapes (plan time, never inside a pass).
  virtual void plan_saved(const Node& node, std::span<const Shape* const> input_shapes,
                          const Shape& output_shape, NodeSaved& saved) = 0;

  // Prepares the node's constant inputs in the backend's own form, once per Session at plan time,
  // after plan_saved (in: the bound inputs, is_constant[i] for each). The Session's contract: the
  // constants a session was planned with do not change in place while it runs (viz/sanity plans a
  // new session after randomising weights). Default: nothing to prepare.
  virtual void prepare_constants(const Node& node, std::span<const Tensor* const> in,
                                 std::span<const bool> is_constant, NodeSaved& saved) {}

  // out = op(in). in[i] is nullptr for an omitted optional input.
  virtual void forward(const Node& node, std::span<const Tensor* const> in, Tensor& out,
                       NodeSaved& saved) = 0;

  // Adds d(loss)/d(in[i]) into *grad_in[i] for every i with grad_in[i] != nullptr, given
  // grad_out = d(loss)/d(out). The caller zeroes grad_in before the pass, so contributions of
  // several consumers of one value sum up.
  virtual void backward_input(const Node& node, BackwardRule rule, std::span<const Tensor* const> in,
                              const Tensor& out, const Tensor& grad_out,
                              std::span<Tensor* const> grad_in, const NodeSaved& saved) = 0;
};

// "cpu" (the fast CPU path) and "cpu-reference" (the plain loops every fast path is tested against)
// always; throws Error naming the backend and what builds have it otherwise.
std::unique_ptr<Backend> make_backend(const std::string& name);

}  // namespace deepinside
