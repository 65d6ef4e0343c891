#pragma once
// Session: binds a Graph to a Backend for one input shape. Every buffer (activations, switches,
// LRN scales, gradients) is planned once in the constructor; forward and backward_input allocate
// nothing. forward keeps what backward needs; backward_input seeds any value and propagates the
// gradient down to the input.
//
// On a device backend (backend.device_runtime() != nullptr) every internal buffer, the graph's
// constants included, lives in device memory, allocated here once; forward uploads the input,
// backward_input uploads the seed. The public API stays host-facing: value(), gradient() and the
// tensor backward_input returns are host copies, downloaded on first access after each pass.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/graph.h"

namespace deepinside {

// How a Session may lay out its passes (docs/fusion.md). Off by default: every value keeps its own
// buffer and every node runs. With fuse, on a host backend, two rewrites that change no number:
//  - a node whose only consumer is a Relu and which the backend fuses_relu (cpu: Conv) writes the
//    rectified output itself and takes the Relu's rule in its backward; the Relu does not run. The
//    value between them then has no buffer: value(), gradient() and seeding it throw;
//  - a Concat whose output has only 1s before its axis (batch 1 along channels) and whose inputs
//    are each used by it alone gets them as slices of its own buffer, forward and gradient: it
//    copies nothing, and does not run. Those values stay readable.
// Values listed in keep (and the graph's outputs) are never fused away.
struct SessionOptions {
  bool fuse = false;
  std::vector<int> keep;
};

class Session {
 public:
  Session(const Graph& graph, Backend& backend, const Shape& input_shape, const SessionOptions& options = {});

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const Graph& graph() const { return graph_; }
  // The backend the session runs on (for methods that call its per-node forward/backward_input on
  // the session's values, e.g. viz/lrp).
  Backend& backend() const { return backend_; }
  const Shape& input_shape() const { return shapes_[graph_.input()]; }
  const Shape& shape(int value_id) const { return shapes_.at(value_id); }

  // Runs every node. input must have the planned shape.
  void forward(const Tensor& input);

  // The value after forward (activations, or a constant); a host tensor on every backend.
  const Tensor& value(int value_id) const;
  const Tensor& value(const std::string& name) const;
  // What node_index's forward kept, in the backend's memory (device tensors on a device backend).
  const NodeSaved& saved(int node_index) const { return saved_.at(node_index); }

  // Back-propagates seed = d(loss)/d(value seed_id) (shape of that value) through the nodes between
  // the input and seed_id with the given rectifier rule; returns d(loss)/d(input). Needs forward first.
  const Tensor& backward_input(int seed_id, const Tensor& seed, BackwardRule rule);

  // After backward_input: d(loss)/d(value) for any value on a path from the input to the seed
  // (intermediate activations, e.g. a conv layer's output for Grad-CAM). Throws Error otherwise.
  const Tensor& gradient(int value_id) const;

  // Graph replay (device backends whose runtime can capture: CUDA graphs; the emulation records):
  // after a pass has run once eagerly (which plans its buffers), the next identical pass - forward,
  // or backward_input for one seed value and rule - is captured once and then replayed as one
  // launch. Off by default; node timing turns it off while on.
  void set_graph_replay(bool on);
  int graph_replays() const { return graph_replays_; }  // passes replayed so far (tests, bench)

  // What fusion did (SessionOptions): Relu nodes absorbed by their producer, Concats that copy
  // nothing, and for one node whether it does not run (fused or zero-copy: its time is 0).
  int fused_relus() const { return fused_relus_; }
  int zero_copy_concats() const { return zero_copy_concats_; }
  bool node_skipped(int node_index) const { return skip_.at(node_index) != 0; }
  // Whether a value has no buffer of its own because fusion removed it.
  bool fused_away(int value_id) const { return fused_into_.at(value_id) >= 0; }

  // Per-node wall time (seconds) of the last forward and backward_input, indexed like
  // graph().nodes(); 0 for nodes a pass did not run (skipped ones included). Off by default (the
  // benchmark's --layers).
  void set_node_timing(bool on);
  const std::vector<double>& forward_seconds() const { return forward_seconds_; }
  const std::vector<double>& backward_seconds() const { return backward_seconds_; }

 private:
  struct NodeBinding {
    std::vector<const Tensor*> in;
    std::vector<Tensor*> grad_in;  // nullptr where the input needs no gradient
  };
  struct BackwardPlan {
    std::vector<int> nodes;     // node indices, in reverse order
    std::vector<char> on_path;  // per value: has a gradient after this seed's pass
  };
  const BackwardPlan& backward_plan(int seed_id);
  Tensor make_buffer(const Shape& shape) const;  // host or device memory, per the backend
  // Decides the fused Relus and zero-copy Concats (fills skip_, output_of_, fused_into_, slice_of_).
  void plan_fusion(const SessionOptions& options);
  // The gradient buffer of value_id, allocated (or made a slice of its Concat's) the first time.
  Tensor& gradient_buffer(int value_id);
  // Throws Error if value_id was fused away.
  void require_not_fused(int value_id, const char* what) const;
  // The tensor the backend reads for value_id: an activation, or a constant (its device copy on a
  // device backend).
  const Tensor& backend_value(int value_id) const;
  // t itself on a host backend; else its host copy in cache, downloaded once per pass.
  const Tensor& host_view(const Tensor& t, Tensor& cache, char& valid) const;
  void zero(Tensor& t);
  void run_forward_nodes();
  void run_backward_nodes(int seed_id, BackwardRule rule);
  // Runs work eagerly, or through the captured graph in slot (capturing it first when empty).
  template <class Work>
  void run_captured(std::unique_ptr<CapturedWork>& slot, Work work);

  const Graph& graph_;
  Backend& backend_;
  DeviceRuntime* runtime_ = nullptr;  // nullptr: host backend
  std::vector<Shape> shapes_;
  std::vector<Tensor> values_;  // activations by value id (empty for constants)
  std::vector<Tensor> grads_;   // gradients by value id, for values that depend on the input
  std::vector<NodeSaved> saved_;
  std::vector<Tensor> device_constants_;  // device backends: the graph's constants, uploaded once
  // Device backends: host copies of values and gradients, and whether they are current.
  mutable std::vector<Tensor> host_values_, host_grads_;
  mutable std::vector<char> host_value_valid_, host_grad_valid_;
  std::vector<NodeBinding> bindings_;
  std::vector<bool> depends_on_input_;
  std::vector<char> grad_zeroed_;  // per value, during backward_input: zeroed in this pass yet?
  std::map<int, BackwardPlan> backward_plans_;  // by seed value
  // Fusion (plan_fusion): per node, whether it does not run and the value it writes (a fused
  // producer writes its Relu's output); per value, the node it was fused into (-1: none), and for a
  // zero-copy Concat's input {the Concat's output, offset in floats} ({-1, 0}: none).
  std::vector<char> skip_;
  std::vector<int> output_of_;
  std::vector<int> fused_into_;
  std::vector<std::pair<int, int64_t>> slice_of_;
  int fused_relus_ = 0, zero_copy_concats_ = 0;
  bool forward_done_ = false;
  int last_seed_ = -1;
  bool node_timing_ = false;
  bool graph_replay_ = false;
  int graph_replays_ = 0;
  std::unique_ptr<CapturedWork> forward_graph_;
  std::map<std::pair<int, int>, std::unique_ptr<CapturedWork>> backward_graphs_;  // (seed value, rule)
  std::vector<double> forward_seconds_, backward_seconds_;
};

}  // namespace deepinside
