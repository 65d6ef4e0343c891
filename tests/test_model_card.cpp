// Model cards, labels, .npy files and preprocessing.
#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "engine/error.h"
#include "engine/image.h"
#include "engine/model_card.h"
#include "engine/npy.h"
#include "engine/preprocess.h"
#include "test_support.h"

namespace fs = std::filesystem;
using namespace deepinside;

namespace {
std::string write_temp(const std::string& name, const std::string& text) {
  const fs::path p = fs::temp_directory_path() / ("deepinside_card_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream(p) << text;
  return p.string();
}
}  // namespace

TEST_CASE("the shared SqueezeNet card is read as written", "[card][shared]") {
  if (!test::have_shared("models/squeezenet1.1/model.json")) return;
  const ModelCard card = load_model_card(test::shared_path("models/squeezenet1.1/model.json"));
  const Preprocessing& p = card.preprocessing;
  REQUIRE(p.channel_order == ChannelOrder::bgr);
  REQUIRE(p.mean == std::vector<float>{104, 117, 123});
  REQUIRE((p.height == 227 && p.width == 227 && p.resize_shorter == 256));
  REQUIRE(card.labels.size() == 1000);
  REQUIRE(card.labels[0] == "tench, Tinca tinca");  // the WordNet id is dropped
  REQUIRE(card.input_name == "data");
}

TEST_CASE("card errors name the card and the field", "[card]") {
  const auto fails_with = [](const std::string& json, const std::string& words) {
    const std::string path = write_temp("bad.json", json);
    INFO(json);
    REQUIRE_THROWS_WITH(load_model_card(path), Catch::Contains(words) && Catch::Contains(path));
    fs::remove(path);
  };
  fails_with("{", "is not valid JSON");
  fails_with("[1]", "must be a JSON object");
  fails_with(R"({"name": "x"})", "field 'input' is required");
  fails_with(R"({"input": {}, "lables": []})", "field 'lables' is not a known field");
  fails_with(R"({"input": {"channel_order": "XYZ"}})", "input.channel_order");
  fails_with(R"({"input": {"height": -3}})", "input.height");
  fails_with(R"({"input": {"mean": [1, 2]}})", "has 2 values for 3 channels");
  fails_with(R"({"input": {"std": [1, 0, 1]}})", "input.std");
  fails_with(R"({"input": {"pixel_range": [1, 0]}})", "input.pixel_range");
  fails_with(R"({"input": {"layout": "NHWC"}})", "only NCHW");
  fails_with(R"({"input": {"resize": {"crop": "random"}}})", "input.resize.crop");
  fails_with(R"({"input": {}, "labels": "no_such_file.txt"})", "does not exist");
  fails_with(R"({"input": {}, "labels": [1, 2]})", "field 'labels'");
}

TEST_CASE("npy files round-trip and reject what they cannot read", "[npy]") {
  const std::string path = (fs::temp_directory_path() / "deepinside_roundtrip.npy").string();
  const float data[6] = {1, -2, 3.5f, 0, 1e-8f, 7};
  for (const Shape& shape : {Shape{6}, Shape{2, 3}, Shape{1, 2, 3}}) {
    write_npy(path, data, shape);
    const NpyArray a = read_npy(path);
    REQUIRE(a.shape == shape);
    REQUIRE(a.dtype == "<f4");
    for (int i = 0; i < 6; ++i) REQUIRE(a.values[i] == double(data[i]));
  }
  std::ofstream(path, std::ios::binary) << "not numpy";
  REQUIRE_THROWS_WITH(read_npy(path), Catch::Contains("not a .npy file"));
  fs::remove(path);
}

TEST_CASE("preprocessing follows the card: order, range, mean, std, scale", "[preprocess]") {
  Image img{2, 1, 3, {10, 20, 30, 40, 50, 60}};  // two RGB pixels
  Preprocessing p;
  p.channel_order = ChannelOrder::bgr;
  p.mean = {1, 2, 3};
  p.std = {1, 2, 4};
  p.scale = 2;
  const Tensor t = pixels_to_tensor(img, p);
  REQUIRE(t.shape() == Shape{3, 1, 2});
  // Model channel 0 is blue (30, 60): (30 - 1) / 1 * 2.
  REQUIRE(t[0] == Approx(58));
  REQUIRE(t[1] == Approx(118));
  REQUIRE(t[2] == Approx((20 - 2) / 2.0 * 2));  // green
  REQUIRE(t[4] == Approx((10 - 3) / 4.0 * 2));  // red
  const Image back = tensor_to_pixels(t.data(), 3, 1, 2, p);
  REQUIRE(back.pixels == img.pixels);

  Preprocessing unit;
  unit.range_lo = 0;
  unit.range_hi = 1;
  Image grey{1, 1, 1, {255}};
  REQUIRE(pixels_to_tensor(grey, unit)[0] == Approx(1.0));
}

TEST_CASE("resizing keeps flat images flat and the shorter side lands where asked", "[preprocess][image]") {
  Image flat{40, 30, 3, std::vector<uint8_t>(40 * 30 * 3, 77)};
  const Image small = resize_image(flat, 13, 9);
  for (uint8_t v : small.pixels) REQUIRE(v == 77);
  Preprocessing p;
  p.resize_shorter = 20;
  const PreparedImage prepared = prepare_image(flat, p, 3, 16, 16);
  REQUIRE((prepared.display.width == 16 && prepared.display.height == 16));
  p.resize_shorter = 10;
  REQUIRE_THROWS_WITH(prepare_image(flat, p, 3, 16, 16), Catch::Contains("smaller than the 16x16 crop"));
}

TEST_CASE("channel conversion says what it did", "[image]") {
  Image rgb{1, 1, 3, {255, 0, 0}};
  std::string note;
  const Image grey = convert_channels(rgb, 1, &note);
  REQUIRE(grey.pixels[0] == 76);  // BT.601 luma of pure red
  REQUIRE(note == "colour image converted to greyscale");
  const Image back = convert_channels(grey, 3, &note);
  REQUIRE(back.pixels == std::vector<uint8_t>{76, 76, 76});
  REQUIRE(note == "greyscale image converted to RGB");
  convert_channels(rgb, 3, &note);
  REQUIRE(note.empty());
}
