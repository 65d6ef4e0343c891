// The visualisation subcommands end to end (saliency --method, cam, reconstruct, sanity) on the
// project's Fashion-MNIST model and the golden nets; bad input; SmoothGrad's fixed memory, measured as
// the peak RSS of the tool; and the SqueezeNet v1.1 sanity check (../shared).
#include <array>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "engine/backend.h"
#include "engine/model.h"
#include "engine/npy.h"
#include "engine/preprocess.h"
#include "engine/session.h"
#include "cli_support.h"
#include "test_support.h"
#include "viz/cam.h"
#include "viz/layers.h"
#include "viz/sanity.h"

namespace fs = std::filesystem;
using namespace deepinside;
using deepinside::test::shared_path;
using deepinside::test::source_path;
using namespace deepinside::test;

namespace {

const std::string kFashion = source_path("weights/fashion_mnist/fashion_cnn.onnx");
const std::string kBoot = source_path("weights/fashion_mnist/samples/test0000_ankle_boot.png");
const char* kSqueezeNet = "models/squeezenet1.1/squeezenet1.1.onnx";

}  // namespace

// ---- saliency --method ---------------------------------------------------------------------------------

TEST_CASE("saliency --method smoothgrad, gradxinput, ig and tencrop write maps", "[methods][cli]") {
  TempDir dir;
  struct Case {
    std::string flags, says;
    Shape raw;
  };
  const std::vector<Case> cases = {
      {"--method smoothgrad --samples 12 --noise 0.2 --batch-size 5", "12 samples, noise 0.2, batch 4", {28, 28}},
      {"--method gradxinput", "method gradxinput", {28, 28}},
      {"--method ig --steps 20 --baseline black --batch-size 8", "20 steps, black baseline, batch 7", {28, 28}},
      {"--method tencrop --batch-size 4", "10 crops of 28x28", {32, 32}},  // 8/7 of 28 = 32
  };
  for (const Case& c : cases) {
    INFO(c.flags);
    const RunResult r = run("saliency --model " + kFashion + " --image " + kBoot + " " + c.flags + " --out " + (dir / "m.png") +
                                " --raw " + (dir / "m.npy"),
                            dir);
    require_ok(r);
    REQUIRE(r.out.find("class 9 (Ankle boot)") != std::string::npos);
    REQUIRE(r.out.find(c.says) != std::string::npos);
    REQUIRE(fs::exists(dir / "m.png"));
    REQUIRE(fs::exists(dir / "m_overlay.png"));
    const NpyArray raw = read_npy(dir / "m.npy");
    REQUIRE(raw.shape == c.raw);
    REQUIRE(test::max_abs(raw.values) > 0);
    if (c.flags.find("ig") != std::string::npos) REQUIRE(r.out.find("completeness") != std::string::npos);
  }
}

TEST_CASE("bad input: saliency method flags", "[methods][cli][bad-input]") {
  TempDir dir;
  const std::string base = "saliency --model " + kFashion + " --image " + kBoot + " --out " + (dir / "m.png") + " ";
  require_clean_failure(run(base + "--method gradcam", dir), "unknown --method 'gradcam'", dir);
  require_clean_failure(run(base + "--method ig --samples 5", dir), "--samples applies to --method smoothgrad", dir);
  require_clean_failure(run(base + "--method smoothgrad --baseline black", dir), "--baseline applies to --method ig", dir);
  require_clean_failure(run(base + "--method ig --baseline white", dir), "--baseline must be zero or black", dir);
  require_clean_failure(run(base + "--method smoothgrad --batch-size 0", dir), "--batch-size", dir);
  require_clean_failure(run(base + "--method smoothgrad --class 10", dir), "class 10 is out of range", dir);
}

// ---- cam -----------------------------------------------------------------------------------------------

TEST_CASE("cam: Grad-CAM and Guided Grad-CAM on the Fashion-MNIST model, CAM on a GAP net", "[methods][cli][cam]") {
  TempDir dir;
  for (const char* method : {"gradcam", "guided-gradcam"}) {
    const RunResult r = run(std::string("cam --method ") + method + " --model " + kFashion + " --image " + kBoot +
                                " --out " + (dir / "c.png") + " --raw " + (dir / "c.npy") + " --upscale 4",
                            dir);
    require_ok(r);
    REQUIRE(r.out.find("on '/net/Relu_1_output_0' (64 channels, 14x14)") != std::string::npos);
    REQUIRE(read_npy(dir / "c.npy").shape == Shape{28, 28});
    REQUIRE(fs::exists(dir / "c_overlay.png"));
  }
  // --layer by node name; a grey image for an RGB net is converted (a note says so).
  RunResult r = run("cam --method gradcam --layer /net/conv1/Conv --model " + kFashion + " --image " + kBoot +
                        " --out " + (dir / "c1.png"),
                    dir);
  require_ok(r);
  REQUIRE(r.out.find("'/net/conv1/Conv_output_0' (32 channels, 28x28)") != std::string::npos);
  const std::string fire = source_path("tests/golden/nets/fire_bn/model.onnx");
  r = run("cam --method cam --model " + fire + " --image " + kBoot + " --class 3 --out " + (dir / "f.png") + " --raw " +
              (dir / "f.npy"),
          dir);
  require_ok(r);
  REQUIRE(r.out.find("class 3") != std::string::npos);
  REQUIRE(r.out.find("'/relu_cls/Relu_output_0' (7 channels, 4x4)") != std::string::npos);
  REQUIRE(read_npy(dir / "f.npy").shape == Shape{25, 25});
}

TEST_CASE("bad input: cam", "[methods][cli][cam][bad-input]") {
  TempDir dir;
  const std::string base = "cam --model " + kFashion + " --image " + kBoot + " --out " + (dir / "c.png") + " ";
  require_clean_failure(run(base + "--method cam", dir), "CAM needs a net whose scores are a linear function", dir);
  require_clean_failure(run(base + "--layer /net/fc1/Gemm", dir), "CAM and Grad-CAM need a 4-D layer", dir);
  require_clean_failure(run(base + "--layer nowhere", dir), "no value or node named 'nowhere'", dir);
  require_clean_failure(run(base + "--layer input", dir), "is the network's input", dir);
  require_clean_failure(run(base + "--layer /Softmax", dir), "not between the input and the scores", dir);
  require_clean_failure(run(base + "--class 11", dir), "class 11 is out of range", dir);
  require_clean_failure(run(base + "--method cam --layer /net/conv1/Conv", dir), "--layer applies to gradcam", dir);
  require_clean_failure(run(base + "--method lrp", dir), "unknown --method 'lrp'", dir);
}

// ---- reconstruct -------------------------------------------------------------------------------------------

TEST_CASE("reconstruct: a neuron and the top-k, with numbers and JSON", "[methods][cli][reconstruct]") {
  TempDir dir;
  const std::string base = "reconstruct --model " + kFashion + " --image " + kBoot + " --out " + (dir / "r.png") + " ";
  RunResult r = run(base + "--layer /net/conv2/Conv --channel 5 --x 6 --y 7 --upscale 2", dir);
  require_ok(r);
  REQUIRE(r.out.find("channel 5 at x 6, y 7") != std::string::npos);
  // conv2 3x3 pad 1 on pool1 2x2 on conv1 3x3 pad 1: rows 2*6-1 .. 2*8+1+1 = 11..18 (y), 9..16 (x)
  REQUIRE(r.out.find("receptive field x 9..16, y 11..18") != std::string::npos);
  REQUIRE(r.out.find("gradient vs deconvnet") != std::string::npos);
  REQUIRE(fs::exists(dir / "r.png"));

  r = run(base + "--layer /net/Relu_1 --top-k 3 --json", dir);
  require_ok(r);
  const auto j = nlohmann::json::parse(r.out);
  REQUIRE(j["neurons"].size() == 3);
  double last = 1e30;
  for (const auto& n : j["neurons"]) {
    REQUIRE(n["activation"].get<double>() <= last);
    last = n["activation"];
    for (const auto& e : n["energy_outside_receptive_field"]) REQUIRE(e.get<double>() == 0.0);
    REQUIRE(n["pairs"].size() == 3);
    const double rho = n["pairs"][0]["pearson"];  // gradient vs deconvnet: related, not equal
    REQUIRE(rho > -1.0);
    REQUIRE(rho < 0.9999);
  }
  // A unit of a fully connected layer: the whole image is its receptive field.
  r = run(base + "--layer /net/fc1/Gemm --channel 3", dir);
  require_ok(r);
  REQUIRE(r.out.find("receptive field x 0..27, y 0..27") != std::string::npos);
}

TEST_CASE("bad input: reconstruct", "[methods][cli][reconstruct][bad-input]") {
  TempDir dir;
  const std::string base = "reconstruct --model " + kFashion + " --image " + kBoot + " --out " + (dir / "r.png") + " ";
  require_clean_failure(run(base + "--layer /net/conv9 --channel 0", dir), "no value or node named '/net/conv9'", dir);
  require_clean_failure(run(base + "--layer /net/conv2/Conv --channel 64", dir), "channel 64 is out of range", dir);
  require_clean_failure(run(base + "--layer /net/conv2/Conv --channel 1 --x 3", dir), "--x and --y go together", dir);
  require_clean_failure(run(base + "--layer /net/conv2/Conv --channel 1 --x 3 --y 14", dir), "out of range", dir);
  require_clean_failure(run(base + "--layer /net/conv2/Conv", dir), "give either --channel K", dir);
  require_clean_failure(run(base + "--layer /net/conv2/Conv --channel 1 --top-k 2", dir), "give either --channel K", dir);
  require_clean_failure(run(base + "--layer /net/conv2/Conv --top-k 65", dir), "--top-k must be between 1", dir);
  require_clean_failure(run(base + "--layer input --channel 0", dir), "not a layer computed from the input", dir);
}

// ---- sanity --------------------------------------------------------------------------------------------------

TEST_CASE("sanity --json on the Fashion-MNIST model, with the picture", "[methods][cli][sanity]") {
  TempDir dir;
  const RunResult r = run("sanity --model " + kFashion + " --image " + kBoot +
                              " --depth 2 --samples 4 --methods gradient,guided,smoothgrad,ig,gradcam --json --out " +
                              (dir / "s.png"),
                          dir);
  require_ok(r);
  const auto j = nlohmann::json::parse(r.out);
  REQUIRE(j["class"] == 9);
  REQUIRE(j["steps"].size() == 3);
  REQUIRE(j["steps"][1]["layer"] == "/net/fc2/Gemm");
  REQUIRE(j["steps"][2]["layer"] == "/net/fc1/Gemm");
  REQUIRE(j["steps"][0]["spearman"]["gradient"] == 1.0);
  REQUIRE(j["steps"][2]["spearman"].size() == 5);
  REQUIRE(fs::exists(dir / "s.png"));
}

TEST_CASE("bad input: sanity", "[methods][cli][sanity][bad-input]") {
  TempDir dir;
  const std::string base = "sanity --model " + kFashion + " --image " + kBoot + " ";
  require_clean_failure(run(base + "--methods gradient,lime", dir), "unknown method 'lime'", dir);
  require_clean_failure(run(base + "--depth 0", dir), "--depth must be at least 1", dir);
  require_clean_failure(run(base + "--layer /net/fc1/Gemm", dir), "4-D", dir);
}

// ---- fixed memory ---------------------------------------------------------------------------------------------

TEST_CASE("SmoothGrad runs in fixed memory: peak RSS does not grow with the number of samples", "[methods][cli][memory]") {
  // The Fashion-MNIST model keeps this fast on two cores; docs/methods.md gives the same measurement
  // on SqueezeNet v1.1 (16 and 1000 samples). Both runs plan a batch of 8.
  TempDir dir;
  const std::vector<std::string> base = {"saliency", "--model", kFashion, "--image", kBoot, "--method", "smoothgrad",
                                         "--out", dir / "m.png", "--batch-size"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = base;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  const auto [rc16, rss16] = run_peak_rss(with({"8", "--samples", "16"}));
  const auto [rc1000, rss1000] = run_peak_rss(with({"8", "--samples", "1000"}));
  const auto [rc_big, rss_big] = run_peak_rss(with({"100", "--samples", "1000"}));
  REQUIRE(rc16 == 0);
  REQUIRE(rc1000 == 0);
  REQUIRE(rc_big == 0);
  WARN("SmoothGrad peak RSS, batch 8: 16 samples " << rss16 << " KiB, 1000 samples " << rss1000
                                                    << " KiB; 1000 samples in batches of 100: " << rss_big << " KiB");
  // 1000 samples cost no more than 16 (a margin of 1 MiB for allocator noise; the 1000 noisy inputs
  // alone would take 3 MiB, their activations far more)...
  REQUIRE(rss1000 <= rss16 + 1024);
  // ...while the measurement does see memory that grows with the batch.
  REQUIRE(rss_big > rss16 + 20 * 1024);
}

TEST_CASE("SqueezeNet v1.1: SmoothGrad with 1000 samples runs in the memory of 16", "[methods][cli][memory][squeezenet][shared]") {
  // The issue's own measurement: 16 and 1000 samples, both in batches of 8 (about a minute for the
  // 1000 on two cores).
  if (!test::have_shared(kSqueezeNet)) return;
  TempDir dir;
  const auto run_with = [&](const char* samples) {
    return run_peak_rss({"saliency", "--model", shared_path(kSqueezeNet), "--image", shared_path("images/eagle.jpg"),
                         "--method", "smoothgrad", "--batch-size", "8", "--samples", samples, "--out", dir / "m.png"});
  };
  const auto [rc16, rss16] = run_with("16");
  const auto [rc1000, rss1000] = run_with("1000");
  REQUIRE(rc16 == 0);
  REQUIRE(rc1000 == 0);
  WARN("SqueezeNet SmoothGrad peak RSS, batch 8: 16 samples " << rss16 << " KiB, 1000 samples " << rss1000 << " KiB");
  REQUIRE(rss1000 <= rss16 + 2048);
}

// ---- SqueezeNet v1.1 (../shared) -----------------------------------------------------------------------------

TEST_CASE("SqueezeNet v1.1: CAM is conv10's rectified channel of the class", "[methods][squeezenet][shared][cam]") {
  if (!test::have_shared(kSqueezeNet)) return;
  const Model model = load_model(shared_path(kSqueezeNet), {});
  auto backend = make_backend("cpu");
  Tensor input = prepare_image(load_image(shared_path("images/eagle.jpg")), model.preprocessing(), 3, 227, 227).input.clone();
  input.reshape({1, 3, 227, 227});
  Session session(model.graph, *backend, input.shape());
  const viz::CamResult r = viz::class_activation_map(session, model, input, -1);
  REQUIRE(r.cls == 21);
  REQUIRE(model.graph.value(r.layer).name == "/Relu_1_output_0");
  REQUIRE(r.layer == viz::default_gradcam_layer(model));
  // GAP -> Flatten -> scores: w_ck = dS_c/dGAP_k is one-hot, so CAM is the class's own channel.
  for (int k = 0; k < 1000; ++k) REQUIRE(r.weights[k] == (k == 21 ? 1.0f : 0.0f));
  const Tensor& a = session.value(r.layer);  // (1,1000,16,16)
  for (int i = 0; i < 256; ++i) REQUIRE(r.low_res[i] == a[21 * 256 + i]);
}

TEST_CASE("SqueezeNet v1.1 sanity check: gradient, SmoothGrad and Grad-CAM change once the top layers are random",
          "[methods][squeezenet][shared][sanity]") {
  // Randomising the top three layers (conv10, then fire7's expand 3x3 and expand 1x1), with three seeds
  // of the random weights: the mean over seeds of the Spearman correlation with the trained maps must
  // fall below 0.5 for gradient, SmoothGrad and Grad-CAM. One draw alone can land above (docs/sanity.md
  // shows seed 1 at 0.53 for the gradient), so no single seed decides. Guided backprop is reported only.
  if (!test::have_shared(kSqueezeNet)) return;
  Model model = load_model(shared_path(kSqueezeNet), {});
  auto backend = make_backend("cpu");
  const Tensor image = prepare_image(load_image(shared_path("images/eagle.jpg")), model.preprocessing(), 3, 227, 227).input.clone();
  viz::SanityOptions o;
  o.methods = {"gradient", "smoothgrad", "gradcam", "guided"};
  o.depth = 3;
  o.smoothgrad.samples = 4;  // few samples keep CI fast; docs/sanity.md runs 16
  o.batch = 4;
  std::vector<double> mean(o.methods.size(), 0.0);
  const int seeds = 3;
  for (int seed = 0; seed < seeds; ++seed) {
    o.seed = uint64_t(seed);
    const viz::SanityReport r = viz::cascading_randomization(model, *backend, image, -1, o);
    REQUIRE(r.cls == 21);
    REQUIRE(r.steps.size() == 4);
    REQUIRE(r.steps[1].layer == "/conv10/Conv");
    REQUIRE(r.steps[3].layer == "/fires.7/expand1x1/Conv");
    for (size_t s = 1; s < r.steps.size(); ++s)
      WARN("seed " << seed << ", randomised down to " << r.steps[s].layer << ": Spearman gradient " << r.steps[s].rho[0]
                   << ", smoothgrad " << r.steps[s].rho[1] << ", gradcam " << r.steps[s].rho[2]
                   << ", guided (reported, not asserted) " << r.steps[s].rho[3]);
    for (size_t m = 0; m < mean.size(); ++m) mean[m] += r.steps[3].rho[m] / seeds;
  }
  WARN("mean over seeds after 3 layers: gradient " << mean[0] << ", smoothgrad " << mean[1] << ", gradcam " << mean[2]
                                                   << ", guided " << mean[3]);
  for (int m = 0; m < 3; ++m) {
    INFO(o.methods[m]);
    REQUIRE(mean[m] < 0.5);
  }
}
