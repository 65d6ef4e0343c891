#include "engine/session.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>

#include "engine/error.h"
#include "engine/op_params.h"
#include "engine/shape_inference.h"

namespace deepinside {

namespace {

// Zeroes a gradient buffer, with every core for large ones (memory-bound; OpenMP where built with it).
void zero_fill(Tensor& t) {
  float* p = t.data();
  const int64_t n = t.numel();
#pragma omp parallel for simd schedule(static) if (n >= (int64_t(1) << 16))
  for (int64_t i = 0; i < n; ++i) p[i] = 0.0f;
}

}  // namespace

const char* rule_name(BackwardRule rule) {
  switch (rule) {
    case BackwardRule::gradient: return "gradient";
    case BackwardRule::deconvnet: return "deconvnet";
    case BackwardRule::guided: return "guided";
  }
  return "?";
}

BackwardRule parse_rule(const std::string& name) {
  if (name == "gradient") return BackwardRule::gradient;
  if (name == "deconvnet") return BackwardRule::deconvnet;
  if (name == "guided") return BackwardRule::guided;
  throw Error("unknown backward rule '" + name + "' (use gradient, deconvnet or guided)");
}

Tensor Session::make_buffer(const Shape& shape) const {
  return runtime_ ? Tensor(shape, *runtime_) : Tensor(shape);
}

const Tensor& Session::backend_value(int value_id) const {
  const Value& v = graph_.value(value_id);
  if (!v.is_constant()) return values_.at(value_id);
  return runtime_ ? device_constants_.at(value_id) : *v.constant;
}

const Tensor& Session::host_view(const Tensor& t, Tensor& cache, char& valid) const {
  if (!runtime_) return t;
  if (!valid) {
    if (cache.shape() != t.shape() || cache.numel() != t.numel()) cache = Tensor(t.shape());
    cache.copy_from(t);
    valid = 1;
  }
  return cache;
}

void Session::zero(Tensor& t) {
  if (runtime_)
    t.fill(0.0f);  // an asynchronous memset on the device's stream
  else
    zero_fill(t);
}

Session::Session(const Graph& graph, Backend& backend, const Shape& input_shape, const SessionOptions& options)
    : graph_(graph), backend_(backend), runtime_(backend.device_runtime()) {
  const Value& input = graph.value(graph.input());
  const Shape& declared = input.declared_shape;
  if (!declared.empty()) {
    require(declared.size() == input_shape.size(),
            "input '" + input.name + "' expects rank " + std::to_string(declared.size()) +
                " (" + shape_to_string(declared) + "), got " + shape_to_string(input_shape));
    for (size_t i = 0; i < declared.size(); ++i)
      require(declared[i] < 0 || declared[i] == input_shape[i],
              "input '" + input.name + "' expects shape " + shape_to_string(declared) + ", got " +
                  shape_to_string(input_shape));
  }
  for (const Node& node : graph.nodes())
    require(backend.supports(node.kind), std::string("op ") + op_name(node.kind) + " (node '" +
                                             node.name + "') is not available on backend '" +
                                             backend.name() + "'");
  shapes_ = infer_graph_shapes(graph, input_shape);
  saved_.resize(graph.nodes().size());
  plan_fusion(options);

  const int n_values = graph.value_count();
  values_.resize(n_values);
  grads_.resize(n_values);
  depends_on_input_.assign(n_values, false);
  depends_on_input_[graph.input()] = true;
  values_[graph.input()] = make_buffer(input_shape);
  if (runtime_) {
    device_constants_.resize(n_values);
    host_values_.resize(n_values);
    host_grads_.resize(n_values);
    host_value_valid_.assign(n_values, 0);
    host_grad_valid_.assign(n_values, 0);
    for (const Node& node : graph.nodes())
      for (int in : node.inputs)
        if (in >= 0 && graph.value(in).is_constant() && device_constants_[in].empty()) {
          device_constants_[in] = make_buffer(graph.value(in).constant->shape());
          device_constants_[in].copy_from(*graph.value(in).constant);
        }
  }
  for (const Node& node : graph.nodes()) {
    const int out = node.outputs[0];
    if (fused_into_[out] < 0 && slice_of_[out].first < 0) values_[out] = make_buffer(shapes_[out]);
    for (int in : node.inputs)
      if (in >= 0 && depends_on_input_[in]) depends_on_input_[out] = true;
  }
  for (int v = 0; v < n_values; ++v)  // zero-copy Concat inputs: slices of its output
    if (slice_of_[v].first >= 0)
      values_[v] = Tensor::view(values_[slice_of_[v].first].data() + slice_of_[v].second, shapes_[v]);

  grad_zeroed_.assign(n_values, 0);
  bindings_.resize(graph.nodes().size());
  std::vector<const Shape*> in_shapes;
  for (size_t n = 0; n < graph.nodes().size(); ++n) {
    const Node& node = graph.nodes()[n];
    NodeBinding& b = bindings_[n];
    in_shapes.clear();
    const size_t n_in = node.inputs.size();
    std::unique_ptr<bool[]> is_constant(new bool[n_in]);  // (a vector<bool> has no span)
    bool any_constant = false;
    for (size_t i = 0; i < n_in; ++i) {
      const int in = node.inputs[i];
      b.in.push_back(in < 0 ? nullptr : &backend_value(in));
      in_shapes.push_back(in < 0 ? nullptr : &shapes_[in]);
      is_constant[i] = in >= 0 && graph.value(in).is_constant();
      any_constant = any_constant || is_constant[i];
    }
    backend.plan_saved(node, in_shapes, shapes_[node.outputs[0]], saved_[n]);
    if (any_constant)
      backend.prepare_constants(node, b.in, std::span<const bool>(is_constant.get(), n_in), saved_[n]);
  }
}

void Session::plan_fusion(const SessionOptions& options) {
  const auto& nodes = graph_.nodes();
  const int n_values = graph_.value_count();
  skip_.assign(nodes.size(), 0);
  output_of_.resize(nodes.size());
  for (size_t n = 0; n < nodes.size(); ++n) output_of_[n] = nodes[n].outputs[0];
  fused_into_.assign(n_values, -1);
  slice_of_.assign(n_values, {-1, 0});
  if (!options.fuse || runtime_) return;

  // How often each value is a node input (twice in one node counts twice), and its producer.
  std::vector<int> uses(n_values, 0), producer(n_values, -1);
  for (size_t n = 0; n < nodes.size(); ++n) {
    for (int in : nodes[n].inputs)
      if (in >= 0) ++uses[in];
    producer[nodes[n].outputs[0]] = int(n);
  }
  std::vector<char> pinned(n_values, 0);  // must keep a buffer of their own
  for (int v : graph_.outputs()) pinned[v] = 1;
  pinned[graph_.input()] = 1;
  for (int v : options.keep)
    if (v >= 0 && v < n_values) pinned[v] = 1;

  // A Relu absorbed by the node that produces its input.
  for (size_t r = 0; r < nodes.size(); ++r) {
    const Node& relu = nodes[r];
    if (relu.kind != OpKind::Relu || relu.inputs.size() != 1) continue;
    const int v = relu.inputs[0];
    if (v < 0 || pinned[v] || uses[v] != 1 || graph_.value(v).is_constant()) continue;
    const int p = producer[v];
    if (p < 0 || skip_[p] || nodes[p].outputs.size() != 1 || !backend_.fuses_relu(nodes[p])) continue;
    skip_[r] = 1;
    output_of_[p] = relu.outputs[0];
    fused_into_[v] = p;
    saved_[p].relu_fused = true;
    ++fused_relus_;
  }

  // A Concat whose output is, in memory, its inputs one after another (nothing but 1s before the
  // axis): each input is written in place, as a slice of the output.
  for (size_t c = 0; c < nodes.size(); ++c) {
    const Node& cat = nodes[c];
    if (cat.kind != OpKind::Concat) continue;
    const Shape& out_shape = shapes_[cat.outputs[0]];
    int axis = std::get<AxisParams>(cat.params).axis;
    if (axis < 0) axis += int(out_shape.size());
    int64_t outer = 1;
    for (int i = 0; i < axis; ++i) outer *= out_shape[i];
    bool slices = outer == 1;
    for (int in : cat.inputs)
      slices = slices && in >= 0 && in != graph_.input() && !graph_.value(in).is_constant() && uses[in] == 1 &&
               producer[in] >= 0 && nodes[producer[in]].kind != OpKind::Concat && fused_into_[in] < 0;
    if (!slices) continue;
    int64_t offset = 0;
    for (int in : cat.inputs) {
      slice_of_[in] = {cat.outputs[0], offset};
      offset += shape_numel(shapes_[in]);
    }
    skip_[c] = 1;
    ++zero_copy_concats_;
  }
}

Tensor& Session::gradient_buffer(int value_id) {
  Tensor& g = grads_[value_id];
  if (!g.empty() && g.shape() == shapes_[value_id]) return g;
  const auto [whole, offset] = slice_of_[value_id];
  if (whole >= 0)
    g = Tensor::view(gradient_buffer(whole).data() + offset, shapes_[value_id]);
  else
    g = make_buffer(shapes_[value_id]);
  return g;
}

void Session::require_not_fused(int value_id, const char* what) const {
  const int node = fused_into_.at(value_id);
  if (node < 0) return;
  throw Error(std::string(what) + ": value '" + graph_.value(value_id).name + "' was fused into node '" +
                        graph_.nodes()[node].name +
                        "' (the session was planned with SessionOptions::fuse; list the value in keep)");
}

void Session::set_node_timing(bool on) {
  node_timing_ = on;
  forward_seconds_.assign(graph_.nodes().size(), 0.0);
  backward_seconds_.assign(graph_.nodes().size(), 0.0);
}

const Tensor& Session::value(int value_id) const {
  require(value_id >= 0 && value_id < graph_.value_count(), "value id out of range");
  require_not_fused(value_id, "value()");
  const Value& v = graph_.value(value_id);
  if (v.is_constant()) return *v.constant;
  if (!runtime_) return values_.at(value_id);
  return host_view(values_.at(value_id), host_values_[value_id], host_value_valid_[value_id]);
}

const Tensor& Session::value(const std::string& name) const {
  const int id = graph_.find_value(name);
  require(id >= 0, "no value named '" + name + "'");
  return value(id);
}

void Session::set_graph_replay(bool on) {
  graph_replay_ = on;
  forward_graph_.reset();
  backward_graphs_.clear();
}

template <class Work>
void Session::run_captured(std::unique_ptr<CapturedWork>& slot, Work work) {
  if (!slot) {
    runtime_->begin_capture();
    try {
      work();
    } catch (...) {
      runtime_->end_capture();  // leave the stream usable; the partial graph is dropped
      throw;
    }
    slot = runtime_->end_capture();
    require(slot != nullptr, "graph capture returned no graph");
  }
  slot->replay();
  ++graph_replays_;
}

void Session::forward(const Tensor& input) {
  require(input.shape() == input_shape(), "input has shape " + shape_to_string(input.shape()) +
                                              ", the session was planned for " +
                                              shape_to_string(input_shape()));
  values_[graph_.input()].copy_from(input);  // an upload on a device backend
  if (runtime_) std::fill(host_value_valid_.begin(), host_value_valid_.end(), char(0));
  // The first pass runs eagerly; later ones replay one captured graph.
  const bool capture = graph_replay_ && !node_timing_ && runtime_ && runtime_->can_capture() && forward_done_;
  if (capture)
    run_captured(forward_graph_, [this] { run_forward_nodes(); });
  else
    run_forward_nodes();
  forward_done_ = true;
}

void Session::run_forward_nodes() {
  const auto& nodes = graph_.nodes();
  for (size_t n = 0; n < nodes.size(); ++n) {
    if (skip_[n]) continue;
    if (node_timing_ && runtime_) runtime_->synchronize();
    const auto t0 = node_timing_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
    backend_.forward(nodes[n], bindings_[n].in, values_[output_of_[n]], saved_[n]);
    if (node_timing_ && runtime_) runtime_->synchronize();
    if (node_timing_)
      forward_seconds_[n] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
}

const Session::BackwardPlan& Session::backward_plan(int seed_id) {
  auto found = backward_plans_.find(seed_id);
  if (found != backward_plans_.end()) return found->second;
  // Nodes that lie on a path input -> seed, found by walking producers back from the seed. A fused
  // Relu is passed over (its producer writes the same value); a zero-copy Concat runs nothing but
  // its inputs are on the path.
  const auto& nodes = graph_.nodes();
  std::vector<char> needed_value(graph_.value_count(), 0);
  needed_value[seed_id] = 1;
  BackwardPlan plan;
  for (int n = int(nodes.size()) - 1; n >= 0; --n) {
    const Node& node = nodes[n];
    const int out = output_of_[n];
    if (!needed_value[out] || !depends_on_input_[out]) continue;
    if (skip_[n] && node.kind == OpKind::Relu) continue;
    if (!skip_[n]) plan.nodes.push_back(n);
    for (int in : node.inputs)
      if (in >= 0 && depends_on_input_[in]) needed_value[in] = 1;
  }
  needed_value[graph_.input()] = 1;
  plan.on_path = std::move(needed_value);
  // Gradient buffers for every value on the path, allocated once.
  for (int v = 0; v < graph_.value_count(); ++v)
    if (plan.on_path[v]) gradient_buffer(v);
  for (int n : plan.nodes) {
    const Node& node = nodes[n];
    NodeBinding& b = bindings_[n];
    b.grad_in.assign(node.inputs.size(), nullptr);
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      const int in = node.inputs[i];
      if (in >= 0 && depends_on_input_[in]) b.grad_in[i] = &grads_[in];
    }
  }
  return backward_plans_.emplace(seed_id, std::move(plan)).first->second;
}

const Tensor& Session::backward_input(int seed_id, const Tensor& seed, BackwardRule rule) {
  require(forward_done_, "backward_input needs a forward pass first");
  require(seed_id >= 0 && seed_id < graph_.value_count(), "seed value id out of range");
  require_not_fused(seed_id, "backward_input");
  require(depends_on_input_[seed_id], "value '" + graph_.value(seed_id).name +
                                          "' does not depend on the input");
  require(seed.shape() == shapes_[seed_id], "seed has shape " + shape_to_string(seed.shape()) +
                                                ", value '" + graph_.value(seed_id).name +
                                                "' has shape " + shape_to_string(shapes_[seed_id]));
  const bool planned = backward_plans_.count(seed_id) > 0;
  backward_plan(seed_id);  // allocates this seed's gradient buffers the first time (never captured)
  last_seed_ = seed_id;
  grads_[seed_id].copy_from(seed);  // an upload on a device backend
  if (runtime_) std::fill(host_grad_valid_.begin(), host_grad_valid_.end(), char(0));
  if (node_timing_) std::fill(backward_seconds_.begin(), backward_seconds_.end(), 0.0);
  const bool capture = graph_replay_ && !node_timing_ && runtime_ && runtime_->can_capture() && planned;
  if (capture)
    run_captured(backward_graphs_[{seed_id, int(rule)}], [this, seed_id, rule] { run_backward_nodes(seed_id, rule); });
  else
    run_backward_nodes(seed_id, rule);
  return gradient(graph_.input());
}

void Session::run_backward_nodes(int seed_id, BackwardRule rule) {
  const std::vector<int>& plan = backward_plans_.at(seed_id).nodes;
  const auto& nodes = graph_.nodes();
  // Each gradient buffer is zeroed just before the first node that accumulates into it, while it is
  // about to be used (cache-warm), rather than all of them up front.
  std::fill(grad_zeroed_.begin(), grad_zeroed_.end(), char(0));
  grad_zeroed_[seed_id] = 1;
  for (int n : plan) {
    const Node& node = nodes[n];
    const int out = output_of_[n];
    if (node_timing_ && runtime_) runtime_->synchronize();
    const auto t0 = node_timing_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
    for (size_t i = 0; i < node.inputs.size(); ++i)
      if (bindings_[n].grad_in[i] && !grad_zeroed_[node.inputs[i]]) {
        zero(*bindings_[n].grad_in[i]);
        grad_zeroed_[node.inputs[i]] = 1;
      }
    backend_.backward_input(node, rule, bindings_[n].in, values_[out], grads_[out],
                            bindings_[n].grad_in, saved_[n]);
    if (node_timing_ && runtime_) runtime_->synchronize();
    if (node_timing_)
      backward_seconds_[n] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  if (!grad_zeroed_[graph_.input()]) zero(grads_[graph_.input()]);
}

const Tensor& Session::gradient(int value_id) const {
  require(value_id >= 0 && value_id < graph_.value_count(), "value id out of range");
  require(last_seed_ >= 0, "gradient() needs a backward_input pass first");
  require_not_fused(value_id, "gradient()");
  const BackwardPlan& plan = backward_plans_.at(last_seed_);
  require(plan.on_path[value_id] && !grads_[value_id].empty(), "value '" + graph_.value(value_id).name +
                                                                   "' is not on the path from the input to the seed value");
  if (!runtime_) return grads_[value_id];
  return host_view(grads_[value_id], host_grads_[value_id], host_grad_valid_[value_id]);
}

}  // namespace deepinside
