// The visualisation methods on the small golden nets (tests/golden/methods, written by
// tests/golden/generate.py part C in float64 torch): SmoothGrad, gradient x input, Integrated
// Gradients, ten crops, Grad-CAM, CAM, Guided Grad-CAM and reconstructions; then the paper's Sec. 4
// identities, asserted bit for bit: the three rules differ only at the rectifier.
#include <cmath>
#include <fstream>
#include <random>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/model.h"
#include "engine/npy.h"
#include "engine/onnx_import.h"
#include "engine/session.h"
#include "engine/shape_inference.h"
#include "test_support.h"
#include "viz/cam.h"
#include "viz/compare.h"
#include "viz/layers.h"
#include "viz/reconstruct.h"
#include "viz/saliency_extras.h"
#include "viz/sanity.h"

using namespace deepinside;
using deepinside::test::source_path;

namespace {

// float32 engine against float64 references, as tests/test_golden.cpp: relative 1e-4, absolute
// 1e-5 of the reference's largest magnitude. The generator chose noise, paths and crops whose every
// ReLU input and max-pool gap is >= 1e-5 from a kink (README part C), so no branch flips.
constexpr double kRtol = 1e-4, kAtolFraction = 1e-5;

struct MethodsNet {
  Model model;
  Tensor image;  // (C,H,W): image 0 of the net's input.npy
  int cls = 0;
  nlohmann::json meta;
  std::string dir;
};

MethodsNet load(const std::string& name) {
  MethodsNet n;
  n.model = load_model(source_path("tests/golden/nets/" + name + "/model.onnx"), {});
  Tensor both = read_npy_tensor(source_path("tests/golden/nets/" + name + "/input.npy"));
  n.image = Tensor(Shape{both.dim(1), both.dim(2), both.dim(3)});
  std::copy(both.data(), both.data() + n.image.numel(), n.image.data());
  std::ifstream in(source_path("tests/golden/methods/meta.json"));
  n.meta = nlohmann::json::parse(in)["nets"].value(name, nlohmann::json::object());  // no_relu: none
  n.cls = int(read_npy(source_path("tests/golden/nets/" + name + "/classes.npy")).values[0]);
  n.dir = source_path("tests/golden/methods/" + name + "/");
  return n;
}

NpyArray golden(const MethodsNet& n, const std::string& file) { return read_npy(n.dir + file); }

void require_matches(const Tensor& got, const NpyArray& want) {
  REQUIRE(got.numel() == shape_numel(want.shape));
  REQUIRE(test::max_abs(want.values) > 0);
  REQUIRE_CLOSE(got.data(), want.values, got.numel(), kRtol, kAtolFraction * test::max_abs(want.values));
}

// The reference map of a (C,H,W) reference: max_c |a| or |sum_c a|.
std::vector<double> reference_map(const NpyArray& a, bool abs_sum) {
  const int64_t C = a.shape[0], HW = a.shape[1] * a.shape[2];
  std::vector<double> m(HW);
  for (int64_t i = 0; i < HW; ++i) {
    double best = 0, sum = 0;
    for (int64_t c = 0; c < C; ++c) best = std::max(best, std::fabs(a.values[c * HW + i])), sum += a.values[c * HW + i];
    m[i] = abs_sum ? std::fabs(sum) : best;
  }
  return m;
}

// A golden net as a bare graph (elementwise_matmul has a 2-channel input, which load_model refuses
// for images): the graph, its batch of two inputs, the scores value and the class count.
struct BareNet {
  Graph graph;
  Tensor input;
  int scores = -1, classes = 0;
};

BareNet load_bare(const std::string& name) {
  BareNet n{import_onnx_file(source_path("tests/golden/nets/" + name + "/model.onnx")),
            read_npy_tensor(source_path("tests/golden/nets/" + name + "/input.npy"))};
  n.scores = n.graph.default_scores_value();
  n.classes = int(shape_numel(infer_graph_shapes(n.graph, n.input.shape())[n.scores]) / n.input.dim(0));
  return n;
}

Tensor as_batch(const Tensor& chw) {
  Tensor t = chw.clone();
  t.reshape({1, chw.dim(0), chw.dim(1), chw.dim(2)});
  return t;
}

bool bit_identical(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return false;
  for (int64_t i = 0; i < a.numel(); ++i)
    if (!(a[i] == b[i])) return false;
  return true;
}

}  // namespace

// ---- each method against PyTorch -------------------------------------------------------------------

TEST_CASE("gradient x input matches PyTorch", "[methods][golden]") {
  const std::string net = GENERATE(as<std::string>{}, "alexnet_like", "fire_bn");
  const std::string backend_name = GENERATE(as<std::string>{}, "cpu", "cpu-reference");
  INFO(net << " on " << backend_name);
  const MethodsNet n = load(net);
  auto backend = make_backend(backend_name);
  viz::BatchedGradients runner(n.model, *backend, 1);
  const viz::Attribution r = viz::gradient_x_input(runner, n.image, n.cls, BackwardRule::gradient);
  REQUIRE(r.cls == n.cls);
  const NpyArray want = golden(n, "gradxinput.npy");
  require_matches(r.attribution, want);
  const std::vector<double> map = reference_map(want, true);
  REQUIRE_CLOSE(r.map.data(), map, r.map.numel(), kRtol, kAtolFraction * test::max_abs(map));
}

TEST_CASE("SmoothGrad with the generator's noise matches PyTorch, in chunks of any size", "[methods][golden]") {
  const std::string net = GENERATE(as<std::string>{}, "alexnet_like", "fire_bn");
  const int batch = GENERATE(1, 3, 8);  // 8 samples: one chunk, three (3+3+2, the last one partial), eight
  INFO(net << ", batch " << batch);
  const MethodsNet n = load(net);
  auto backend = make_backend("cpu");
  const Tensor noise = read_npy_tensor(n.dir + "smoothgrad_noise.npy");
  const int64_t each = n.image.numel();
  viz::SmoothGradOptions o;
  o.samples = int(noise.dim(0));
  o.noise_source = [&](int64_t i, float* eps) { std::copy_n(noise.data() + i * each, each, eps); };
  viz::BatchedGradients runner(n.model, *backend, batch);
  const viz::Attribution r = viz::smoothgrad(runner, n.image, n.cls, o);
  const NpyArray want = golden(n, "smoothgrad.npy");
  require_matches(r.attribution, want);
  const std::vector<double> map = reference_map(want, false);
  REQUIRE_CLOSE(r.map.data(), map, r.map.numel(), kRtol, kAtolFraction * test::max_abs(map));
}

TEST_CASE("Integrated Gradients matches PyTorch (zero and given baselines)", "[methods][golden]") {
  const std::string net = GENERATE(as<std::string>{}, "alexnet_like", "fire_bn");
  const std::string which = GENERATE(as<std::string>{}, "ig_zero", "ig_baseline");
  const MethodsNet n = load(net);
  if (!n.meta.contains(which)) return;  // fire_bn: no zero-baseline file (README part C says why)
  INFO(net << " " << which);
  auto backend = make_backend("cpu");
  const Tensor baseline =
      which == "ig_zero" ? Tensor(n.image.shape()) : read_npy_tensor(n.dir + "ig_baseline_input.npy");
  viz::IntegratedGradientsOptions o;
  o.steps = n.meta[which]["steps"];
  viz::BatchedGradients runner(n.model, *backend, 5);
  const viz::Attribution r = viz::integrated_gradients(runner, n.image, baseline, n.cls, o);
  const NpyArray want = golden(n, which + ".npy");
  require_matches(r.attribution, want);
  // Completeness, as far as the midpoint rule over a piecewise-linear path gets: the sums agree with
  // the reference's, and both are near S(x) - S(x').
  CHECK(r.attribution_sum == Approx(n.meta[which]["attribution_sum"].get<double>()).epsilon(1e-4));
  CHECK(r.score_difference == Approx(n.meta[which]["score_difference"].get<double>()).epsilon(1e-4));
}

TEST_CASE("ten crops and flips: the averaged map matches PyTorch, class from the mean softmax", "[methods][golden]") {
  const std::string net = GENERATE(as<std::string>{}, "alexnet_like", "fire_bn");
  const int batch = GENERATE(4, 10);
  INFO(net << ", batch " << batch);
  const MethodsNet n = load(net);
  auto backend = make_backend("cpu");
  const Tensor full = read_npy_tensor(n.dir + "tencrop_input.npy");
  viz::BatchedGradients runner(n.model, *backend, batch);
  const viz::TenCropResult r = viz::ten_crop_saliency(runner, int(full.dim(1)), int(full.dim(2)),
                                                      viz::crops_of_tensor(full, n.model.height, n.model.width), -1,
                                                      BackwardRule::gradient);
  REQUIRE(r.cls == n.meta["tencrop"]["class"].get<int>());
  CHECK(r.probability == Approx(n.meta["tencrop"]["mean_prob"].get<double>()).epsilon(1e-5));
  require_matches(r.map, golden(n, "tencrop_map.npy"));
  // Four corners of an image only 4 and 6 pixels larger than the crop: every pixel is covered, the
  // centre by all 10 crops.
  for (int64_t i = 0; i < r.coverage.numel(); ++i) REQUIRE(r.coverage[i] >= 2);
  REQUIRE(r.coverage[(full.dim(1) / 2) * full.dim(2) + full.dim(2) / 2] == 10);
}

TEST_CASE("Grad-CAM and Guided Grad-CAM match PyTorch", "[methods][golden][cam]") {
  const std::string net = GENERATE(as<std::string>{}, "alexnet_like", "fire_bn");
  const std::string backend_name = GENERATE(as<std::string>{}, "cpu", "cpu-reference");
  INFO(net << " on " << backend_name);
  const MethodsNet n = load(net);
  auto backend = make_backend(backend_name);
  const int layer = viz::resolve_value(n.model.graph, n.meta["gradcam"]["layer"].get<std::string>());
  Session session(n.model.graph, *backend, Shape{1, n.model.channels, n.model.height, n.model.width});
  const viz::CamResult r = viz::guided_grad_cam(session, n.model, as_batch(n.image), n.cls, layer);
  REQUIRE(r.layer == layer);
  require_matches(r.low_res, golden(n, "gradcam_lowres.npy"));
  require_matches(r.map, golden(n, "gradcam.npy"));
  require_matches(r.guided, golden(n, "guided_gradcam.npy"));
  // Grad-CAM alone gives the same map as the first half of Guided Grad-CAM.
  const viz::CamResult g = viz::grad_cam(session, n.model, as_batch(n.image), n.cls, layer);
  REQUIRE(bit_identical(g.map, r.map));
}

TEST_CASE("CAM on a net ending in global average pooling matches PyTorch", "[methods][golden][cam]") {
  const MethodsNet n = load("fire_bn");
  auto backend = make_backend("cpu");
  Session session(n.model.graph, *backend, Shape{1, n.model.channels, n.model.height, n.model.width});
  const viz::CamResult r = viz::class_activation_map(session, n.model, as_batch(n.image), n.cls);
  REQUIRE(n.model.graph.value(r.layer).name == n.meta["cam"]["layer"].get<std::string>());
  const std::vector<double> w = n.meta["cam"]["weights"];
  REQUIRE_CLOSE(r.weights.data(), w, int64_t(w.size()), 0, 0);  // GAP -> Flatten -> scores: one-hot, exactly
  require_matches(r.low_res, golden(n, "cam_lowres.npy"));
  require_matches(r.map, golden(n, "cam.npy"));
}

TEST_CASE("reconstructions of intermediate neurons match PyTorch under the three rules", "[methods][golden][reconstruct]") {
  const std::string net = GENERATE(as<std::string>{}, "alexnet_like", "fire_bn");
  const MethodsNet n = load(net);
  auto backend = make_backend("cpu");
  Session session(n.model.graph, *backend, Shape{1, n.model.channels, n.model.height, n.model.width});
  session.forward(as_batch(n.image));
  const auto& recs = n.meta["reconstruct"];
  for (size_t i = 0; i < recs.size(); ++i) {
    const int layer = viz::resolve_value(n.model.graph, recs[i]["layer"].get<std::string>());
    const std::vector<int> idx = recs[i]["neuron"];
    INFO(net << " layer " << recs[i]["layer"] << " neuron " << idx[0]);
    const viz::Neuron neuron =
        idx.size() == 1 ? viz::find_neuron(session, layer, idx[0], -1, -1) : viz::find_neuron(session, layer, idx[0], idx[1], idx[2]);
    CHECK(neuron.activation == Approx(recs[i]["activation"].get<double>()).epsilon(1e-5));
    const viz::Reconstruction r = viz::reconstruct(session, layer, neuron);
    for (size_t k = 0; k < viz::kRules.size(); ++k) {
      INFO("rule " << rule_name(viz::kRules[k]));
      require_matches(r.images[k], golden(n, "reconstruct" + std::to_string(i) + "_" + rule_name(viz::kRules[k]) + ".npy"));
      // Every rule propagates along the same connections: nothing lands outside the receptive field.
      REQUIRE(r.energy_outside[k] == 0.0);
    }
  }
}

// ---- the paper's Sec. 4: DeconvNet, gradient and guided differ only at the rectifier ------------------

TEST_CASE("without rectifiers, reconstructions under the three rules are bit-identical", "[methods][rules][reconstruct]") {
  const MethodsNet n = load("no_relu");
  const std::string backend_name = GENERATE(as<std::string>{}, "cpu", "cpu-reference");
  auto backend = make_backend(backend_name);
  Session session(n.model.graph, *backend, Shape{1, n.model.channels, n.model.height, n.model.width});
  session.forward(as_batch(n.image));
  // Neurons of the max-pool output, the second conv (through the switches) and the first FC layer.
  for (const char* name : {"/pool1/pool/MaxPool_output_0", "/conv2/Conv_output_0", "/fc1/Gemm_output_0"}) {
    const int layer = viz::resolve_value(n.model.graph, name);
    for (const viz::Neuron& neuron : viz::top_neurons(session, layer, 3)) {
      INFO(backend_name << " " << name << " channel " << neuron.channel);
      const viz::Reconstruction r = viz::reconstruct(session, layer, neuron);
      double energy = 0;
      for (int64_t i = 0; i < r.images[0].numel(); ++i) energy += double(r.images[0][i]) * r.images[0][i];
      REQUIRE(energy > 0);
      REQUIRE(bit_identical(r.images[0], r.images[1]));
      REQUIRE(bit_identical(r.images[0], r.images[2]));
      REQUIRE(r.pairs[0].pearson == Approx(1.0));
    }
  }
}

TEST_CASE("every op but the rectifier has one backward for all three rules (conv and max-pool included)", "[methods][rules]") {
  // Each node of the golden nets is called directly on the backend with each rule and the same
  // incoming gradient (random signs): Conv (strides, pads, groups, dilation), MaxPool (ceil mode),
  // AveragePool, LRN, BatchNorm, Gemm, MatMul, Concat, elementwise ops.
  const std::string net = GENERATE(as<std::string>{}, "alexnet_like", "fire_bn", "no_relu", "elementwise_matmul");
  const std::string backend_name = GENERATE(as<std::string>{}, "cpu", "cpu-reference");
  const BareNet model = load_bare(net);
  const Tensor& input = model.input;
  auto backend = make_backend(backend_name);
  Session session(model.graph, *backend, input.shape());
  session.forward(input);
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  int checked_conv = 0, checked_pool = 0;
  for (size_t ni = 0; ni < model.graph.nodes().size(); ++ni) {
    const Node& node = model.graph.nodes()[ni];
    if (node.kind == OpKind::Relu || node.kind == OpKind::Softmax) continue;
    INFO(net << " on " << backend_name << ": node " << node.name << " (" << op_name(node.kind) << ")");
    const Tensor& out = session.value(node.outputs[0]);
    Tensor grad_out(out.shape());
    for (int64_t i = 0; i < grad_out.numel(); ++i) grad_out[i] = normal(rng);
    std::vector<const Tensor*> in;
    for (int v : node.inputs) in.push_back(v < 0 ? nullptr : &session.value(v));
    std::vector<Tensor> results;
    for (BackwardRule rule : viz::kRules) {
      std::vector<Tensor> grads;
      grads.reserve(node.inputs.size());
      std::vector<Tensor*> grad_in;
      for (int v : node.inputs) {
        const bool wanted = v >= 0 && !model.graph.value(v).is_constant();
        grads.emplace_back(wanted ? Tensor(session.shape(v)) : Tensor());
        grad_in.push_back(wanted ? &grads.back() : nullptr);
      }
      backend->backward_input(node, rule, in, out, grad_out, grad_in, session.saved(int(ni)));
      for (Tensor& g : grads)
        if (!g.empty()) results.push_back(std::move(g));
    }
    const size_t per_rule = results.size() / 3;
    REQUIRE(per_rule >= 1);
    for (size_t i = 0; i < per_rule; ++i) {
      REQUIRE(bit_identical(results[i], results[per_rule + i]));
      REQUIRE(bit_identical(results[i], results[2 * per_rule + i]));
    }
    checked_conv += node.kind == OpKind::Conv;
    checked_pool += node.kind == OpKind::MaxPool;
  }
  if (net != "elementwise_matmul") REQUIRE(checked_conv >= 1);
  if (net == "alexnet_like" || net == "fire_bn" || net == "no_relu") REQUIRE(checked_pool == 1);
}

namespace {

// x (1,2,9,9) -> Conv(2->3, 3x3, pad 1) -> h -> Relu -> r -> Conv(3->2, 3x3, stride 2) -> y (1,2,4,4)
struct ConvReluConv {
  Graph graph;
  int x, h, r, y;
};

ConvReluConv conv_relu_conv() {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal;
  const auto random = [&](Shape s) {
    Tensor t(std::move(s));
    for (int64_t i = 0; i < t.numel(); ++i) t[i] = normal(rng);
    return t;
  };
  ConvReluConv n;
  n.x = n.graph.add_value("x", {1, 2, 9, 9});
  const int w1 = n.graph.add_constant("w1", random({3, 2, 3, 3})), b1 = n.graph.add_constant("b1", random({3}));
  const int w2 = n.graph.add_constant("w2", random({2, 3, 3, 3}));
  n.h = n.graph.add_value("h");
  n.r = n.graph.add_value("r");
  n.y = n.graph.add_value("y");
  ConvParams c1;
  c1.window.kernel = {3, 3};
  c1.window.pads = {1, 1, 1, 1};
  ConvParams c2;
  c2.window.kernel = {3, 3};
  c2.window.stride = {2, 2};
  n.graph.add_node(Node{"conv1", OpKind::Conv, c1, {n.x, w1, b1}, {n.h}});
  n.graph.add_node(Node{"relu", OpKind::Relu, {}, {n.h}, {n.r}});
  n.graph.add_node(Node{"conv2", OpKind::Conv, c2, {n.r, w2}, {n.y}});
  n.graph.finalize(n.x, {n.y});
  return n;
}

}  // namespace

TEST_CASE("conv-relu-conv: applying a rule by hand at the single ReLU accounts for the whole difference", "[methods][rules]") {
  const ConvReluConv n = conv_relu_conv();
  const std::string backend_name = GENERATE(as<std::string>{}, "cpu", "cpu-reference");
  auto backend = make_backend(backend_name);
  Session s(n.graph, *backend, {1, 2, 9, 9});
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  Tensor x({1, 2, 9, 9});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = normal(rng);
  s.forward(x);
  Tensor seed(s.shape(n.y));
  for (int64_t i = 0; i < seed.numel(); ++i) seed[i] = normal(rng);  // both signs reach the ReLU

  // The gradient arriving at the ReLU's output: conv2's backward, the same under every rule.
  const Tensor gradient = s.backward_input(n.y, seed, BackwardRule::gradient).clone();
  const Tensor g_relu = s.gradient(n.r).clone();
  const Tensor& pre = s.value(n.h);  // the ReLU's input x
  for (BackwardRule rule : {BackwardRule::deconvnet, BackwardRule::guided, BackwardRule::gradient}) {
    INFO(backend_name << ", rule " << rule_name(rule));
    // The rule by hand: g_in = g_out [g_out > 0] (deconvnet), g_out [x > 0][g_out > 0] (guided),
    // g_out [x > 0] (gradient), then conv1's backward alone (no rectifier below h).
    Tensor g_in(g_relu.shape());
    int positive_dead = 0;  // places where the rules disagree: g > 0 but x <= 0
    for (int64_t i = 0; i < g_in.numel(); ++i) {
      const float g = g_relu[i];
      const bool alive = pre[i] > 0, up = g > 0;
      const bool keep = rule == BackwardRule::deconvnet ? up : rule == BackwardRule::guided ? (alive && up) : alive;
      g_in[i] = keep ? g : 0.0f;
      positive_dead += up && !alive;
    }
    REQUIRE(positive_dead > 0);
    const Tensor by_hand = s.backward_input(n.h, g_in, BackwardRule::gradient).clone();
    const Tensor& whole = s.backward_input(n.y, seed, rule);
    REQUIRE(bit_identical(by_hand, whole));
    if (rule != BackwardRule::gradient) REQUIRE_FALSE(bit_identical(whole, gradient));
  }
}

TEST_CASE("whole nets: every ReLU by hand, every other op by its gradient, equals each rule's pass", "[methods][rules]") {
  // A backward pass written out here, node by node in reverse order: the backend's gradient rule for
  // every op except ReLU, where the rule is applied by hand. It reproduces Session::backward_input
  // under deconvnet and guided bit for bit (same ops, same order of accumulation), on nets with
  // branches (fire_bn: squeeze feeds two expands; the pool output feeds the residual Add).
  const std::string net = GENERATE(as<std::string>{}, "alexnet_like", "fire_bn", "elementwise_matmul");
  const BareNet model = load_bare(net);
  auto backend = make_backend("cpu");
  Session session(model.graph, *backend, model.input.shape());
  session.forward(model.input);
  const Graph& g = model.graph;
  Tensor seed(session.shape(model.scores));
  const NpyArray classes = read_npy(source_path("tests/golden/nets/" + net + "/classes.npy"));
  for (size_t i = 0; i < classes.values.size(); ++i) seed[int64_t(i) * model.classes + int64_t(classes.values[i])] = 1;
  const std::vector<bool> on_path = viz::values_between_input_and(g, model.scores);

  for (BackwardRule rule : {BackwardRule::deconvnet, BackwardRule::guided}) {
    INFO(net << ", rule " << rule_name(rule));
    std::vector<Tensor> grads(g.value_count());
    for (int v = 0; v < g.value_count(); ++v)
      if (on_path[v]) grads[v] = Tensor(session.shape(v));
    std::copy_n(seed.data(), seed.numel(), grads[model.scores].data());
    for (int ni = int(g.nodes().size()) - 1; ni >= 0; --ni) {
      const Node& node = g.nodes()[ni];
      if (!on_path[node.outputs[0]]) continue;
      const Tensor& gout = grads[node.outputs[0]];
      if (node.kind == OpKind::Relu) {
        const Tensor& x = session.value(node.inputs[0]);
        Tensor& gin = grads[node.inputs[0]];
        for (int64_t i = 0; i < gin.numel(); ++i) {
          const bool keep = rule == BackwardRule::deconvnet ? gout[i] > 0 : (x[i] > 0 && gout[i] > 0);
          gin[i] += keep ? gout[i] : 0.0f;
        }
        continue;
      }
      std::vector<const Tensor*> in;
      std::vector<Tensor*> grad_in;
      for (int v : node.inputs) {
        in.push_back(v < 0 ? nullptr : &session.value(v));
        grad_in.push_back(v >= 0 && on_path[v] ? &grads[v] : nullptr);
      }
      backend->backward_input(node, BackwardRule::gradient, in, session.value(node.outputs[0]), gout, grad_in,
                              session.saved(ni));
    }
    const Tensor& want = session.backward_input(model.scores, seed, rule);
    REQUIRE(bit_identical(grads[g.input()], want));
  }
}

// ---- CAM identities and the head check ---------------------------------------------------------------

TEST_CASE("Grad-CAM on the layer feeding GAP is ReLU(CAM) / (h w)", "[methods][cam]") {
  const MethodsNet n = load("fire_bn");
  auto backend = make_backend("cpu");
  Session session(n.model.graph, *backend, Shape{1, n.model.channels, n.model.height, n.model.width});
  const int layer = viz::cam_feature_layer(n.model);
  REQUIRE(layer == viz::default_gradcam_layer(n.model));
  for (int cls = 0; cls < n.model.classes; ++cls) {
    const viz::CamResult cam = viz::class_activation_map(session, n.model, as_batch(n.image), cls);
    const viz::CamResult grad = viz::grad_cam(session, n.model, as_batch(n.image), cls, layer);
    const float hw = float(cam.low_res.numel());
    for (int64_t i = 0; i < cam.low_res.numel(); ++i)
      REQUIRE(grad.low_res[i] == Approx(std::max(cam.low_res[i], 0.0f) / hw).margin(1e-7));
  }
}

TEST_CASE("CAM weights of a GAP -> FC head are the FC row of the class", "[methods][cam]") {
  // x (1,3,8,8) -> Conv 3->5 -> Relu -> a -> GlobalAveragePool -> Flatten -> Gemm(5->4, transB) -> scores
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  const auto random = [&](Shape s) {
    Tensor t(std::move(s));
    for (int64_t i = 0; i < t.numel(); ++i) t[i] = normal(rng);
    return t;
  };
  Model m;
  Graph& g = m.graph;
  const int x = g.add_value("x", {1, 3, 8, 8});
  const int w = g.add_constant("w", random({5, 3, 3, 3})), fw = g.add_constant("fw", random({4, 5}));
  const int fb = g.add_constant("fb", random({4}));
  const int c = g.add_value("c"), a = g.add_value("a"), p = g.add_value("p"), f = g.add_value("f"), s = g.add_value("s");
  ConvParams cp;
  cp.window.kernel = {3, 3};
  GemmParams gp;
  gp.trans_b = true;
  g.add_node(Node{"conv", OpKind::Conv, cp, {x, w}, {c}});
  g.add_node(Node{"relu", OpKind::Relu, {}, {c}, {a}});
  g.add_node(Node{"gap", OpKind::GlobalAveragePool, {}, {a}, {p}});
  g.add_node(Node{"flatten", OpKind::Flatten, AxisParams{1}, {p}, {f}});
  g.add_node(Node{"fc", OpKind::Gemm, gp, {f, fw, fb}, {s}});
  g.finalize(x, {s});
  m.channels = 3, m.height = 8, m.width = 8, m.scores_value = s, m.classes = 4;
  REQUIRE(viz::cam_feature_layer(m) == a);
  auto backend = make_backend("cpu");
  Session session(g, *backend, {1, 3, 8, 8});
  const Tensor input = random({1, 3, 8, 8});
  const Tensor& W = *g.value(fw).constant;
  for (int cls = 0; cls < 4; ++cls) {
    const viz::CamResult r = viz::class_activation_map(session, m, input, cls);
    const Tensor& act = session.value(a);
    for (int k = 0; k < 5; ++k) REQUIRE(r.weights[k] == Approx(W[cls * 5 + k]).epsilon(1e-6));
    for (int i = 0; i < 36; ++i) {
      double want = 0;
      for (int k = 0; k < 5; ++k) want += double(W[cls * 5 + k]) * act[k * 36 + i];
      REQUIRE(r.low_res[i] == Approx(want).epsilon(1e-5).margin(1e-6));
    }
  }
}

TEST_CASE("CAM refuses heads that are not linear in a global average pool, naming the node", "[methods][cam][bad-input]") {
  const MethodsNet n = load("alexnet_like");
  REQUIRE_THROWS_WITH(viz::cam_feature_layer(n.model), Catch::Contains("Relu node '/relu4/Relu'") &&
                                                           Catch::Contains("gradcam"));
  REQUIRE(n.model.graph.value(viz::default_gradcam_layer(n.model)).name == "/relu3/Relu_output_0");
  // Grad-CAM needs a 4-D value between the input and the scores.
  REQUIRE_THROWS_WITH(viz::check_cam_layer(n.model, viz::resolve_value(n.model.graph, "/fc1/Gemm")),
                      Catch::Contains("4-D"));
  REQUIRE_THROWS_WITH(viz::check_cam_layer(n.model, viz::resolve_value(n.model.graph, "prob")),
                      Catch::Contains("not between the input and the scores"));
  REQUIRE_THROWS_WITH(viz::resolve_value(n.model.graph, "/conv9/Conv"), Catch::Contains("no value or node named"));
}

TEST_CASE("bilinear upsampling follows torch's align_corners=False", "[methods][cam]") {
  const float src[4] = {0, 1, 2, 3};  // 2x2
  const Tensor up = viz::upsample_bilinear(src, 2, 2, 4, 4);
  // torch.nn.functional.interpolate(torch.arange(4.).view(1,1,2,2), size=(4,4), mode="bilinear")
  const float want[16] = {0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3};
  for (int i = 0; i < 16; ++i) REQUIRE(up[i] == Approx(want[i]));
}

// ---- reconstructions: receptive fields and bad input ----------------------------------------------------

TEST_CASE("receptive fields follow the conv and pooling geometry", "[methods][reconstruct]") {
  const MethodsNet n = load("alexnet_like");
  auto backend = make_backend("cpu");
  Session s(n.model.graph, *backend, Shape{1, 3, 23, 23});
  std::vector<Shape> shapes;
  for (int v = 0; v < n.model.graph.value_count(); ++v) shapes.push_back(s.shape(v));
  const Graph& g = n.model.graph;
  const auto rf = [&](const char* value, int y, int x) { return viz::receptive_field(g, shapes, viz::resolve_value(g, value), y, x); };
  // conv1: 5x5, stride 2, pad 2: output (y, x) reads rows 2y-2 .. 2y+2.
  viz::Box b = rf("/conv1/Conv_output_0", 3, 5);
  REQUIRE((b.y0 == 4 && b.y1 == 8 && b.x0 == 8 && b.x1 == 12));
  b = rf("/conv1/Conv_output_0", 0, 0);  // clamped at the border
  REQUIRE((b.y0 == 0 && b.y1 == 2 && b.x0 == 0 && b.x1 == 2));
  // LRN keeps the position; max-pool 3x3 stride 2 on conv1: pool (1,1) reads conv1 rows 2..4, so
  // input rows 2*2-2 .. 2*4+2 = 2..10.
  b = rf("/pool1/pool/MaxPool_output_0", 1, 1);
  REQUIRE((b.y0 == 2 && b.y1 == 10 && b.x0 == 2 && b.x1 == 10));
  // conv2 3x3 pad 1 on the pool: (1,1) reads pool rows 0..2 -> conv1 rows 0..6 -> input 0..14 (from -2).
  b = rf("/conv2/Conv_output_0", 1, 1);
  REQUIRE((b.y0 == 0 && b.y1 == 14 && b.x0 == 0 && b.x1 == 14));
  // After Flatten and Gemm: the whole image.
  b = rf("/fc1/Gemm_output_0", -1, -1);
  REQUIRE((b.y0 == 0 && b.y1 == 22 && b.x0 == 0 && b.x1 == 22));
}

TEST_CASE("reconstruct: top-k picks one neuron per channel, strongest first; bad neurons are errors", "[methods][reconstruct][bad-input]") {
  const MethodsNet n = load("alexnet_like");
  auto backend = make_backend("cpu");
  Session s(n.model.graph, *backend, Shape{1, 3, 23, 23});
  s.forward(as_batch(n.image));
  const int layer = viz::resolve_value(n.model.graph, "/relu2/Relu");  // a node name works too
  const std::vector<viz::Neuron> top = viz::top_neurons(s, layer, 4);
  REQUIRE(top.size() == 4);
  for (size_t i = 1; i < top.size(); ++i) {
    REQUIRE(top[i].activation <= top[i - 1].activation);
    REQUIRE(top[i].channel != top[0].channel);
  }
  const Tensor& a = s.value(layer);
  for (int64_t i = 0; i < a.numel(); ++i) REQUIRE(a[i] <= top[0].activation);
  REQUIRE_THROWS_WITH(viz::find_neuron(s, layer, 12, -1, -1), Catch::Contains("channel 12 is out of range") &&
                                                                  Catch::Contains("12 channels"));
  REQUIRE_THROWS_WITH(viz::find_neuron(s, layer, 0, 6, 0), Catch::Contains("out of range"));
  REQUIRE_THROWS_WITH(viz::top_neurons(s, layer, 13), Catch::Contains("--top-k"));
  REQUIRE_THROWS_WITH(viz::find_neuron(s, viz::resolve_value(n.model.graph, "/fc1/Gemm"), 0, 1, 1),
                      Catch::Contains("no positions"));
  REQUIRE_THROWS_WITH(viz::check_reconstruct_layer(s, n.model.graph.input()), Catch::Contains("not a layer"));
}

// ---- building blocks ---------------------------------------------------------------------------------------

TEST_CASE("rank and linear correlations, sign agreement", "[methods][compare]") {
  const float a[6] = {1, 2, 2, 3, 5, 4};
  const float b[6] = {10, 20, 30, 40, 50, 60};
  // Ranks of a: 1, 2.5, 2.5, 4, 6, 5; of b: 1..6; their Pearson correlation = 16 / sqrt(17 * 17.5).
  REQUIRE(viz::spearman(a, b, 6) == Approx(16.0 / std::sqrt(17.0 * 17.5)));
  REQUIRE(viz::spearman(b, b, 6) == Approx(1.0));
  const float c[6] = {6, 5, 4, 3, 2, 1};
  REQUIRE(viz::spearman(b, c, 6) == Approx(-1.0));
  REQUIRE(viz::pearson(b, c, 6) == Approx(-1.0));
  const float z[6] = {0, 0, 0, 0, 0, 0};
  REQUIRE(std::isnan(viz::pearson(a, z, 6)));
  const float s1[5] = {1, -2, 3, 0, -1}, s2[5] = {2, 2, 1, 5, -3};
  REQUIRE(viz::sign_agreement(s1, s2, 5) == Approx(0.75));  // 4 places both nonzero, 3 agree
}

TEST_CASE("noise is standard normal and the same whatever the chunking", "[methods]") {
  std::vector<float> v(200001);
  viz::gaussian_fill(42, 7, v.data(), int64_t(v.size()));
  double mean = 0, var = 0;
  for (float x : v) mean += x;
  mean /= double(v.size());
  for (float x : v) var += (x - mean) * (x - mean);
  var /= double(v.size());
  REQUIRE(std::fabs(mean) < 0.01);
  REQUIRE(std::fabs(var - 1.0) < 0.02);
  std::vector<float> again(11), other(11);
  viz::gaussian_fill(42, 7, again.data(), 11);
  for (int i = 0; i < 11; ++i) REQUIRE(again[i] == v[i]);
  viz::gaussian_fill(42, 8, other.data(), 11);
  REQUIRE(other[0] != v[0]);
}

TEST_CASE("SmoothGrad's result does not depend on --batch-size", "[methods]") {
  const MethodsNet n = load("fire_bn");
  auto backend = make_backend("cpu");
  viz::SmoothGradOptions o;
  o.samples = 20;
  std::vector<Tensor> results;
  for (int batch : {1, 7, 20}) {
    viz::BatchedGradients runner(n.model, *backend, viz::balanced_batch(o.samples, batch));
    results.push_back(viz::smoothgrad(runner, n.image, n.cls, o).attribution);
  }
  REQUIRE(viz::balanced_batch(20, 7) == 7);
  REQUIRE(viz::balanced_batch(50, 16) == 13);
  REQUIRE(viz::balanced_batch(1000, 8) == 8);
  double peak = 0;
  for (int64_t i = 0; i < results[0].numel(); ++i) peak = std::max(peak, double(std::fabs(results[0][i])));
  for (size_t r = 1; r < results.size(); ++r)
    REQUIRE_CLOSE(results[r].data(), results[0].data(), results[0].numel(), 1e-5, 1e-6 * peak);
}

TEST_CASE("ten crops: four corners and the centre, then their mirror images", "[methods]") {
  const std::vector<viz::CropSpec> c = viz::ten_crops(256, 387, 227, 227);
  REQUIRE(c.size() == 10);
  const int want[5][2] = {{0, 0}, {160, 0}, {0, 29}, {160, 29}, {80, 14}};  // (x0, y0); the centre as prepare_image
  for (int i = 0; i < 10; ++i) {
    REQUIRE(c[i].x0 == want[i % 5][0]);
    REQUIRE(c[i].y0 == want[i % 5][1]);
    REQUIRE(c[i].flip == (i >= 5));
  }
  REQUIRE_THROWS_AS(viz::ten_crops(200, 387, 227, 227), Error);
}

// ---- the sanity check's machinery (the SqueezeNet run is in test_methods_cli.cpp) ----------------------

TEST_CASE("cascading randomisation goes from the top down and puts the trained weights back", "[methods][sanity]") {
  MethodsNet n = load("alexnet_like");
  std::vector<std::string> order;
  for (int ni : viz::layers_top_down(n.model)) order.push_back(n.model.graph.nodes()[ni].name);
  REQUIRE(order == std::vector<std::string>{"/fc2/Gemm", "/fc1/Gemm", "/conv3/Conv", "/conv2/Conv", "/conv1/Conv"});

  std::vector<Tensor> before;
  for (int v = 0; v < n.model.graph.value_count(); ++v)
    before.push_back(n.model.graph.value(v).is_constant() ? n.model.graph.value(v).constant->clone() : Tensor());
  auto backend = make_backend("cpu");
  viz::SanityOptions o;
  o.methods = {"gradient", "guided", "smoothgrad", "gradcam"};
  o.smoothgrad.samples = 4;
  int calls = 0;
  const viz::SanityReport r = viz::cascading_randomization(n.model, *backend, n.image, n.cls, o,
                                                           [&](int step, const std::vector<Tensor>& maps) {
                                                             REQUIRE(step == calls++);
                                                             REQUIRE(maps.size() == 4);
                                                           });
  REQUIRE(r.steps.size() == 6);
  REQUIRE(r.steps[1].layer == "/fc2/Gemm");
  for (double rho : r.steps[0].rho) REQUIRE(rho == 1.0);
  // Fully randomised, the gradient map has little to do with the trained one.
  REQUIRE(r.steps.back().rho[0] < 0.5);
  for (int v = 0; v < n.model.graph.value_count(); ++v)
    if (n.model.graph.value(v).is_constant()) REQUIRE(bit_identical(*n.model.graph.value(v).constant, before[v]));

  // A randomised layer keeps its scale (mean and spread of each tensor), not its values.
  Graph& g = n.model.graph;
  const Node& conv = g.nodes()[0];
  const Tensor& w = *g.value(conv.inputs[1]).constant;
  const auto stats = [](const Tensor& t) {
    double m = 0, v = 0;
    for (int64_t i = 0; i < t.numel(); ++i) m += t[i];
    m /= double(t.numel());
    for (int64_t i = 0; i < t.numel(); ++i) v += (t[i] - m) * (t[i] - m);
    return std::pair{m, std::sqrt(v / double(t.numel()))};
  };
  const auto [m0, s0] = stats(w);
  const Tensor original = w.clone();
  viz::randomize_layer(g, 0, 1);
  const auto [m1, s1] = stats(w);
  REQUIRE(std::fabs(m1 - m0) < 0.2 * s0);
  REQUIRE(s1 == Approx(s0).epsilon(0.2));
  REQUIRE(std::fabs(viz::pearson(w.data(), original.data(), w.numel())) < 0.3);
}
