// SqueezeNet v1.1 with real ImageNet weights (../shared): top-1 on the shared photos through the
// whole pipeline, and the saliency map of eagle.jpg against PyTorch autograd (tests/golden).
#include <catch2/catch.hpp>

#include "engine/backend.h"
#include "engine/image.h"
#include "engine/model.h"
#include "engine/npy.h"
#include "engine/preprocess.h"
#include "engine/session.h"
#include "test_support.h"
#include "viz/saliency.h"
#include "viz/scores.h"

using namespace deepinside;
using deepinside::test::shared_path;
using deepinside::test::source_path;

namespace {
const char* kModel = "models/squeezenet1.1/squeezenet1.1.onnx";
}

TEST_CASE("SqueezeNet v1.1 predicts the expected top-1 on the shared photos", "[squeezenet][shared]") {
  if (!test::have_shared(kModel)) return;
  const Model model = load_model(shared_path(kModel), {});
  REQUIRE(model.classes == 1000);
  REQUIRE(model.label(21) == "kite");
  auto backend = make_backend("cpu");
  std::vector<Tensor> items;
  for (const char* image : {"images/cat.jpg", "images/dog.jpg", "images/eagle.jpg"})
    items.push_back(prepare_image(load_image(shared_path(image)), model.preprocessing(), 3, 227, 227).input.clone());
  const Tensor batch = stack_batch(items);
  Session session(model.graph, *backend, batch.shape());
  session.forward(batch);
  const int expected[] = {281, 537, 21};
  for (int n = 0; n < 3; ++n) {
    const auto top = viz::top_classes(viz::image_scores(session, model, n), 5, model);
    INFO("image " << n << ": top-1 " << top[0].cls << " " << top[0].label << " p=" << top[0].prob);
    REQUIRE(top[0].cls == expected[n]);
  }
}

TEST_CASE("SqueezeNet v1.1 saliency of eagle.jpg matches PyTorch autograd on both CPU backends",
          "[squeezenet][shared][saliency]") {
  if (!test::have_shared(kModel)) return;
  // The fast backend and the reference each against autograd (float64): they differ from each other
  // by more than from autograd would suggest only where one rounding flips a ReLU or max-pool decision.
  const std::string backend_name = GENERATE(as<std::string>{}, "cpu", "cpu-reference");
  INFO("backend " << backend_name);
  const Model model = load_model(shared_path(kModel), {});
  // The generator's exact 227x227 RGB crop, so that no JPEG decoder or resizer difference enters.
  const NpyArray pixels = read_npy(source_path("tests/golden/squeezenet_eagle/pixels.npy"));
  REQUIRE(pixels.shape == Shape{227, 227, 3});
  Image crop{227, 227, 3, std::vector<uint8_t>(pixels.values.begin(), pixels.values.end())};
  Tensor input = pixels_to_tensor(crop, model.preprocessing());
  input.reshape({1, 3, 227, 227});

  auto backend = make_backend(backend_name);
  Session session(model.graph, *backend, input.shape());
  const viz::SaliencyResult r = viz::compute_saliency(session, model, input, {-1}, BackwardRule::gradient);
  REQUIRE(r.classes[0] == 21);

  const NpyArray scores = read_npy(source_path("tests/golden/squeezenet_eagle/scores.npy"));
  const std::vector<float> ours = viz::image_scores(session, model, 0);
  REQUIRE_CLOSE(ours.data(), scores.values, 1000, 1e-4, 1e-4 * test::max_abs(scores.values));

  const NpyArray map = read_npy(source_path("tests/golden/squeezenet_eagle/map.npy"));
  REQUIRE(map.shape == Shape{227, 227});
  const double peak = test::max_abs(map.values);
  REQUIRE(peak > 0);
  REQUIRE_CLOSE(r.map.data(), map.values, 227 * 227, 1e-3, 1e-4 * peak);

  const NpyArray grad = read_npy(source_path("tests/golden/squeezenet_eagle/grad.npy"));
  REQUIRE(grad.shape == Shape{3, 227, 227});
  REQUIRE_CLOSE(r.gradient.data(), grad.values, 3 * 227 * 227, 1e-3, 1e-4 * test::max_abs(grad.values));
}

TEST_CASE("decoding and resizing eagle.jpg lands close to PIL's crop", "[squeezenet][shared][image]") {
  if (!test::have_shared("images/eagle.jpg")) return;
  const Model model = load_model(shared_path(kModel), {});
  const PreparedImage p = prepare_image(load_image(shared_path("images/eagle.jpg")), model.preprocessing(), 3, 227, 227);
  const NpyArray pixels = read_npy(source_path("tests/golden/squeezenet_eagle/pixels.npy"));
  double total = 0;
  for (size_t i = 0; i < pixels.values.size(); ++i) total += std::fabs(double(p.display.pixels[i]) - pixels.values[i]);
  const double mean_abs = total / double(pixels.values.size());
  INFO("mean |ours - PIL| = " << mean_abs << " grey levels");
  REQUIRE(mean_abs < 3.0);  // different JPEG decoders (stb vs libjpeg) and float vs fixed-point resampling
}
