// Weakly supervised localisation (viz/localize, viz/localize_eval, `deepinside localize` and
// `eval-localization`): the GMM fit recovers known mixtures, the GraphCut reaches the minimum energy
// and segments a two-colour image exactly, components, boxes, IoU, the metric, the batched maps equal
// the single-image methods, and the CLI on a real photo and on bad input.
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "engine/image.h"
#include "engine/model.h"
#include "engine/session.h"
#include "engine/backend.h"
#include "engine/error.h"
#include "cli_support.h"
#include "test_support.h"
#include "viz/cam.h"
#include "viz/localize.h"
#include "viz/localize_eval.h"
#include "viz/saliency.h"

namespace fs = std::filesystem;
using namespace deepinside;
using namespace deepinside::viz;
using deepinside::test::have_shared;
using namespace deepinside::test;
using deepinside::test::shared_path;
using deepinside::test::source_path;

namespace {

const std::string kScenesModel = source_path("weights/fashion_scenes/fashion_scenes_cnn.onnx");

// n points from sum_k w_k N(mean_k, diag(sd_k^2)) in dim dimensions.
std::vector<double> sample_mixture(const std::vector<double>& w, const std::vector<std::vector<double>>& mean,
                                   const std::vector<std::vector<double>>& sd, int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::discrete_distribution<int> pick(w.begin(), w.end());
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> pts;
  for (int i = 0; i < n; ++i) {
    const int k = pick(rng);
    for (size_t d = 0; d < mean[k].size(); ++d) pts.push_back(mean[k][d] + sd[k][d] * normal(rng));
  }
  return pts;
}

// The fitted component whose mean is nearest to `mean`.
int nearest_component(const GaussianMixture& g, const std::vector<double>& mean) {
  int best = -1;
  double bd = 1e300;
  for (int k = 0; k < g.components(); ++k) {
    double d = 0;
    for (int i = 0; i < g.dim; ++i) d += std::pow(g.means[size_t(k) * g.dim + i] - mean[i], 2);
    if (d < bd) bd = d, best = k;
  }
  return best;
}

Image solid(int w, int h, std::array<uint8_t, 3> rgb) {
  Image img{w, h, 3, std::vector<uint8_t>(size_t(w) * h * 3)};
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = rgb[i % 3];
  return img;
}

void paint(Image& img, const Box& b, std::array<uint8_t, 3> rgb) {
  for (int y = b.y0; y < b.y1; ++y)
    for (int x = b.x0; x < b.x1; ++x)
      for (int c = 0; c < 3; ++c) img.pixels[(size_t(y) * img.width + x) * 3 + c] = rgb[c];
}

std::vector<uint8_t> box_mask(const Box& b, int w, int h) {
  std::vector<uint8_t> m(size_t(w) * h, 0);
  for (int y = b.y0; y < b.y1; ++y)
    for (int x = b.x0; x < b.x1; ++x) m[size_t(y) * w + x] = 1;
  return m;
}

// ---- the CLI ---------------------------------------------------------------------------------------

}  // namespace

// ---- Gaussian mixtures ---------------------------------------------------------------------------

TEST_CASE("GMM: EM recovers a known three-component colour mixture", "[localize][gmm]") {
  const std::vector<double> w = {0.5, 0.3, 0.2};
  const std::vector<std::vector<double>> mean = {{0.2, 0.2, 0.8}, {0.8, 0.3, 0.1}, {0.5, 0.9, 0.5}};
  const std::vector<std::vector<double>> sd = {{0.03, 0.05, 0.04}, {0.05, 0.02, 0.03}, {0.04, 0.04, 0.06}};
  const std::vector<double> pts = sample_mixture(w, mean, sd, 20000, 7);
  GmmOptions o;
  o.components = 3;
  const GaussianMixture g = fit_gmm(pts, 3, o);
  REQUIRE(g.components() == 3);
  for (int k = 0; k < 3; ++k) {
    const int f = nearest_component(g, mean[k]);
    INFO("true component " << k << " -> fitted " << f);
    CHECK(g.weights[f] == Approx(w[k]).margin(0.015));
    for (int d = 0; d < 3; ++d) {
      CHECK(g.means[size_t(f) * 3 + d] == Approx(mean[k][d]).margin(0.005));
      // diagonal variance within 10% (the regulariser adds 1e-4), off-diagonals near zero
      CHECK(g.covariances[size_t(f) * 9 + d * 4] == Approx(sd[k][d] * sd[k][d] + 1e-4).epsilon(0.1));
      for (int e = 0; e < 3; ++e)
        if (e != d) CHECK(std::fabs(g.covariances[size_t(f) * 9 + d * 3 + e]) < 2e-4);
    }
  }
  // Different seeds find the same mixture (up to the order of the components).
  o.seed = 12345;
  const GaussianMixture g2 = fit_gmm(pts, 3, o);
  for (int k = 0; k < 3; ++k) CHECK(g2.weights[nearest_component(g2, mean[k])] == Approx(w[k]).margin(0.015));
}

TEST_CASE("GMM: a one-dimensional mixture with overlapping components, and its density", "[localize][gmm]") {
  const std::vector<double> pts = sample_mixture({0.6, 0.4}, {{0.0}, {1.0}}, {{0.3}, {0.2}}, 40000, 3);
  GmmOptions o;
  o.components = 2;
  o.max_iterations = 500;
  o.tolerance = 1e-9;
  const GaussianMixture g = fit_gmm(pts, 1, o);
  REQUIRE(g.components() == 2);
  const int a = nearest_component(g, {0.0}), b = nearest_component(g, {1.0});
  REQUIRE(a != b);
  CHECK(g.weights[a] == Approx(0.6).margin(0.03));
  CHECK(g.means[a] == Approx(0.0).margin(0.03));
  CHECK(g.means[b] == Approx(1.0).margin(0.02));
  CHECK(std::sqrt(g.covariances[a]) == Approx(0.3).margin(0.02));
  CHECK(std::sqrt(g.covariances[b]) == Approx(0.2).margin(0.02));
  // log_density is the log of the weighted sum of normal densities.
  for (double x : {-0.5, 0.0, 0.37, 1.0, 2.5}) {
    double p = 0;
    for (int k = 0; k < 2; ++k)
      p += g.weights[k] * std::exp(-0.5 * std::pow(x - g.means[k], 2) / g.covariances[k]) /
           std::sqrt(2 * M_PI * g.covariances[k]);
    CHECK(g.log_density(&x) == Approx(std::log(p)).epsilon(1e-10));
  }
}

TEST_CASE("GMM: fewer distinct points than components, a single point, bad input", "[localize][gmm]") {
  std::vector<double> pts;
  for (int i = 0; i < 50; ++i) pts.insert(pts.end(), {0.1, 0.2, 0.3});
  for (int i = 0; i < 30; ++i) pts.insert(pts.end(), {0.9, 0.8, 0.7});
  const GaussianMixture g = fit_gmm(pts, 3, GmmOptions{});
  REQUIRE(g.components() == 2);  // two distinct colours: the three duplicate components are dropped
  CHECK(g.weights[nearest_component(g, {0.1, 0.2, 0.3})] == Approx(50.0 / 80.0));
  const double x[3] = {0.1, 0.2, 0.3};
  CHECK(std::isfinite(g.log_density(x)));
  CHECK(fit_gmm({0.5}, 1, GmmOptions{}).components() == 1);
  CHECK_THROWS_AS(fit_gmm({}, 3, GmmOptions{}), Error);
  CHECK_THROWS_AS(fit_gmm({0.1, 0.2}, 3, GmmOptions{}), Error);
  CHECK_THROWS_AS(fit_gmm({0.1, NAN, 0.3}, 3, GmmOptions{}), Error);
  GmmOptions no_em;
  no_em.max_iterations = 0;
  CHECK_THROWS_AS(fit_gmm({0.5}, 1, no_em), Error);
  GmmOptions negative_tolerance;
  negative_tolerance.tolerance = -1.0;
  CHECK_THROWS_AS(fit_gmm({0.5}, 1, negative_tolerance), Error);
}

TEST_CASE("GMM: more EM iterations never lower the likelihood, and the limit is honoured", "[localize][gmm]") {
  // Overlapping components, so EM needs many iterations to converge: one iteration stops short.
  const std::vector<double> pts = sample_mixture({0.6, 0.4}, {{0.0}, {0.6}}, {{0.3}, {0.25}}, 5000, 11);
  auto mean_log_likelihood = [&](const GaussianMixture& g) {
    double sum = 0;
    for (double x : pts) sum += g.log_density(&x);
    return sum / double(pts.size());
  };
  GmmOptions o;
  o.components = 2;
  o.tolerance = 0.0;  // run to the limit
  o.max_iterations = 1;
  const GaussianMixture one = fit_gmm(pts, 1, o);
  o.max_iterations = 200;
  const GaussianMixture many = fit_gmm(pts, 1, o);
  CHECK(mean_log_likelihood(many) > mean_log_likelihood(one) + 1e-6);
  CHECK(many.means != one.means);
}

// ---- GraphCut ---------------------------------------------------------------------------------------

TEST_CASE("GraphCut: the cut reaches the minimum energy (brute force over every labelling)", "[localize][graphcut]") {
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int trial = 0; trial < 12; ++trial) {
    const int W = trial % 2 ? 4 : 3, H = 3;  // at most 12 pixels: 4096 labellings
    Image img{W, H, 3, std::vector<uint8_t>(size_t(W) * H * 3)};
    for (auto& p : img.pixels) p = uint8_t(byte(rng));
    // Two random-ish colour models fitted to halves of random colours.
    std::vector<double> a, b;
    for (int i = 0; i < 40; ++i) {
      a.push_back(byte(rng) / 510.0), a.push_back(byte(rng) / 255.0), a.push_back(byte(rng) / 510.0);
      b.push_back(0.5 + byte(rng) / 510.0), b.push_back(byte(rng) / 255.0), b.push_back(0.5 + byte(rng) / 510.0);
    }
    GmmOptions o;
    o.components = 2;
    const GaussianMixture fg = fit_gmm(a, 3, o), bg = fit_gmm(b, 3, o);
    for (int neighbours : {4, 8})
      for (double gamma : {0.0, 2.0, 50.0}) {
        const std::vector<uint8_t> cut = graphcut_segment(img, fg, bg, gamma, neighbours);
        const double e_cut = graphcut_energy(img, fg, bg, gamma, neighbours, cut);
        double e_min = 1e300;
        for (int code = 0; code < (1 << (W * H)); ++code) {
          std::vector<uint8_t> l(size_t(W) * H);
          for (int p = 0; p < W * H; ++p) l[p] = (code >> p) & 1;
          e_min = std::min(e_min, graphcut_energy(img, fg, bg, gamma, neighbours, l));
        }
        INFO("trial " << trial << ", " << neighbours << "-neighbours, gamma " << gamma);
        CHECK(e_cut == Approx(e_min).epsilon(1e-9).margin(1e-9));
      }
  }
}

TEST_CASE("GraphCut: a synthetic two-colour image segments exactly", "[localize][graphcut]") {
  const int W = 64, H = 48;
  const Box object{17, 9, 45, 37};
  Image img = solid(W, H, {30, 60, 200});
  paint(img, object, {220, 40, 30});
  // Saliency: high on a small patch inside the object (the foreground seeds), zero on most of the
  // background, a little in between, so the 95% / 30% quantiles pick object and background pixels.
  std::vector<float> saliency(size_t(W) * H, 0.0f);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      float& s = saliency[size_t(y) * W + x];
      if (x >= 25 && x < 35 && y >= 18 && y < 28) s = 1.0f;
      else if (x >= 12 && x < 50 && y >= 5 && y < 42) s = 0.1f + 0.001f * float(x);
    }
  for (int neighbours : {4, 8}) {
    GraphCutOptions o;
    o.neighbours = neighbours;
    const Localization loc = localize_graphcut(img, saliency.data(), o);
    INFO(neighbours << "-neighbours");
    REQUIRE(!loc.degenerate);
    CHECK(loc.segmentation == box_mask(object, W, H));
    CHECK(loc.mask == box_mask(object, W, H));
    CHECK(loc.box == object);
    CHECK(loc.mask_area == object.area());
    CHECK(loc.fg_seeds >= int64_t(0.05 * W * H) - 1);
    CHECK(loc.bg_seeds >= int64_t(0.30 * W * H));
    CHECK(loc.beta > 0.0);
  }
  // A second object of the foreground colour, not touching the first: the cut takes both, the
  // largest connected component keeps only the bigger one.
  const Box small{2, 40, 10, 46};
  paint(img, small, {220, 40, 30});
  const Localization two = localize_graphcut(img, saliency.data(), GraphCutOptions{});
  std::vector<uint8_t> both = box_mask(object, W, H);
  for (int y = small.y0; y < small.y1; ++y)
    for (int x = small.x0; x < small.x1; ++x) both[size_t(y) * W + x] = 1;
  CHECK(two.segmentation == both);
  CHECK(two.mask == box_mask(object, W, H));
  CHECK(two.box == object);
}

TEST_CASE("GraphCut: grey images, a constant saliency map, the options are checked", "[localize][graphcut]") {
  const int W = 40, H = 40;
  Image grey{W, H, 1, std::vector<uint8_t>(size_t(W) * H, 20)};
  const Box object{5, 10, 25, 30};
  for (int y = object.y0; y < object.y1; ++y)
    for (int x = object.x0; x < object.x1; ++x) grey.pixels[size_t(y) * W + x] = 230;
  std::vector<float> saliency(size_t(W) * H, 0.0f);
  for (int y = 15; y < 25; ++y)
    for (int x = 10; x < 20; ++x) saliency[size_t(y) * W + x] = 1.0f + 0.01f * float(x + y);
  const Localization loc = localize_graphcut(grey, saliency.data(), GraphCutOptions{});
  CHECK(loc.box == object);

  const std::vector<float> flat(size_t(W) * H, 0.5f);
  const Localization d = localize_graphcut(grey, flat.data(), GraphCutOptions{});
  CHECK(d.degenerate);
  CHECK(d.box == Box{0, 0, W, H});

  GraphCutOptions bad;
  bad.fg_quantile = 1.5;
  CHECK_THROWS_AS(localize_graphcut(grey, saliency.data(), bad), Error);
  bad = GraphCutOptions{};
  bad.bg_quantile = 0.97;
  CHECK_THROWS_AS(check_graphcut_options(bad), Error);
  bad = GraphCutOptions{};
  bad.neighbours = 6;
  CHECK_THROWS_AS(check_graphcut_options(bad), Error);
  bad = GraphCutOptions{};
  bad.gamma = -1;
  CHECK_THROWS_AS(check_graphcut_options(bad), Error);
  bad = GraphCutOptions{};
  bad.em_iterations = 0;
  CHECK_THROWS_AS(check_graphcut_options(bad), Error);
  bad = GraphCutOptions{};
  bad.em_tolerance = NAN;
  CHECK_THROWS_AS(check_graphcut_options(bad), Error);
  std::vector<float> nan_map = saliency;
  nan_map[7] = NAN;
  CHECK_THROWS_AS(localize_graphcut(grey, nan_map.data(), GraphCutOptions{}), Error);
}

// ---- Components, boxes, IoU, quantiles --------------------------------------------------------------

TEST_CASE("largest connected component, 4- and 8-connected", "[localize][mask]") {
  const int W = 6, H = 6;
  const std::vector<uint8_t> m = {
      1, 1, 0, 0, 0, 1,  //
      1, 1, 0, 0, 0, 1,  //
      0, 0, 1, 0, 0, 1,  //
      0, 0, 0, 1, 0, 1,  //
      0, 0, 0, 0, 0, 1,  //
      0, 0, 0, 0, 0, 0,  //
  };
  // 4-connected: the top-left 2x2 block (4 pixels), the right column (5), two single pixels.
  const std::vector<uint8_t> four = largest_component(m, W, H, 4);
  CHECK(std::count(four.begin(), four.end(), 1) == 5);
  CHECK(bounding_box(four, W, H) == Box{5, 0, 6, 5});
  // 8-connected: the block and the two diagonal pixels form a chain of 6.
  const std::vector<uint8_t> eight = largest_component(m, W, H, 8);
  CHECK(std::count(eight.begin(), eight.end(), 1) == 6);
  CHECK(bounding_box(eight, W, H) == Box{0, 0, 4, 4});
  // Ties: the component met first in scan order wins.
  const std::vector<uint8_t> tie = {1, 0, 1, 1, 0, 1};
  CHECK(largest_component(tie, 3, 2, 4) == std::vector<uint8_t>{1, 0, 0, 1, 0, 0});
  // Empty.
  const std::vector<uint8_t> none(12, 0);
  CHECK(largest_component(none, 4, 3, 8) == none);
  CHECK(bounding_box(none, 4, 3).empty());
  CHECK_THROWS_AS(largest_component(none, 4, 3, 6), Error);
  CHECK_THROWS_AS(bounding_box(none, 5, 3), Error);
}

TEST_CASE("bounding box and IoU", "[localize][box]") {
  std::vector<uint8_t> m(10 * 8, 0);
  m[2 * 10 + 3] = m[5 * 10 + 7] = m[6 * 10 + 4] = 1;
  CHECK(bounding_box(m, 10, 8) == Box{3, 2, 8, 7});
  const Box a{0, 0, 10, 10};
  CHECK(iou(a, a) == 1.0);
  CHECK(iou(a, Box{10, 0, 20, 10}) == 0.0);           // touching edges do not overlap (x1 exclusive)
  CHECK(iou(a, Box{5, 0, 15, 10}) == Approx(1.0 / 3.0));
  CHECK(iou(a, Box{0, 0, 5, 5}) == Approx(0.25));
  CHECK(iou(Box{}, Box{}) == 0.0);
  CHECK(iou(a, Box{3, 3, 2, 8}) == 0.0);               // an inverted box is empty
}

TEST_CASE("quantiles interpolate like numpy's default", "[localize][mask]") {
  const std::vector<float> v = {5, 1, 4, 2, 3};
  CHECK(quantile(v.data(), 5, 0.0) == 1.0);
  CHECK(quantile(v.data(), 5, 1.0) == 5.0);
  CHECK(quantile(v.data(), 5, 0.5) == 3.0);
  CHECK(quantile(v.data(), 5, 0.3) == Approx(2.2));   // numpy.quantile([1,2,3,4,5], 0.3) = 2.2
  CHECK(quantile(v.data(), 5, 0.95) == Approx(4.8));
  CHECK(quantile(v.data(), 1, 0.95) == 5.0);
}

TEST_CASE("threshold boxes (the baselines) keep the largest blob above a fraction of the maximum", "[localize][box]") {
  const int W = 30, H = 20;
  std::vector<float> map(size_t(W) * H, 0.0f);
  for (int y = 4; y < 12; ++y)
    for (int x = 5; x < 15; ++x) map[size_t(y) * W + x] = 1.0f;
  map[18 * W + 27] = 0.9f;  // a lone bright pixel elsewhere
  CHECK(threshold_box(map.data(), W, H, {0.2, 0.0}) == Box{5, 4, 15, 12});
  CHECK(threshold_box(std::vector<float>(size_t(W) * H, 0.0f).data(), W, H, {0.2, 0.0}) == Box{0, 0, W, H});
  // Blurring spreads the blob: a low threshold grows the box, never shrinks it.
  const Box blurred = threshold_box(map.data(), W, H, {0.1, 2.0});
  CHECK((blurred.x0 <= 5 && blurred.y0 <= 4 && blurred.x1 >= 15 && blurred.y1 >= 12));
}

TEST_CASE("the ILSVRC metric: right class and IoU >= 0.5 within the first one or five guesses", "[localize][metric]") {
  const Box truth{10, 10, 50, 50};
  const Box good{12, 12, 50, 50}, bad{60, 60, 90, 90};
  LocalizationTally t;
  t.add({3, 1, 2, 4, 5}, {good, bad, bad, bad, bad}, 3, truth);  // top-1 right
  t.add({1, 3, 2, 4, 5}, {good, good, bad, bad, bad}, 3, truth); // right class second: top-5 only
  t.add({3, 1, 2, 4, 5}, {bad, good, good, good, good}, 3, truth); // right class, wrong box: wrong
  t.add({0, 1, 2, 4, 5}, {good, good, good, good, good}, 3, truth); // class not in the top 5: wrong
  t.add({1, 2, 4, 5, 6, 3}, {bad, bad, bad, bad, bad, good}, 3, truth); // sixth guess does not count
  CHECK(t.images == 5);
  CHECK(t.top1_error() == Approx(4.0 / 5.0));
  CHECK(t.top5_error() == Approx(3.0 / 5.0));
}

TEST_CASE("boxes map from the network input back to the image", "[localize][box]") {
  Model m;
  m.width = m.height = 96;
  InputGeometry g = input_geometry(96, 96, m);
  CHECK(box_to_image(Box{3, 5, 40, 96}, g) == Box{3, 5, 40, 96});
  g = input_geometry(192, 96, m);  // straight resize: x halves
  CHECK(box_to_image(Box{3, 5, 40, 96}, g) == Box{6, 5, 80, 96});
  m.width = m.height = 227;        // SqueezeNet: shorter side 256, centre crop 227
  m.card.preprocessing.resize_shorter = 256;
  g = input_geometry(512, 400, m);  // -> 328 x 256, crop offset (50, 14), scale 0.64
  CHECK(g.offset_x == 50);
  CHECK(g.offset_y == 14);
  CHECK(box_to_image(Box{0, 0, 227, 227}, g) == Box{78, 21, 433, 377});
}

// ---- Batched maps vs the single-image methods ----------------------------------------------------------

TEST_CASE("class_maps: one pass per rank for a batch equals saliency, CAM and Grad-CAM image by image",
          "[localize][maps]") {
  if (!fs::exists(kScenesModel)) {
    WARN("skipped: " << kScenesModel << " is absent");
    return;
  }
  const Model model = load_model(kScenesModel, {});
  const auto backend = make_backend("cpu");
  const int N = 3, C = model.channels, H = model.height, W = model.width;
  Tensor batch(Shape{N, C, H, W});
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t i = 0; i < batch.numel(); ++i) batch[i] = normal(rng);
  const std::vector<std::vector<int>> classes = {{0, 4, 9}, {7, 7, 1}, {2, 5, 3}};
  Session session(model.graph, *backend, batch.shape());
  session.forward(batch);
  ClassMapOptions o;
  o.cam = o.gradcam = true;
  const ClassMaps maps = class_maps(session, model, classes, o);
  REQUIRE(maps.saliency.shape() == Shape{N, 3, H, W});
  Session single(model.graph, *backend, Shape{1, C, H, W});
  for (int n = 0; n < N; ++n)
    for (int j = 0; j < 3; ++j) {
      Tensor one(Shape{1, C, H, W});
      std::copy(batch.data() + int64_t(n) * C * H * W, batch.data() + int64_t(n + 1) * C * H * W, one.data());
      INFO("image " << n << ", class " << classes[n][j]);
      const SaliencyResult s = compute_saliency(single, model, one, {classes[n][j]}, BackwardRule::gradient);
      REQUIRE_CLOSE(maps.saliency_at(n, j), s.map.data(), int64_t(H) * W, 1e-4, 1e-6);
      const CamResult cam = class_activation_map(single, model, one, classes[n][j]);
      REQUIRE_CLOSE(maps.cam_at(n, j), cam.map.data(), int64_t(H) * W, 1e-4, 1e-5);
      const CamResult gc = grad_cam(single, model, one, classes[n][j], default_gradcam_layer(model));
      REQUIRE_CLOSE(maps.gradcam_at(n, j), gc.map.data(), int64_t(H) * W, 1e-4, 1e-6);
    }
  // `localize` plans a fused session (docs/fusion.md) that keeps only the scores: its saliency maps
  // are the unfused session's.
  Session fused(model.graph, *backend, batch.shape(), SessionOptions{true, {model.scores_value}});
  REQUIRE(fused.fused_relus() > 0);
  fused.forward(batch);
  const ClassMaps fused_maps = class_maps(fused, model, classes, {});
  REQUIRE_CLOSE(fused_maps.saliency.data(), maps.saliency.data(), maps.saliency.numel(), 1e-5, 1e-7);
  CHECK_THROWS_AS(class_maps(session, model, {{0}, {1, 2}, {3}}, o), Error);
  CHECK_THROWS_AS(class_maps(session, model, {{0}, {10}, {3}}, o), Error);
}

// ---- The command line ------------------------------------------------------------------------------

TEST_CASE("localize on a real photo with SqueezeNet: JSON, masks and the boxes picture", "[localize][cli]") {
  if (!have_shared("models/squeezenet1.1/squeezenet1.1.onnx") || !have_shared("images/cat.jpg")) return;
  TempDir dir;
  const RunResult r = run("localize --model " + shared_path("models/squeezenet1.1/squeezenet1.1.onnx") + " --image " +
                              shared_path("images/cat.jpg") + " --top 3 --out " + (dir / "cat.json"),
                          dir);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto j = nlohmann::json::parse(slurp(dir / "cat.json"));
  REQUIRE(j["classes"].size() == 3);
  const Image img = load_image(shared_path("images/cat.jpg"));
  for (int rank = 1; rank <= 3; ++rank) {
    const auto& c = j["classes"][rank - 1];
    CHECK(c["rank"] == rank);
    const Box b{c["box"][0], c["box"][1], c["box"][2], c["box"][3]};
    CHECK((b.x0 >= 0 && b.y0 >= 0 && b.x1 <= 227 && b.y1 <= 227 && !b.empty()));
    const Box bi{c["box_image"][0], c["box_image"][1], c["box_image"][2], c["box_image"][3]};
    CHECK((bi.x0 >= 0 && bi.y0 >= 0 && bi.x1 <= img.width && bi.y1 <= img.height && !bi.empty()));
    const Image mask = load_image(dir / ("cat_mask" + std::to_string(rank) + ".png"));
    REQUIRE((mask.width == 227 && mask.height == 227 && mask.channels == 1));
    int64_t area = 0;
    for (uint8_t p : mask.pixels) area += p == 255;
    CHECK(area == c["mask_area"].get<int64_t>());
    CHECK(c["mask_area"].get<int64_t>() <= b.area());
  }
  // The top class of the cat photo is a cat (ImageNet classes 281-285), and its box is not the whole crop.
  const int top = j["classes"][0]["class"];
  CHECK((top >= 281 && top <= 285));
  const Image boxes = load_image(dir / "cat_boxes.png");
  CHECK((boxes.width == 227 && boxes.height == 227 && boxes.channels == 3));
}

TEST_CASE("localize: bad input gives one message, exit 1 and no output", "[localize][cli][bad-input]") {
  const std::string model = source_path("weights/fashion_mnist/fashion_cnn.onnx");
  const std::string image = source_path("weights/fashion_mnist/samples/test0000_ankle_boot.png");
  TempDir dir;
  const std::string out = " --out " + (dir / "o.json");
  require_clean_failure(run("localize --model " + model + " --image " + image + " --class 10" + out, dir),
                        "class 10 is out of range");
  require_clean_failure(run("localize --model " + model + " --image " + image + " --class -3" + out, dir),
                        "out of range");
  require_clean_failure(run("localize --model " + model + " --image " + image + " --fg-quantile 1.5" + out, dir),
                        "foreground quantile");
  require_clean_failure(run("localize --model " + model + " --image " + image + " --bg-quantile 0.99" + out, dir),
                        "background quantile");
  require_clean_failure(run("localize --model " + model + " --image " + image + " --neighbours 6" + out, dir),
                        "neighbourhood");
  require_clean_failure(run("localize --model " + model + " --image " + image + " --components 0" + out, dir),
                        "components");
  require_clean_failure(run("localize --model " + model + " --image " + image + " --em-iterations 0" + out, dir),
                        "EM iterations");
  require_clean_failure(run("localize --model " + model + " --image " + image + " --top 0" + out, dir), "--top");
  require_clean_failure(run("localize --model " + model + " --image " + (dir / "nope.png") + out, dir),
                        "cannot open image");
  require_no_files_but(dir, {});
  // And a good run on the same grey 28x28 model works (the colour models are one-dimensional then).
  const RunResult ok = run("localize --model " + model + " --image " + image + " --top 2 --upscale 4" + out, dir);
  INFO(ok.err);
  REQUIRE(ok.exit_code == 0);
  CHECK(load_image(dir / "o_boxes.png").width == 112);
  CHECK(fs::exists(dir / "o_mask2.png"));
}

TEST_CASE("eval-localization: bad data gives one message and exit 1", "[localize][cli][bad-input]") {
  const std::string model = source_path("weights/fashion_mnist/fashion_cnn.onnx");
  const std::string image = source_path("weights/fashion_mnist/samples/test0000_ankle_boot.png");
  TempDir dir;
  require_clean_failure(run("eval-localization --model " + model + " --data " + (dir / "nothing"), dir),
                        "ground_truth.json");
  std::ofstream(dir / "ground_truth.json") << "{\"images\": [{\"file\": \"" << image << "\", \"class\": 12, \"box\": [0, 0, 5, 5]}]}";
  require_clean_failure(run("eval-localization --model " + model + " --data " + dir.path.string(), dir),
                        "class 12 is out of range");
  std::ofstream(dir / "ground_truth.json") << "{\"images\": [{\"file\": \"x.png\", \"class\": 1, \"box\": [0, 0, 5]}]}";
  require_clean_failure(run("eval-localization --model " + model + " --data " + dir.path.string(), dir), "box");
  std::ofstream(dir / "ground_truth.json") << "{\"images\": [";
  require_clean_failure(run("eval-localization --model " + model + " --data " + dir.path.string(), dir), "not valid JSON");
  std::ofstream(dir / "ground_truth.json") << "{\"images\": [{\"file\": \"" << image << "\", \"class\": 9, \"box\": [2, 2, 14, 14]}]}";
  require_clean_failure(run("eval-localization --model " + model + " --data " + dir.path.string() + " --methods graphcut,magic", dir),
                        "unknown method 'magic'");
  require_clean_failure(run("eval-localization --model " + model + " --data " + dir.path.string() + " --methods cam", dir),
                        "global average pool");
  // The same one-image set evaluates (the grey model has no global average pool: CAM is left out).
  const RunResult ok = run("eval-localization --model " + model + " --data " + dir.path.string() + " --json", dir);
  INFO(ok.err);
  REQUIRE(ok.exit_code == 0);
  const auto j = nlohmann::json::parse(ok.out);
  CHECK(j["images"] == 1);
  CHECK(j["classification"]["top1_error"] == 0.0);
  CHECK(!j["methods"].contains("cam"));
  CHECK(j["methods"]["full-image"]["top1_error"] == 1.0);  // a 12x12 box in 28x28: IoU 0.18
}

TEST_CASE("localize: an output folder that is missing, bad flag syntax: no file is written", "[localize][cli][bad-input]") {
  const std::string model = source_path("weights/fashion_mnist/fashion_cnn.onnx");
  const std::string image = source_path("weights/fashion_mnist/samples/test0000_ankle_boot.png");
  TempDir dir;
  const std::string base = "localize --model " + model + " --image " + image;
  // The JSON's folder is there but the overlay's is not: the masks, which would be written first, must
  // not be left behind.
  require_clean_failure(run(base + " --out " + (dir / "o.json") + " --overlay " + (dir / "missing/boxes.png"), dir),
                        "does not exist");
  require_clean_failure(run(base + " --out " + (dir / "missing/o.json"), dir), "does not exist");
  require_no_files_but(dir, {});
  // A write that fails after others succeeded (the overlay's path is a folder): those are removed again.
  fs::create_directory(dir / "a_folder");
  require_clean_failure(run(base + " --out " + (dir / "o.json") + " --overlay " + (dir / "a_folder"), dir),
                        "cannot write");
  require_no_files_but(dir, {"a_folder"});
  fs::remove(dir / "a_folder");
  // Flag syntax is CLI11's to check: a non-zero exit, the flag named, nothing written.
  const std::vector<std::pair<std::string, std::string>> bad = {
      {" --bogus", "--bogus"}, {" --gamma many", "--gamma"}, {" --neighbours 4.5", "--neighbours"}, {" --class", "--class"}};
  for (const auto& [flags, flag] : bad) {
    const RunResult r = run(base + " --out " + (dir / "o.json") + flags, dir);
    INFO("flags:" << flags << "\nstderr: " << r.err);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find(flag) != std::string::npos);
  }
  require_no_files_but(dir, {});
}

namespace {

// A small labelled set the test writes itself: n scenes of the fashion_scenes model's size (96x96), grey
// noise with one coloured rectangle each, its box the ground truth, classes cycling through 0..9.
std::vector<LabelledImage> write_rectangle_scenes(const TempDir& dir, int n) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> noise(60, 140), side(24, 60), colour(0, 255);
  nlohmann::json images = nlohmann::json::array();
  std::vector<LabelledImage> out;
  for (int i = 0; i < n; ++i) {
    Image img{96, 96, 3, std::vector<uint8_t>(96 * 96 * 3)};
    for (uint8_t& p : img.pixels) p = uint8_t(noise(rng));
    const int w = side(rng), h = side(rng);
    const int x0 = std::uniform_int_distribution<int>(0, 96 - w)(rng), y0 = std::uniform_int_distribution<int>(0, 96 - h)(rng);
    const Box b{x0, y0, x0 + w, y0 + h};
    paint(img, b, {uint8_t(colour(rng)), uint8_t(colour(rng)), uint8_t(colour(rng))});
    const std::string name = "scene" + std::to_string(i) + ".png";
    write_png(dir / name, img);
    images.push_back({{"file", name}, {"class", i % 10}, {"box", {b.x0, b.y0, b.x1, b.y1}}});
    out.push_back({dir / name, i % 10, b});
  }
  std::ofstream(dir / "ground_truth.json") << nlohmann::json{{"images", images}}.dump();
  return out;
}

}  // namespace

TEST_CASE("eval-localization: the metric recomputed from the per-image boxes, and boxing every rank changes nothing",
          "[localize][cli][metric]") {
  TempDir dir;
  std::vector<LabelledImage> truth = write_rectangle_scenes(dir, 12);
  const std::string base = "eval-localization --model " + kScenesModel + " --data " + dir.path.string() +
                           " --json --batch-size 5 --centre-box 40x40 --min-iou 0.3";  // 0.3: more hits to count
  {  // Relabel each scene with its own rank-(i % 3) prediction, so that classes are found and boxes decide.
    const RunResult first = run(base + " --methods full-image --per-image " + (dir / "first.jsonl"), dir);
    REQUIRE(first.exit_code == 0);
    std::ifstream rows(dir / "first.jsonl");
    nlohmann::json images = nlohmann::json::array();
    std::string line;
    for (size_t i = 0; i < truth.size(); ++i) {
      REQUIRE(std::getline(rows, line));
      truth[i].cls = nlohmann::json::parse(line)["top"][i % 3];
      const Box& b = truth[i].box;
      images.push_back({{"file", fs::path(truth[i].file).filename().string()}, {"class", truth[i].cls},
                        {"box", {b.x0, b.y0, b.x1, b.y1}}});
    }
    std::ofstream(dir / "ground_truth.json") << nlohmann::json{{"images", images}}.dump();
  }
  const RunResult lazy = run(base + " --per-image " + (dir / "lazy.jsonl"), dir);
  const RunResult all = run(base + " --all-boxes --per-image " + (dir / "all.jsonl"), dir);
  INFO(lazy.err << all.err);
  REQUIRE((lazy.exit_code == 0 && all.exit_code == 0));
  const auto jl = nlohmann::json::parse(lazy.out), ja = nlohmann::json::parse(all.out);
  REQUIRE(jl["images"] == 12);
  // Only the true class's rank can make an image count, so boxing all five ranks gives the same errors.
  CHECK(jl["methods"] == ja["methods"]);
  CHECK(jl["classification"] == ja["classification"]);

  std::ifstream lazy_rows(dir / "lazy.jsonl"), all_rows(dir / "all.jsonl");
  std::string line_l, line_a;
  std::map<std::string, std::pair<int, int>> localized;  // method -> (top-1, top-5) images localised
  int cls_top1 = 0;
  for (const LabelledImage& t : truth) {
    REQUIRE(std::getline(lazy_rows, line_l));
    REQUIRE(std::getline(all_rows, line_a));
    const auto rl = nlohmann::json::parse(line_l), ra = nlohmann::json::parse(line_a);
    REQUIRE(rl["top"] == ra["top"]);
    REQUIRE(rl["top"].size() == 5);
    cls_top1 += rl["top"][0] == t.cls;
    // --centre-box 40x40 in a 96x96 scene: [(96 - 40) / 2, ..., (96 + 40) / 2) = [28, 28, 68, 68).
    CHECK(ra["boxes"]["centre-box"][0] == nlohmann::json::array({28, 28, 68, 68}));
    CHECK(ra["boxes"]["full-image"][0] == nlohmann::json::array({0, 0, 96, 96}));
    for (const auto& [method, boxes] : ra["boxes"].items()) {
      INFO(t.file << ", " << method);
      bool top1 = false, top5 = false;
      for (int r = 0; r < 5; ++r) {
        REQUIRE(!boxes[r].is_null());  // --all-boxes: every rank has a box
        if (!rl["boxes"][method][r].is_null()) CHECK(rl["boxes"][method][r] == boxes[r]);  // same box when both have one
        const Box b{boxes[r][0], boxes[r][1], boxes[r][2], boxes[r][3]};
        // IoU by hand: intersection over union of [x0, x1) x [y0, y1) boxes.
        const int iw = std::max(0, std::min(b.x1, t.box.x1) - std::max(b.x0, t.box.x0));
        const int ih = std::max(0, std::min(b.y1, t.box.y1) - std::max(b.y0, t.box.y0));
        const double inter = double(iw) * ih;
        const double uni = double(b.x1 - b.x0) * (b.y1 - b.y0) + double(t.box.x1 - t.box.x0) * (t.box.y1 - t.box.y0) - inter;
        const bool hit = rl["top"][r] == t.cls && inter / uni >= 0.3;
        top1 |= hit && r == 0;
        top5 |= hit;
      }
      localized[method].first += top1;
      localized[method].second += top5;
    }
  }
  CHECK(!std::getline(lazy_rows, line_l));
  REQUIRE(localized.size() == 6);  // the scenes model ends in a global average pool: CAM is in
  for (const auto& [method, counts] : localized) {
    INFO(method);
    CHECK(jl["methods"][method]["top1_error"].get<double>() == Approx(1.0 - counts.first / 12.0).margin(1e-12));
    CHECK(jl["methods"][method]["top5_error"].get<double>() == Approx(1.0 - counts.second / 12.0).margin(1e-12));
  }
  CHECK(jl["classification"]["top1_error"].get<double>() == Approx(1.0 - cls_top1 / 12.0).margin(1e-12));
  CHECK(cls_top1 == 4);  // the relabelling: scenes 0, 3, 6, 9 carry their top-1 class
  CHECK(jl["classification"]["top5_error"] == 0.0);
}

TEST_CASE("eval-localization: bad flags and a missing image give one message, exit 1 and no output",
          "[localize][cli][bad-input]") {
  TempDir dir;
  write_rectangle_scenes(dir, 2);
  const std::string base = "eval-localization --model " + kScenesModel + " --data " + dir.path.string();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {" --top 6", "--top"},
      {" --top 0", "--top"},
      {" --min-iou 1.5", "--min-iou"},
      {" --min-iou 0", "--min-iou"},
      {" --batch-size 0", "--batch-size"},
      {" --limit -2", "--limit"},
      {" --saliency-threshold 1.2", "--saliency-threshold"},
      {" --saliency-blur -1", "--saliency-blur"},
      {" --cam-threshold -0.1", "--cam-threshold"},
      {" --centre-box 40", "--centre-box"},
      {" --bg-quantile 0.97", "background quantile"},
      {" --neighbours 5", "neighbourhood"},
      {" --per-image " + (dir / "missing/rows.jsonl"), "does not exist"}};
  for (const auto& [flags, message] : cases) {
    INFO(flags);
    require_clean_failure(run(base + flags, dir), message);
  }
  fs::remove(dir / "scene1.png");
  require_clean_failure(run(base + " --per-image " + (dir / "rows.jsonl"), dir), "scene1.png");
  require_no_files_but(dir, {"ground_truth.json", "scene0.png"});
}
