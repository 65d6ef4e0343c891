#include "viz/sanity.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "engine/error.h"
#include "viz/cam.h"
#include "viz/compare.h"
#include "viz/layers.h"
#include "viz/scores.h"

namespace deepinside::viz {

const std::vector<std::string>& sanity_method_names() {
  static const std::vector<std::string> names = {"gradient",   "deconvnet", "guided",  "smoothgrad",
                                                 "gradxinput", "ig",        "gradcam", "guided-gradcam"};
  return names;
}

std::vector<int> layers_top_down(const Model& model) {
  const Graph& g = model.graph;
  const std::vector<bool> on_path = values_between_input_and(g, model.scores_value);
  std::vector<int> out;
  for (int n = int(g.nodes().size()) - 1; n >= 0; --n) {
    const Node& node = g.nodes()[n];
    if (!on_path[node.outputs[0]]) continue;
    if (node.kind != OpKind::Conv && node.kind != OpKind::Gemm && node.kind != OpKind::MatMul) continue;
    const bool has_weights = std::any_of(node.inputs.begin(), node.inputs.end(), [&](int in) {
      return in >= 0 && g.value(in).is_constant() && g.value(in).constant->numel() > 1;
    });
    if (has_weights) out.push_back(n);
  }
  return out;
}

void randomize_layer(Graph& graph, int node_index, uint64_t seed) {
  const Node& node = graph.nodes().at(node_index);
  for (size_t slot = 0; slot < node.inputs.size(); ++slot) {
    const int in = node.inputs[slot];
    if (in < 0 || !graph.value(in).is_constant()) continue;
    Tensor& t = *graph.value(in).constant;
    const int64_t n = t.numel();
    double mean = 0, var = 0;
    for (int64_t i = 0; i < n; ++i) mean += t[i];
    mean /= double(n);
    for (int64_t i = 0; i < n; ++i) var += (t[i] - mean) * (t[i] - mean);
    const double sd = std::sqrt(var / double(n));
    // Zero-mean normal truncated at 2 sd (the initialisers Adebayo et al. re-drew from): draws beyond
    // are redrawn from further streams of the same seed.
    const uint64_t stream = 0x5a17u + uint64_t(node_index) * 16 + slot;
    std::vector<float> z(n), redraw(n);
    gaussian_fill(seed, stream, z.data(), n);
    for (uint64_t round = 1;; ++round) {
      bool again = false;
      for (int64_t i = 0; i < n && !again; ++i) again = std::fabs(z[i]) > 2.0f;
      if (!again) break;
      gaussian_fill(seed, stream + (round << 40), redraw.data(), n);
      for (int64_t i = 0; i < n; ++i)
        if (std::fabs(z[i]) > 2.0f) z[i] = redraw[i];
    }
    for (int64_t i = 0; i < n; ++i) t[i] = float(sd * z[i]);
  }
}

std::vector<Tensor> sanity_maps(const Model& model, Backend& backend, const Tensor& image, int cls,
                                const SanityOptions& o) {
  check_class_index(cls, model);
  const int C = model.channels, H = model.height, W = model.width;
  for (const std::string& m : o.methods)
    require(std::find(sanity_method_names().begin(), sanity_method_names().end(), m) != sanity_method_names().end(),
            "unknown method '" + m + "' for the sanity check (methods: gradient, deconvnet, guided, smoothgrad, "
            "gradxinput, ig, gradcam, guided-gradcam)");
  const auto uses = [&](const char* name) { return std::find(o.methods.begin(), o.methods.end(), name) != o.methods.end(); };

  // Sessions planned on the current weights (planned afresh each call: a backend may prepare weights
  // at plan time). One image at a time, and a bounded batch for SmoothGrad and IG.
  BatchedGradients single(model, backend, 1);
  std::unique_ptr<BatchedGradients> many;
  if (uses("smoothgrad") || uses("ig")) {
    int b = 1;
    if (uses("smoothgrad")) b = std::max(b, balanced_batch(o.smoothgrad.samples, o.batch));
    if (uses("ig")) b = std::max(b, balanced_batch(o.ig.steps, o.batch));
    many = std::make_unique<BatchedGradients>(model, backend, b);
  }
  const auto copy_image = [&](int64_t, float* chw) { std::memcpy(chw, image.data(), sizeof(float) * image.numel()); };
  const auto gradient_map = [&](BackwardRule rule) {
    Tensor map;
    single.gradients(1, copy_image, cls, rule, [&](int64_t, const float* g) { map = max_abs_map(g, C, H, W); });
    return map;
  };
  Tensor input = image.clone();
  input.reshape({1, C, H, W});
  const int layer = o.gradcam_layer >= 0 ? o.gradcam_layer
                    : (uses("gradcam") || uses("guided-gradcam")) ? default_gradcam_layer(model)
                                                                  : -1;

  std::vector<Tensor> maps;
  for (const std::string& m : o.methods) {
    if (m == "gradient") maps.push_back(gradient_map(BackwardRule::gradient));
    else if (m == "deconvnet") maps.push_back(gradient_map(BackwardRule::deconvnet));
    else if (m == "guided") maps.push_back(gradient_map(BackwardRule::guided));
    else if (m == "smoothgrad") maps.push_back(smoothgrad(*many, image, cls, o.smoothgrad).map);
    else if (m == "gradxinput") maps.push_back(gradient_x_input(single, image, cls, BackwardRule::gradient).map);
    else if (m == "ig") maps.push_back(integrated_gradients(*many, image, Tensor(image.shape()), cls, o.ig).map);
    else if (m == "gradcam") maps.push_back(grad_cam(single.session(), model, input, cls, layer).map);
    else if (m == "guided-gradcam") maps.push_back(guided_grad_cam(single.session(), model, input, cls, layer).guided_map);
  }
  return maps;
}

namespace {

// Puts the trained weights back however the cascade ends.
class WeightsGuard {
 public:
  explicit WeightsGuard(Graph& g) : graph_(g) {}
  void keep(int node_index) {
    for (int in : graph_.nodes()[node_index].inputs)
      if (in >= 0 && graph_.value(in).is_constant() &&
          std::none_of(saved_.begin(), saved_.end(), [in](const auto& s) { return s.first == in; }))
        saved_.emplace_back(in, graph_.value(in).constant->clone());
  }
  ~WeightsGuard() {
    for (auto& [id, t] : saved_) *graph_.value(id).constant = std::move(t);
  }

 private:
  Graph& graph_;
  std::vector<std::pair<int, Tensor>> saved_;
};

}  // namespace

SanityReport cascading_randomization(Model& model, Backend& backend, const Tensor& image, int cls,
                                     const SanityOptions& o,
                                     const std::function<void(int, const std::vector<Tensor>&)>& on_maps) {
  require(!o.methods.empty(), "no methods to check");
  SanityReport report;
  report.methods = o.methods;
  if (cls < 0) {
    BatchedGradients runner(model, backend, 1);
    cls = class_and_score(runner, image, -1).first;
  }
  check_class_index(cls, model);
  report.cls = cls;
  const std::vector<int> layers = layers_top_down(model);
  require(!layers.empty(), "the model has no layer with weights to randomise");
  const int depth = o.depth < 0 ? int(layers.size()) : std::min<int>(o.depth, int(layers.size()));

  const std::vector<Tensor> trained = sanity_maps(model, backend, image, cls, o);
  if (on_maps) on_maps(0, trained);
  report.steps.push_back({"", std::vector<double>(o.methods.size(), 1.0)});

  WeightsGuard guard(model.graph);
  for (int step = 1; step <= depth; ++step) {
    const int node = layers[step - 1];
    guard.keep(node);
    randomize_layer(model.graph, node, o.seed);
    const std::vector<Tensor> maps = sanity_maps(model, backend, image, cls, o);
    SanityStep s{model.graph.nodes()[node].name, {}};
    for (size_t m = 0; m < maps.size(); ++m)
      s.rho.push_back(spearman(maps[m].data(), trained[m].data(), maps[m].numel()));
    report.steps.push_back(std::move(s));
    if (on_maps) on_maps(step, maps);
  }
  return report;
}

}  // namespace deepinside::viz
