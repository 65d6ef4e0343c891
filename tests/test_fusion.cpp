// Session fusion (SessionOptions::fuse, docs/fusion.md): a fused Relu and a zero-copy Concat change
// no number. Each net runs planned both ways on the same backend; scores, the input gradient under
// every rule, and the readable intermediate values and gradients must agree, and the plan must
// have fused what it should (and nothing it must not).
#include <cmath>
#include <random>
#include <string>

#include <catch2/catch.hpp>

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/graph.h"
#include "engine/op_params.h"
#include "engine/session.h"
#include "kernels/cpu_fast/winograd.h"
#include "test_support.h"

using namespace deepinside;

namespace {

// Builds small nets value by value, with seeded weights and biases of both signs (so that every
// Relu zeroes a part of its input).
class TinyNet {
 public:
  explicit TinyNet(Shape input) : rng_(7) { input_ = graph.add_value("data", std::move(input)); }

  int input() const { return input_; }

  int conv(const std::string& name, int x, int in_channels, int filters, int kernel, int stride, int pad) {
    ConvParams p;
    p.window.kernel = {kernel, kernel};
    p.window.stride = {stride, stride};
    p.window.pads = {pad, pad, pad, pad};
    const int w = graph.add_constant(name + "_w", random({filters, in_channels, kernel, kernel},
                                                         std::sqrt(2.0 / (in_channels * kernel * kernel))));
    const int b = graph.add_constant(name + "_b", random({filters}, 0.3));
    return add(name, OpKind::Conv, p, {x, w, b});
  }
  int relu(const std::string& name, int x) { return add(name, OpKind::Relu, std::monostate{}, {x}); }
  int concat(const std::string& name, std::vector<int> xs) { return add(name, OpKind::Concat, AxisParams{1}, xs); }
  int global_avgpool(const std::string& name, int x) {
    return add(name, OpKind::GlobalAveragePool, std::monostate{}, {x});
  }
  int flatten(const std::string& name, int x) { return add(name, OpKind::Flatten, AxisParams{1}, {x}); }

  // scores -> softmax "prob", the graph's output.
  void finish(int scores) {
    const int prob = add("prob", OpKind::Softmax, SoftmaxParams{1, false}, {scores});
    graph.finalize(input_, {prob});
  }

  Graph graph;

 private:
  Tensor random(Shape shape, double scale) {
    Tensor t(std::move(shape));
    std::normal_distribution<float> normal(0.0f, float(scale));
    for (int64_t i = 0; i < t.numel(); ++i) t[i] = normal(rng_);
    return t;
  }
  int add(const std::string& name, OpKind kind, OpParams params, std::vector<int> inputs) {
    const int out = graph.add_value(name + "_out");
    graph.add_node(Node{name, kind, std::move(params), std::move(inputs), {out}});
    return out;
  }

  std::mt19937 rng_;
  int input_ = -1;
};

// SqueezeNet's shape in small: conv-relu, a fire module (squeeze 1x1, expand 1x1 and 3x3, each
// rectified, concatenated), then a padded 1x1 class conv, relu, global average pool. The 3x3
// expand runs on 27x27 planes (196 tiles), so the fast path takes Winograd there.
struct FireNet {
  TinyNet net{Shape{-1, 3, 56, 56}};
  int conv1_out, relu1_out, expand1_out, expand1_relu_out, expand3_relu_out, concat_out, scores;
  FireNet() {
    conv1_out = net.conv("conv1", net.input(), 3, 16, 3, 2, 0);  // 16 x 27 x 27
    relu1_out = net.relu("relu1", conv1_out);
    const int squeeze = net.relu("squeeze_relu", net.conv("squeeze", relu1_out, 16, 32, 1, 1, 0));
    expand1_out = net.conv("expand1", squeeze, 32, 16, 1, 1, 0);
    expand1_relu_out = net.relu("expand1_relu", expand1_out);
    expand3_relu_out = net.relu("expand3_relu", net.conv("expand3", squeeze, 32, 16, 3, 1, 1));
    concat_out = net.concat("concat", {expand1_relu_out, expand3_relu_out});  // 32 x 27 x 27
    const int classes = net.relu("class_relu", net.conv("class_conv", concat_out, 32, 10, 1, 1, 1));  // 10 x 29 x 29
    scores = net.flatten("flatten", net.global_avgpool("gap", classes));
    net.finish(scores);
  }
};

Tensor random_input(const Shape& shape, unsigned seed) {
  Tensor x(shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = u(rng);
  return x;
}

// A seed for `scores` (N, classes): one-hot at class 3 for every image.
Tensor one_hot_seed(const Session& s, int scores) {
  Tensor seed(s.shape(scores));
  const int64_t classes = seed.dim(1);
  for (int64_t n = 0; n < seed.dim(0); ++n) seed[n * classes + 3] = 1.0f;
  return seed;
}

void require_same(const Tensor& fused, const Tensor& plain) {
  REQUIRE(fused.shape() == plain.shape());
  double scale = 0;
  for (int64_t i = 0; i < plain.numel(); ++i) scale = std::max(scale, double(std::fabs(plain[i])));
  REQUIRE(scale > 0);  // a comparison of two all-zero tensors would prove nothing
  REQUIRE_CLOSE(fused.data(), plain.data(), plain.numel(), 1e-6, 1e-6 * scale);
}

const char* kRules[] = {"gradient", "deconvnet", "guided"};

}  // namespace

TEST_CASE("fused Relus and a zero-copy Concat give the unfused scores and gradients", "[fusion]") {
  const std::string backend_name = GENERATE("cpu", "cpu-reference");
  const int batch = GENERATE(1, 2);
  FireNet f;
  const auto backend = make_backend(backend_name);
  const Shape shape{batch, 3, 56, 56};
  Session plain(f.net.graph, *backend, shape);
  Session fused(f.net.graph, *backend, shape, SessionOptions{true, {f.scores}});
  INFO("backend " << backend_name << ", batch " << batch);

  // What was fused: the cpu backend's convolutions absorb all five Relus; the reference fuses none.
  // The Concat is zero-copy at batch 1 only (at batch 2 its inputs are not contiguous in its output).
  CHECK(plain.fused_relus() == 0);
  CHECK(plain.zero_copy_concats() == 0);
  CHECK(fused.fused_relus() == (backend_name == "cpu" ? 5 : 0));
  CHECK(fused.zero_copy_concats() == (batch == 1 ? 1 : 0));

  // The 3x3 expand takes the fast path's Winograd route (its fused store is the one under test).
  const Node& expand3 = f.net.graph.nodes()[f.net.graph.producer(f.net.graph.nodes()[f.net.graph.producer(
      f.expand3_relu_out)].inputs[0])];
  const ConvGeometry g3 = conv_geometry(std::get<ConvParams>(expand3.params), Shape{batch, 32, 27, 27},
                                        Shape{16, 32, 3, 3});
  CHECK(cpu_fast::winograd_applies(g3) == cpu_fast::winograd_enabled());

  const Tensor x = random_input(shape, 11);
  plain.forward(x);
  fused.forward(x);
  require_same(fused.value(f.scores), plain.value(f.scores));
  require_same(fused.value(f.concat_out), plain.value(f.concat_out));
  require_same(fused.value(f.expand3_relu_out), plain.value(f.expand3_relu_out));
  for (const char* rule_text : kRules) {
    INFO("rule " << rule_text);
    const BackwardRule rule = parse_rule(rule_text);
    const Tensor seed = one_hot_seed(plain, f.scores);
    require_same(fused.backward_input(f.scores, seed, rule), plain.backward_input(f.scores, seed, rule));
    // The Concat's inputs keep readable gradients (slices of the Concat's gradient when zero-copy).
    require_same(fused.gradient(f.expand1_relu_out), plain.gradient(f.expand1_relu_out));
    require_same(fused.gradient(f.concat_out), plain.gradient(f.concat_out));
  }
}

TEST_CASE("a fused-away value is refused by name; keep leaves it readable", "[fusion]") {
  FireNet f;
  const auto backend = make_backend("cpu");
  const Shape shape{1, 3, 56, 56};
  const Tensor x = random_input(shape, 5);
  Session fused(f.net.graph, *backend, shape, SessionOptions{true, {f.scores}});
  fused.forward(x);
  REQUIRE(fused.fused_away(f.conv1_out));
  REQUIRE_THROWS_WITH(fused.value(f.conv1_out), Catch::Contains("'conv1_out' was fused into node 'conv1'"));
  const Tensor seed(fused.shape(f.conv1_out));
  REQUIRE_THROWS_WITH(fused.backward_input(f.conv1_out, seed, BackwardRule::gradient), Catch::Contains("fused"));
  fused.backward_input(f.scores, one_hot_seed(fused, f.scores), BackwardRule::gradient);
  REQUIRE_THROWS_WITH(fused.gradient(f.conv1_out), Catch::Contains("fused"));

  // Kept: conv1 runs unfused and its output is the plain session's.
  Session kept(f.net.graph, *backend, shape, SessionOptions{true, {f.scores, f.conv1_out}});
  Session plain(f.net.graph, *backend, shape);
  CHECK(kept.fused_relus() == 4);
  CHECK_FALSE(kept.fused_away(f.conv1_out));
  kept.forward(x);
  plain.forward(x);
  require_same(kept.value(f.conv1_out), plain.value(f.conv1_out));
  // Seeding an intermediate value (a neuron's visualisation), here a zero-copy Concat's input, at
  // its strongest unit (a unit the Relu zeroed would pass back nothing).
  const Tensor& act = kept.value(f.expand1_relu_out);
  int64_t strongest = 0;
  for (int64_t i = 1; i < act.numel(); ++i)
    if (act[i] > act[strongest]) strongest = i;
  Tensor neuron(act.shape());
  neuron[strongest] = 1.0f;
  require_same(kept.backward_input(f.expand1_relu_out, neuron, BackwardRule::guided),
               plain.backward_input(f.expand1_relu_out, neuron, BackwardRule::guided));
}

TEST_CASE("a convolution read by two Relus is not fused; the Relus write into the zero-copy Concat", "[fusion]") {
  // conv -> relu_a, conv -> relu_b (the conv's output has two readers), Concat(relu_a, relu_b).
  TinyNet net(Shape{-1, 3, 10, 10});
  const int conv = net.conv("conv", net.input(), 3, 4, 3, 1, 1);
  const int a = net.relu("relu_a", conv);
  const int b = net.relu("relu_b", conv);
  const int cat = net.concat("concat", {a, b});
  const int scores = net.flatten("flatten", net.global_avgpool("gap", cat));
  net.finish(scores);
  const auto backend = make_backend("cpu");
  const Shape shape{1, 3, 10, 10};
  Session plain(net.graph, *backend, shape);
  Session fused(net.graph, *backend, shape, SessionOptions{true, {scores}});
  CHECK(fused.fused_relus() == 0);
  CHECK(fused.zero_copy_concats() == 1);
  const Tensor x = random_input(shape, 3);
  plain.forward(x);
  fused.forward(x);
  require_same(fused.value(cat), plain.value(cat));
  require_same(fused.value(conv), plain.value(conv));
  for (const char* rule_text : kRules) {
    const Tensor seed = one_hot_seed(plain, scores);
    require_same(fused.backward_input(scores, seed, parse_rule(rule_text)),
                 plain.backward_input(scores, seed, parse_rule(rule_text)));
  }
}

TEST_CASE("fusion is a no-op for a Concat fed by the graph input or a value read twice", "[fusion]") {
  // Concat(data, data): the input is read twice and is the graph input; neither may be a slice.
  TinyNet net(Shape{-1, 2, 4, 4});
  const int cat = net.concat("concat", {net.input(), net.input()});
  const int scores = net.flatten("flatten", net.global_avgpool("gap", cat));
  net.finish(scores);
  const auto backend = make_backend("cpu");
  Session fused(net.graph, *backend, Shape{1, 2, 4, 4}, SessionOptions{true, {scores}});
  CHECK(fused.zero_copy_concats() == 0);
  const Tensor x = random_input(Shape{1, 2, 4, 4}, 1);
  fused.forward(x);
  const Tensor& y = fused.value(cat);
  for (int64_t i = 0; i < x.numel(); ++i) {
    REQUIRE(y[i] == x[i]);
    REQUIRE(y[x.numel() + i] == x[i]);
  }
}

TEST_CASE("a one-hot gradient through a fused unpadded 1x1 class convolution (its active channels only)",
          "[fusion]") {
  // conv -> relu -> 1x1 class conv -> relu -> global average pool: behind the one-hot seed only one
  // class channel has a gradient, so the fused class conv packs its rectified rows of dy by index.
  TinyNet net(Shape{-1, 3, 12, 12});
  const int features = net.relu("relu", net.conv("conv", net.input(), 3, 24, 3, 1, 1));
  const int classes = net.relu("class_relu", net.conv("class_conv", features, 24, 12, 1, 1, 0));
  const int scores = net.flatten("flatten", net.global_avgpool("gap", classes));
  net.finish(scores);
  const auto backend = make_backend("cpu");
  const int batch = GENERATE(1, 3);
  const Shape shape{batch, 3, 12, 12};
  Session plain(net.graph, *backend, shape);
  Session fused(net.graph, *backend, shape, SessionOptions{true, {scores}});
  CHECK(fused.fused_relus() == 2);
  const Tensor x = random_input(shape, 9);
  plain.forward(x);
  fused.forward(x);
  require_same(fused.value(scores), plain.value(scores));
  for (const char* rule_text : kRules) {
    INFO("rule " << rule_text << ", batch " << batch);
    const Tensor seed = one_hot_seed(plain, scores);
    require_same(fused.backward_input(scores, seed, parse_rule(rule_text)),
                 plain.backward_input(scores, seed, parse_rule(rule_text)));
  }
}
