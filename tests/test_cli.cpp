// The deepinside binary end to end: real files give the expected answers; bad input gives one clear
// message, a non-zero exit, no crash and no output file.
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <onnx/onnx_pb.h>

#include "engine/atomic_file.h"
#include "engine/image.h"
#include "engine/npy.h"
#include "cli_support.h"
#include "test_support.h"

namespace fs = std::filesystem;
using namespace deepinside;
using deepinside::test::shared_path;
using deepinside::test::source_path;
using namespace deepinside::test;

namespace {

const std::string kModel = source_path("weights/fashion_mnist/fashion_cnn.onnx");
const std::string kSamples = source_path("weights/fashion_mnist/samples/");

onnx::ModelProto load_proto(const std::string& path) {
  onnx::ModelProto m;
  REQUIRE(m.ParseFromString(slurp(path)));
  return m;
}

void save_proto(const onnx::ModelProto& m, const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  REQUIRE(m.SerializeToOstream(&out));
}

}  // namespace

TEST_CASE("predict --json gives the trained model's classes on its test samples", "[cli]") {
  TempDir dir;
  const nlohmann::json expected = nlohmann::json::parse(slurp(kSamples + "expected.json"));
  std::string images;
  for (const auto& item : expected.items()) images += " " + kSamples + item.key();
  const RunResult r = run("predict --model " + kModel + images + " --top 3 --json", dir);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  std::istringstream lines(r.out);
  std::string line;
  int seen = 0;
  while (std::getline(lines, line)) {
    const auto j = nlohmann::json::parse(line);
    const std::string name = fs::path(j["image"].get<std::string>()).filename().string();
    const auto& want = expected.at(name);
    REQUIRE(j["top"].size() == 3);
    const auto& best = j["top"][0];
    CHECK(best["class"] == want["class"]);
    CHECK(best["label"] == want["label"]);
    CHECK(best["prob"].get<double>() == Approx(want["prob"].get<double>()).margin(1e-4));
    REQUIRE(best["score"].get<double>() >= j["top"][1]["score"].get<double>());
    ++seen;
  }
  REQUIRE(seen == int(expected.size()));
}

TEST_CASE("saliency writes the heat map, the overlay and the raw map", "[cli][saliency]") {
  TempDir dir;
  const std::string image = kSamples + "test0000_ankle_boot.png";
  const RunResult r = run("saliency --model " + kModel + " --image " + image + " --out " + (dir / "s.png") +
                              " --raw " + (dir / "s.npy") + " --upscale 4",
                          dir);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.out.find("class 9 (Ankle boot)") != std::string::npos);
  const Image heat = load_image(dir / "s.png");
  REQUIRE((heat.width == 112 && heat.height == 112 && heat.channels == 3));
  const Image over = load_image(dir / "s_overlay.png");
  REQUIRE((over.width == 112 && over.height == 112));
  const NpyArray raw = read_npy(dir / "s.npy");
  REQUIRE(raw.shape == Shape{28, 28});
  double total = 0;
  for (double v : raw.values) {
    REQUIRE(v >= 0);
    total += v;
  }
  REQUIRE(total > 0);
}

TEST_CASE("saliency of several images is one batch with one output per image", "[cli][saliency]") {
  TempDir dir;
  const RunResult r = run("saliency --model " + kModel + " --image " + kSamples + "test0000_ankle_boot.png " +
                              kSamples + "test0002_trouser.png --rule guided --class 1 --out " + (dir / "m.png"),
                          dir);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(fs::exists(dir / "m_test0000_ankle_boot.png"));
  REQUIRE(fs::exists(dir / "m_test0002_trouser.png"));
  REQUIRE(fs::exists(dir / "m_overlay_test0002_trouser.png"));
  REQUIRE(r.out.find("rule guided") != std::string::npos);
}

TEST_CASE("info lists ops, shapes, parameters and MACs", "[cli]") {
  TempDir dir;
  const RunResult r = run("info --model " + kModel + " --json", dir);
  REQUIRE(r.exit_code == 0);
  const auto j = nlohmann::json::parse(r.out);
  REQUIRE(j["classes"] == 10);
  REQUIRE(j["input"] == nlohmann::json::array({1, 1, 28, 28}));
  int64_t macs = 0;
  for (const auto& layer : j["layers"]) macs += layer["macs"].get<int64_t>();
  REQUIRE(macs == j["macs"].get<int64_t>());
  REQUIRE(macs > 0);
}

TEST_CASE("bad input: missing files", "[cli][bad-input]") {
  TempDir dir;
  require_clean_failure(run("predict --model " + (dir / "nope.onnx") + " x.png", dir), "does not exist");
  require_clean_failure(run("saliency --model " + kModel + " --image " + (dir / "nope.png") + " --out " + (dir / "o.png"), dir),
                        "cannot open image");
  require_no_files_but(dir, {});
}

TEST_CASE("bad input: a truncated ONNX file", "[cli][bad-input]") {
  TempDir dir;
  const std::string bytes = slurp(kModel);
  for (size_t keep : {size_t(0), size_t(7), bytes.size() / 2, bytes.size() - 3}) {
    INFO("kept " << keep << " bytes");
    std::ofstream(dir / "cut.onnx", std::ios::binary) << bytes.substr(0, keep);
    require_clean_failure(run("saliency --model " + (dir / "cut.onnx") + " --card " + source_path("weights/fashion_mnist/fashion_cnn.json") +
                                  " --image " + kSamples + "test0000_ankle_boot.png --out " + (dir / "o.png"),
                              dir),
                          "cut.onnx");
    require_no_files_but(dir, {"cut.onnx"});
  }
}

TEST_CASE("bad input: an unsupported op names the node and the op", "[cli][bad-input]") {
  TempDir dir;
  onnx::ModelProto m = load_proto(kModel);
  onnx::NodeProto* relu = nullptr;
  for (auto& node : *m.mutable_graph()->mutable_node())
    if (node.op_type() == "Relu") relu = &node;
  REQUIRE(relu != nullptr);
  relu->set_op_type("Gelu");
  relu->set_name("my_gelu");
  save_proto(m, dir / "gelu.onnx");
  const RunResult r = run("predict --model " + (dir / "gelu.onnx") + " " + kSamples + "test0000_ankle_boot.png", dir);
  require_clean_failure(r, "node 'my_gelu' (Gelu, opset");
  REQUIRE(r.err.find("not supported") != std::string::npos);
}

TEST_CASE("bad input: NaN weights are an error naming the initializer", "[cli][bad-input]") {
  TempDir dir;
  onnx::ModelProto m = load_proto(kModel);
  onnx::TensorProto* weights = m.mutable_graph()->mutable_initializer(0);
  REQUIRE(weights->data_type() == onnx::TensorProto::FLOAT);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  if (!weights->raw_data().empty()) weights->mutable_raw_data()->replace(0, sizeof(float), reinterpret_cast<const char*>(&nan), sizeof(float));
  else weights->set_float_data(0, nan);
  save_proto(m, dir / "nan.onnx");
  const RunResult r = run("saliency --model " + (dir / "nan.onnx") + " --card " + source_path("weights/fashion_mnist/fashion_cnn.json") +
                              " --image " + kSamples + "test0000_ankle_boot.png --out " + (dir / "o.png"),
                          dir);
  require_clean_failure(r, "initializer '" + weights->name() + "' holds 1 NaN or infinite values");
  require_no_files_but(dir, {"nan.onnx"});
}

TEST_CASE("bad input: a corrupt JPEG", "[cli][bad-input]") {
  TempDir dir;
  std::string bytes = "\xFF\xD8\xFF\xE0" + std::string(600, '\x5A');  // a JPEG signature, then garbage
  std::ofstream(dir / "bad.jpg", std::ios::binary) << bytes;
  require_clean_failure(run("saliency --model " + kModel + " --image " + (dir / "bad.jpg") + " --out " + (dir / "o.png"), dir),
                        "cannot decode image '" + (dir / "bad.jpg") + "'");
  std::ofstream(dir / "empty.png", std::ios::binary) << "";
  require_clean_failure(run("predict --model " + kModel + " " + (dir / "empty.png"), dir), "cannot decode image");
  require_no_files_but(dir, {"bad.jpg", "empty.png"});
}

TEST_CASE("images whose channels differ from the model's are converted, and it is said", "[cli][image]") {
  TempDir dir;
  const Image grey = load_image(kSamples + "test0000_ankle_boot.png");
  REQUIRE(grey.channels == 1);
  Image rgba{grey.width, grey.height, 4, {}};
  for (uint8_t v : grey.pixels) rgba.pixels.insert(rgba.pixels.end(), {v, v, v, 255});
  write_png(dir / "rgba.png", rgba);
  const RunResult r = run("predict --model " + kModel + " " + (dir / "rgba.png") + " --top 1", dir);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.err.find("colour image converted to greyscale; alpha channel dropped") != std::string::npos);
  REQUIRE(r.out.find("Ankle boot") != std::string::npos);  // same pixels, same answer

  if (!test::have_shared("models/squeezenet1.1/squeezenet1.1.onnx")) return;
  const RunResult s = run("predict --model " + shared_path("models/squeezenet1.1/squeezenet1.1.onnx") + " " +
                              kSamples + "test0000_ankle_boot.png --top 1",
                          dir);
  REQUIRE(s.exit_code == 0);
  REQUIRE(s.err.find("greyscale image converted to RGB") != std::string::npos);
}

TEST_CASE("bad input: a class index out of range", "[cli][bad-input]") {
  TempDir dir;
  for (const char* cls : {"10", "-2", "1000000"}) {
    const RunResult r = run("saliency --model " + kModel + " --image " + kSamples + "test0000_ankle_boot.png --class " +
                                cls + " --out " + (dir / "o.png"),
                            dir);
    require_clean_failure(r, std::string("class ") + cls + " is out of range: the model has 10 classes (0..9)");
  }
  require_no_files_but(dir, {});
}

TEST_CASE("bad input: a model card with a wrong field", "[cli][bad-input]") {
  TempDir dir;
  auto card = nlohmann::json::parse(slurp(source_path("weights/fashion_mnist/fashion_cnn.json")));
  card["input"]["channel_ordr"] = "RGB";
  std::ofstream(dir / "typo.json") << card.dump();
  require_clean_failure(run("predict --model " + kModel + " --card " + (dir / "typo.json") + " " + kSamples +
                                "test0000_ankle_boot.png",
                            dir),
                        "field 'input.channel_ordr' is not a known field");
  card["input"].erase("channel_ordr");
  card["input"]["mean"] = {0.1, 0.2, 0.3};
  std::ofstream(dir / "mean.json") << card.dump();
  require_clean_failure(run("predict --model " + kModel + " --card " + (dir / "mean.json") + " " + kSamples +
                                "test0000_ankle_boot.png",
                            dir),
                        "input.mean");
}

TEST_CASE("bad input: wrong sizes and bad flags", "[cli][bad-input]") {
  TempDir dir;
  // The model's input is fixed at 28x28; asking for another size is refused before any work.
  require_clean_failure(run("predict --model " + kModel + " --size 32x32 " + kSamples + "test0000_ankle_boot.png", dir),
                        "fixed");
  require_clean_failure(run("predict --model " + kModel + " --size 3by3 " + kSamples + "test0000_ankle_boot.png", dir),
                        "--size must look like");
  require_clean_failure(run("saliency --model " + kModel + " --image " + kSamples + "test0000_ankle_boot.png --rule sideways --out " +
                                (dir / "o.png"),
                            dir),
                        "unknown backward rule 'sideways'");
  require_clean_failure(run("predict --model " + kModel + " --device cpu --backend cuda " + kSamples + "test0000_ankle_boot.png", dir),
                        "backend 'cuda' is not available");
  require_clean_failure(run("saliency --model " + kModel + " --image " + kSamples + "test0000_ankle_boot.png --out " +
                                (dir / "missing_folder/o.png"),
                            dir),
                        "cannot write");
  // Usage errors found by the option parser read the same: one line, exit status 1.
  require_clean_failure(run("saliency --image " + kSamples + "test0000_ankle_boot.png --out " + (dir / "o.png"), dir),
                        "--model is required");
  require_clean_failure(run("predict --model " + kModel + " --no-such-flag " + kSamples + "test0000_ankle_boot.png", dir),
                        "--no-such-flag");
  require_clean_failure(run("", dir), "subcommand");
  require_no_files_but(dir, {});
}

TEST_CASE("a run that fails after writing some outputs leaves none of them behind", "[cli][bad-input]") {
  TempDir dir;
  // The heat map and the overlay are written before the raw map, whose folder does not exist.
  require_clean_failure(run("saliency --model " + kModel + " --image " + kSamples + "test0000_ankle_boot.png --out " +
                                (dir / "s.png") + " --raw " + (dir / "missing_folder/s.npy"),
                            dir),
                        "cannot write");
  require_no_files_but(dir, {});
  // The same outputs with a folder that exists: all three are there (the failure above was the folder).
  require_ok(run("saliency --model " + kModel + " --image " + kSamples + "test0000_ankle_boot.png --out " + (dir / "s.png") +
                     " --raw " + (dir / "s.npy"),
                 dir));
  require_no_files_but(dir, {"s.png", "s_overlay.png", "s.npy"});
  REQUIRE(fs::exists(dir / "s.npy"));
}

TEST_CASE("OutputRun removes what a failed run wrote and keeps what a committed run wrote", "[cli][atomic]") {
  TempDir dir;
  {
    OutputRun failed;
    write_file_atomic(dir / "a.txt", "a");
    {
      OutputRun inner;  // committed, but inside a run that fails: its file goes too
      write_file_atomic(dir / "b.txt", "b");
      inner.commit();
    }
    REQUIRE(failed.written().size() == 2);
  }
  REQUIRE(!fs::exists(dir / "a.txt"));
  REQUIRE(!fs::exists(dir / "b.txt"));
  {
    OutputRun ok;
    write_file_atomic(dir / "c.txt", "c");
    ok.commit();
  }
  REQUIRE(slurp(dir / "c.txt") == "c");
  write_file_atomic(dir / "d.txt", "d");  // outside any run: written as before
  REQUIRE(slurp(dir / "d.txt") == "d");
}
