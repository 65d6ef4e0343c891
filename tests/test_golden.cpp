// Whole small nets (tests/golden/nets, written by tests/golden/generate.py with PyTorch autograd in
// float64): scores and the input gradient under the three rectifier rules.
#include <catch2/catch.hpp>

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/npy.h"
#include "engine/onnx_import.h"
#include "engine/session.h"
#include "test_support.h"

using namespace deepinside;
using deepinside::test::source_path;

namespace {

struct GoldenNet {
  Graph graph;
  Tensor input;
  NpyArray classes, scores;
  std::string dir;
};

GoldenNet load_net(const std::string& name) {
  const std::string dir = source_path("tests/golden/nets/" + name + "/");
  return GoldenNet{import_onnx_file(dir + "model.onnx"), read_npy_tensor(dir + "input.npy"), read_npy(dir + "classes.npy"),
                   read_npy(dir + "scores.npy"), dir};
}

// Seed = one-hot at each image's class on the scores (the input of the final Softmax).
Tensor class_seed(const Shape& scores_shape, const NpyArray& classes) {
  Tensor seed(scores_shape);
  for (size_t n = 0; n < classes.values.size(); ++n) seed[int64_t(n) * scores_shape[1] + int64_t(classes.values[n])] = 1;
  return seed;
}

// float32 engine against float64 references: relative 1e-4, absolute 1e-5 of the largest magnitude
// (DESIGN.md Sec. 4 tolerances, taken over a whole net rather than one reduction).
constexpr double kRtol = 1e-4, kAtolFraction = 1e-5;

// A golden net after its forward pass on the reference input, with the class seed ready.
struct ForwardedNet {
  GoldenNet net;
  std::unique_ptr<Backend> backend = make_backend("cpu");
  Session session;
  int scores_id;
  Tensor seed;

  explicit ForwardedNet(const std::string& name)
      : net(load_net(name)), session(net.graph, *backend, net.input.shape()),
        scores_id(net.graph.default_scores_value()) {
    session.forward(net.input);
    seed = class_seed(session.shape(scores_id), net.classes);
  }
  const Tensor& backward(BackwardRule rule) { return session.backward_input(scores_id, seed, rule); }
};

}  // namespace

TEST_CASE("golden nets: scores and input gradients match PyTorch autograd under every rule", "[golden]") {
  const std::string name = GENERATE(as<std::string>{}, "alexnet_like", "fire_bn", "no_relu", "elementwise_matmul");
  INFO("net " << name);
  ForwardedNet f(name);
  const Tensor& scores = f.session.value(f.scores_id);
  REQUIRE(scores.shape() == f.net.scores.shape);
  REQUIRE_CLOSE(scores.data(), f.net.scores.values, scores.numel(), kRtol,
                kAtolFraction * test::max_abs(f.net.scores.values));

  for (const char* rule : {"gradient", "deconvnet", "guided"}) {
    INFO("rule " << rule);
    const NpyArray want = read_npy(f.net.dir + "grad_" + rule + ".npy");
    const Tensor& got = f.backward(parse_rule(rule));
    REQUIRE(got.shape() == want.shape);
    REQUIRE(test::max_abs(want.values) > 0);
    REQUIRE_CLOSE(got.data(), want.values, got.numel(), kRtol, kAtolFraction * test::max_abs(want.values));
  }
}

TEST_CASE("without rectifiers the three rules are bit-identical (paper Sec. 5)", "[golden][rules]") {
  ForwardedNet f("no_relu");
  const Tensor gradient = f.backward(BackwardRule::gradient).clone();
  for (BackwardRule rule : {BackwardRule::deconvnet, BackwardRule::guided}) {
    const Tensor& other = f.backward(rule);
    for (int64_t i = 0; i < gradient.numel(); ++i) REQUIRE(other[i] == gradient[i]);
  }
}

TEST_CASE("with rectifiers the deconvnet rule gives a different result", "[golden][rules]") {
  ForwardedNet f("alexnet_like");
  const Tensor gradient = f.backward(BackwardRule::gradient).clone();
  const Tensor& deconv = f.backward(BackwardRule::deconvnet);
  double diff = 0;
  for (int64_t i = 0; i < gradient.numel(); ++i) diff = std::max(diff, double(std::fabs(deconv[i] - gradient[i])));
  REQUIRE(diff > 1e-4);
}

TEST_CASE("a second backward pass from the same forward gives the same gradient", "[golden]") {
  ForwardedNet f("fire_bn");
  const Tensor first = f.backward(BackwardRule::gradient).clone();
  f.backward(BackwardRule::guided);
  const Tensor& again = f.backward(BackwardRule::gradient);
  for (int64_t i = 0; i < first.numel(); ++i) REQUIRE(again[i] == first[i]);
}

TEST_CASE("gradients of intermediate values are reachable after a backward pass", "[golden][session]") {
  ForwardedNet f("alexnet_like");
  REQUIRE_THROWS_AS(f.session.gradient(f.scores_id), Error);  // no backward pass yet
  f.backward(BackwardRule::gradient);
  // The seed's own gradient is the seed; the first conv's output gradient has its shape and is nonzero.
  for (int64_t i = 0; i < f.seed.numel(); ++i) REQUIRE(f.session.gradient(f.scores_id)[i] == f.seed[i]);
  const int conv1_out = f.net.graph.nodes()[0].outputs[0];
  const Tensor& g = f.session.gradient(conv1_out);
  REQUIRE(g.shape() == f.session.shape(conv1_out));
  double total = 0;
  for (int64_t i = 0; i < g.numel(); ++i) total += std::fabs(g[i]);
  REQUIRE(total > 0);
  // The final Softmax output is not between the input and the scores.
  REQUIRE_THROWS_AS(f.session.gradient(f.net.graph.outputs()[0]), Error);
}
