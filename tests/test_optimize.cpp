// Gradient ascent on the image (viz/optimize): every objective and every deterministic regulariser
// against float64 PyTorch autograd (tests/golden/optimize, written by tests/golden/generate.py part
// D), the image operations against torch, and the pieces that have no golden file (jitter's roll,
// TV's gradient by finite differences, pixel-norm clipping, the level space, graph_up_to).
#include <cmath>
#include <fstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/npy.h"
#include "engine/onnx_import.h"
#include "engine/subgraph.h"
#include "test_support.h"
#include "viz/class_model.h"
#include "viz/optimize.h"

using namespace deepinside;
using deepinside::test::source_path;

namespace {

const std::string kDir = "tests/golden/optimize/";

nlohmann::json golden_cases() {
  std::ifstream in(source_path(kDir + "cases.json"));
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

// alexnet_like with the card of the golden files: a torchvision-style [0,1] range, mean and std,
// so that the grey-level space (gain_c, the mean in levels) is not the identity.
Model golden_model(const nlohmann::json& meta) {
  Model m;
  m.graph = import_onnx_file(source_path("tests/golden/nets/alexnet_like/model.onnx"));
  Preprocessing& p = m.card.preprocessing;
  p.range_lo = meta["preprocessing"]["range"][0];
  p.range_hi = meta["preprocessing"]["range"][1];
  p.mean = meta["preprocessing"]["mean"].get<std::vector<float>>();
  p.std = meta["preprocessing"]["std"].get<std::vector<float>>();
  p.scale = meta["preprocessing"]["scale"];
  p.height = p.width = 23;
  m.channels = 3;
  m.height = m.width = 23;
  m.scores_value = m.graph.default_scores_value();
  m.classes = 10;
  return m;
}

viz::AscentSettings settings_from(const nlohmann::json& s) {
  viz::AscentSettings a;
  a.steps = s["steps"];
  a.lr = s["lr"];
  a.normalize_step = s["normalize_step"];
  a.l2 = s["l2"];
  a.blur_every = s["blur_every"];
  a.blur_sigma = s["blur_sigma"];
  a.tv = s["tv"];
  a.tv_beta = s["tv_beta"];
  a.clip_percentile = s["clip_percentile"];
  a.clamp_range = s["clamp"];
  a.octaves = s["octaves"];
  a.octave_scale = s["octave_scale"];
  a.jitter = 0;
  return a;
}

Tensor random_images(const Shape& shape, uint64_t seed, float std = 1.0f) { return viz::noise_levels(shape, std, seed); }

}  // namespace

// Tolerance: the golden run is float64; the same ascent in float32 torch lands within 3e-6 of the
// largest |X| (cases.json: float32_torch_max_rel_err, worst: invert, through the clamp and the
// normalised step) and within 3e-7 on the objective curve. The engine's float32 sums in another
// order, so allow 30x that: |x - ref| <= 1e-4 |ref| + 1e-4 max|ref|. A wrong regulariser, step rule
// or seed moves X by far more (each case moves X by 10 to 200 grey levels).
TEST_CASE("gradient ascent matches PyTorch autograd for every objective and regulariser", "[optimize][golden]") {
  const nlohmann::json meta = golden_cases();
  const Model model = golden_model(meta);
  auto backend = make_backend("cpu");
  const Tensor input_levels = read_npy_tensor(source_path(kDir + "input_levels.npy"));
  const Tensor noise = read_npy_tensor(source_path(kDir + "noise_levels.npy"));

  // The level space itself: gain_c and the mean as the generator computed them.
  const viz::LevelSpace ls = viz::LevelSpace::from(model.preprocessing(), 3);
  const Tensor mean = ls.mean_levels(1, 1);
  for (int c = 0; c < 3; ++c) {
    CHECK(ls.gain[c] == Approx(double(meta["gain"][c])).epsilon(1e-6));
    CHECK(mean[c] == Approx(double(meta["mean_levels"][c])).epsilon(1e-6));
  }

  REQUIRE(meta["cases"].size() == 8);
  for (const nlohmann::json& c : meta["cases"]) {
    const std::string name = c["name"];
    INFO("case " << name);
    const std::string kind = c["objective"];
    const int value = model.graph.find_value(c["value"]);
    REQUIRE(value >= 0);
    std::unique_ptr<viz::Objective> objective;
    if (kind == "score" || kind == "logprob" || kind == "prob")
      objective = std::make_unique<viz::ClassObjective>(value, c["classes"].get<std::vector<int>>(),
                                                        viz::parse_class_objective(kind));
    else if (kind == "channel")
      objective = std::make_unique<viz::UnitObjective>(value, c["channels"].get<std::vector<int>>(),
                                                       c.value("y", -1), c.value("x", -1));
    else if (kind == "match")
      objective = std::make_unique<viz::MatchObjective>(value, input_levels.clone());
    else if (kind == "norm")
      objective = std::make_unique<viz::NormObjective>(value);
    REQUIRE(objective);
    const std::string start_kind = c["start"];
    const Tensor start = start_kind == "zero" ? Tensor(input_levels.shape())
                                              : (start_kind == "noise" ? noise.clone() : input_levels.clone());

    const viz::AscentResult r = viz::gradient_ascent(model, *backend, *objective, start, settings_from(c["settings"]));

    const NpyArray want = read_npy(source_path(kDir + std::string(c["result"])));
    REQUIRE(r.levels.shape() == want.shape);
    const double scale = test::max_abs(want.values);
    REQUIRE_CLOSE(r.levels.data(), want.values, r.levels.numel(), 1e-4, 1e-4 * scale);

    const NpyArray curve = read_npy(source_path(kDir + std::string(c["curve"])));
    REQUIRE(int64_t(r.curve.size()) == curve.shape[0]);
    std::vector<float> flat;
    for (const auto& row : r.curve)
      for (double v : row) flat.push_back(float(v));
    REQUIRE_CLOSE(flat.data(), curve.values, int64_t(flat.size()), 1e-4, 1e-4 * test::max_abs(curve.values));

    const NpyArray final_objective = read_npy(source_path(kDir + std::string(c["final"])));
    std::vector<float> fin(r.final_objective.begin(), r.final_objective.end());
    REQUIRE_CLOSE(fin.data(), final_objective.values, int64_t(fin.size()), 1e-4,
                  1e-4 * test::max_abs(final_objective.values));
    // The objective went up.
    for (size_t n = 0; n < fin.size(); ++n) CHECK(r.final_objective[n] > r.curve.front()[n]);
  }
}

TEST_CASE("resize and blur match torch (antialiased bilinear, mirrored Gaussian)", "[optimize][golden]") {
  const Tensor x = read_npy_tensor(source_path(kDir + "ops_input.npy"));
  for (auto [file, h, w] : {std::tuple{"ops_resize_16x13.npy", 16, 13}, std::tuple{"ops_resize_31x40.npy", 31, 40}}) {
    INFO(file);
    const NpyArray want = read_npy(source_path(kDir + file));
    const Tensor got = viz::resize_bilinear(x, h, w);
    REQUIRE(got.shape() == want.shape);
    REQUIRE_CLOSE(got.data(), want.values, got.numel(), 1e-5, 1e-6);
  }
  for (auto [file, sigma] : {std::pair{"ops_blur_0.8.npy", 0.8f}, std::pair{"ops_blur_2.5.npy", 2.5f}}) {
    INFO(file);
    const NpyArray want = read_npy(source_path(kDir + file));
    const Tensor got = viz::gaussian_blur(x, sigma);
    REQUIRE(got.shape() == want.shape);
    REQUIRE_CLOSE(got.data(), want.values, got.numel(), 1e-5, 1e-6);
  }
}

TEST_CASE("jitter's roll is a permutation that its inverse shift undoes exactly", "[optimize]") {
  const Tensor x = random_images({2, 3, 7, 9}, 5);
  const Tensor y = viz::roll(x, {3, -11}, {-4, 20});
  const Tensor back = viz::roll(y, {-3, 11}, {4, -20});
  for (int64_t i = 0; i < x.numel(); ++i) REQUIRE(back[i] == x[i]);
  // out[(i + dy) mod H, (j + dx) mod W] = x[i, j]
  CHECK(y[(0 * 3 + 1) * 63 + 3 * 9 + 5] == x[(0 * 3 + 1) * 63 + 0 * 9 + 0]);
}

TEST_CASE("jittered ascent is reproducible from its seed and differs from the unjittered one", "[optimize]") {
  const nlohmann::json meta = golden_cases();
  const Model model = golden_model(meta);
  auto backend = make_backend("cpu");
  viz::AscentSettings s;
  s.steps = 4;
  s.lr = 30000.0f;
  s.l2 = 3e-6f;
  s.jitter = 3;
  s.seed = 42;
  const Tensor zero(Shape{2, 3, 23, 23});
  viz::ClassObjective o1(model.scores_value, {1, 3}, viz::ClassObjectiveKind::score);
  viz::ClassObjective o2(model.scores_value, {1, 3}, viz::ClassObjectiveKind::score);
  viz::ClassObjective o3(model.scores_value, {1, 3}, viz::ClassObjectiveKind::score);
  const viz::AscentResult a = viz::gradient_ascent(model, *backend, o1, zero, s);
  const viz::AscentResult b = viz::gradient_ascent(model, *backend, o2, zero, s);
  s.jitter = 0;
  const viz::AscentResult c = viz::gradient_ascent(model, *backend, o3, zero, s);
  double diff = 0.0;
  for (int64_t i = 0; i < a.levels.numel(); ++i) {
    REQUIRE(a.levels[i] == b.levels[i]);
    diff = std::max(diff, double(std::fabs(a.levels[i] - c.levels[i])));
  }
  CHECK(diff > 0.1);
  for (int n = 0; n < 2; ++n) CHECK(a.final_objective[n] > a.curve.front()[n]);
}

TEST_CASE("total variation's gradient matches central differences (beta 2 and 1.5)", "[optimize]") {
  for (float beta : {2.0f, 1.5f}) {
    INFO("beta " << beta);
    Tensor x = random_images({1, 2, 5, 6}, 9, 3.0f);
    Tensor grad(x.shape());
    viz::total_variation(x, beta, 1.0f, &grad);
    const float h = 1e-2f;
    for (int64_t i = 0; i < x.numel(); ++i) {
      const float keep = x[i];
      x[i] = keep + h;
      const double up = viz::total_variation(x, beta, 1.0f, nullptr)[0];
      x[i] = keep - h;
      const double down = viz::total_variation(x, beta, 1.0f, nullptr)[0];
      x[i] = keep;
      const double fd = (up - down) / (2.0 * double(h));
      REQUIRE(std::fabs(grad[i] - fd) <= 2e-3 * std::max(1.0, std::fabs(fd)));
    }
  }
}

TEST_CASE("pixel-norm clipping zeroes the requested share of the weakest pixels", "[optimize]") {
  Tensor x = random_images({2, 3, 10, 10}, 11);
  viz::clip_small_pixels(x, 25.0f);
  for (int n = 0; n < 2; ++n) {
    int zero = 0;
    double weakest_kept = 1e30, strongest_zeroed = 0.0;
    const Tensor orig = random_images({2, 3, 10, 10}, 11);
    for (int i = 0; i < 100; ++i) {
      double norm = 0.0;
      for (int c = 0; c < 3; ++c) norm += double(orig[(n * 3 + c) * 100 + i]) * orig[(n * 3 + c) * 100 + i];
      const bool zeroed = x[(n * 3) * 100 + i] == 0.0f && x[(n * 3 + 1) * 100 + i] == 0.0f;
      zero += zeroed;
      if (zeroed) strongest_zeroed = std::max(strongest_zeroed, norm);
      else weakest_kept = std::min(weakest_kept, norm);
    }
    CHECK(zero == 25);
    CHECK(strongest_zeroed <= weakest_kept);
  }
}

TEST_CASE("levels: the zero image shows as the dataset mean; input <-> levels round trip", "[optimize]") {
  Preprocessing p;
  p.channel_order = ChannelOrder::bgr;
  p.mean = {104.0f, 117.0f, 123.0f};
  const viz::LevelSpace caffe = viz::LevelSpace::from(p, 3);
  for (float g : caffe.gain) CHECK(g == 1.0f);  // a Caffe net's input is the paper's centred image
  const Tensor zero(Shape{3, 2, 2});
  const Image img = caffe.to_image(zero.data(), 2, 2);
  CHECK(int(img.pixels[0]) == 123);  // R = mean of the model's third (R) channel
  CHECK(int(img.pixels[2]) == 104);

  Preprocessing q;
  q.range_hi = 1.0f;
  q.mean = {0.5f};
  q.std = {0.25f};
  const viz::LevelSpace grey = viz::LevelSpace::from(q, 1);
  CHECK(grey.gain[0] == Approx(1.0 / 255.0 / 0.25));
  const Tensor t = random_images({2, 1, 3, 4}, 3);
  const Tensor back = grey.to_input(grey.to_levels(t));
  for (int64_t i = 0; i < t.numel(); ++i) CHECK(back[i] == Approx(t[i]).margin(1e-6));
}

TEST_CASE("graph_up_to keeps value ids, runs the trunk alone and at other sizes", "[optimize]") {
  const Graph g = import_onnx_file(source_path("tests/golden/nets/alexnet_like/model.onnx"));
  const int relu2 = g.find_value("/relu2/Relu_output_0");
  REQUIRE(relu2 >= 0);
  const Graph part = graph_up_to(g, relu2);
  CHECK(part.value_count() == g.value_count());
  CHECK(part.outputs() == std::vector<int>{relu2});
  CHECK(part.nodes().size() == 6);  // Conv Relu LRN MaxPool Conv Relu
  auto backend = make_backend("cpu");
  const Tensor x = read_npy_tensor(source_path("tests/golden/nets/alexnet_like/input.npy"));
  Session whole(g, *backend, x.shape()), trunk(part, *backend, x.shape());
  whole.forward(x);
  trunk.forward(x);
  const Tensor& a = whole.value(relu2);
  const Tensor& b = trunk.value(relu2);
  for (int64_t i = 0; i < a.numel(); ++i) REQUIRE(a[i] == b[i]);
  // The trunk takes 16x16 images, the whole net (Flatten -> Gemm 192) does not.
  CHECK_NOTHROW(Session(part, *backend, {1, 3, 16, 16}));
  CHECK_THROWS_AS(Session(g, *backend, {1, 3, 16, 16}), Error);
  CHECK_THROWS_AS(graph_up_to(g, g.input()), Error);
}

TEST_CASE("bad requests are clear errors before any work", "[optimize]") {
  const nlohmann::json meta = golden_cases();
  const Model model = golden_model(meta);
  auto backend = make_backend("cpu");
  viz::AscentSettings s;
  s.steps = 1;
  CHECK_THROWS_WITH(viz::class_model_visualisation(model, *backend, {10}, viz::ClassObjectiveKind::score, s),
                    Catch::Contains("class 10 is out of range"));
  const int relu2 = model.graph.find_value("/relu2/Relu_output_0");
  CHECK_THROWS_WITH(viz::activation_maximisation(model, *backend, relu2, {12}, -1, -1, 1.0f, s),
                    Catch::Contains("channel 12 is out of range"));
  CHECK_THROWS_WITH(viz::activation_maximisation(model, *backend, relu2, {1}, 6, 0, 1.0f, s),
                    Catch::Contains("outside layer"));
  s.octaves = 2;  // the whole net cannot take the smaller octave
  CHECK_THROWS_WITH(viz::class_model_visualisation(model, *backend, {1}, viz::ClassObjectiveKind::score, s),
                    Catch::Contains("octave 1 of 2"));
  s.octaves = 1;
  s.lr = -1.0f;
  CHECK_THROWS_WITH(viz::check_settings(s), Catch::Contains("--lr"));
}
