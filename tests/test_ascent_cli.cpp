// The gradient-ascent subcommands end to end (class-model, neuron, invert, dream) on the project's
// Fashion-MNIST model: the files they promise, and bad input = one clear message, a non-zero exit
// and no output.
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "engine/image.h"
#include "cli_support.h"
#include "test_support.h"

namespace fs = std::filesystem;
using namespace deepinside;
using deepinside::test::source_path;
using namespace deepinside::test;

namespace {

const std::string kModel = source_path("weights/fashion_mnist/fashion_cnn.onnx");
const std::string kBoot = source_path("weights/fashion_mnist/samples/test0000_ankle_boot.png");

int count_lines(const std::string& text) { return int(std::count(text.begin(), text.end(), '\n')); }

}  // namespace

TEST_CASE("class-model writes a PNG per class, a labelled grid, the score curve and a summary", "[ascent][cli]") {
  TempDir dir;
  const RunResult r = run("class-model --model " + kModel + " --class 1,5,9 --steps 30 --quiet --out " + (dir / "out"), dir);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  for (int c : {1, 5, 9}) {
    const Image img = load_image(dir / ("out/class_" + std::to_string(c) + ".png"));
    CHECK(img.width == 28);
    CHECK(img.channels == 1);
  }
  const Image grid = load_image(dir / "out/grid.png");
  CHECK(grid.width >= 2 * 96);  // two columns of tiles enlarged to at least 96 pixels
  const std::string csv = slurp(dir / "out/scores.csv");
  CHECK(csv.rfind("step,score_1,prob_1,score_5,prob_5,score_9,prob_9\n", 0) == 0);
  CHECK(count_lines(csv) == 1 + 30 + 1);  // header, every step's forward, the result
  const nlohmann::json j = nlohmann::json::parse(slurp(dir / "out/summary.json"));
  for (const auto& c : j["classes"]) {
    CHECK(double(c["score"]) > double(c["score_start"]) + 5.0);
    CHECK(int(c["picture_top1"]) == int(c["class"]));
  }
}

TEST_CASE("neuron, invert and dream write their pictures", "[ascent][cli]") {
  TempDir dir;
  RunResult r = run("neuron --model " + kModel + " --layer /net/Relu_1 --channel 0,3 --steps 20 -q --out " + (dir / "n"), dir);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(fs::exists(dir / "n/channel_0.png"));
  CHECK(fs::exists(dir / "n/channel_3.png"));
  CHECK(fs::exists(dir / "n/grid.png"));
  r = run("neuron --model " + kModel + " --layer /net/conv2/Conv --channel 5 --x 3 --y 4 --steps 10 -q --out " +
              (dir / "u"),
          dir);
  REQUIRE(r.exit_code == 0);
  CHECK(fs::exists(dir / "u/channel_5_y4_x3.png"));
  r = run("invert --model " + kModel + " --image " + kBoot + " --layer /net/Relu,/net/Relu_1 --steps 20 -q --out " +
              (dir / "i"),
          dir);
  REQUIRE(r.exit_code == 0);
  CHECK(fs::exists(dir / "i/test0000_ankle_boot_input.png"));
  CHECK(fs::exists(dir / "i/test0000_ankle_boot_net_Relu_output_0.png"));
  CHECK(fs::exists(dir / "i/grid.png"));
  r = run("dream --model " + kModel + " --image " + kBoot + " --layer /net/Relu_1 --octaves 1 --steps 5 -q --out " +
              (dir / "d"),
          dir);
  REQUIRE(r.exit_code == 0);
  CHECK(load_image(dir / "d/test0000_ankle_boot_dream.png").width == 28);
}

TEST_CASE("bad requests: one message, non-zero exit, no output", "[ascent][cli]") {
  TempDir dir;
  const std::string out = dir / "out";
  struct Bad {
    std::string args, message;
  };
  const std::vector<Bad> cases = {
      {"class-model --model " + kModel + " --class 3,10", "class 10 is out of range"},
      {"class-model --model " + kModel + " --class 3 --objective likelihood", "unknown objective"},
      {"class-model --model " + kModel + " --class 3 --octaves 2", "octave 1 of 2"},
      {"class-model --model " + kModel + " --class 3 --lr 0", "--lr must be positive"},
      {"neuron --model " + kModel + " --layer /no/such --channel 1", "no value or node named"},
      {"neuron --model " + kModel + " --layer /net/Relu_1 --channel 64", "channel 64 is out of range"},
      {"neuron --model " + kModel + " --layer /net/Relu_1 --channel 1 --x 14 --y 0", "outside layer"},
      {"neuron --model " + kModel + " --layer /net/Relu_1 --channel 1 --x 2", "needs both --x and --y"},
      {"invert --model " + kModel + " --image " + kBoot + " --layer /nope", "no value or node named"},
      {"dream --model " + kModel + " --image /no/such.png --layer /net/Relu_1", "/no/such.png"},
  };
  for (const Bad& b : cases) {
    INFO(b.args);
    const RunResult r = run(b.args + " -q --out " + out, dir);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find(b.message) != std::string::npos);
    CHECK(r.err.find("deepinside: error:") != std::string::npos);
    CHECK(!fs::exists(out));
  }
  // --out naming a file: refused before any work, the file untouched.
  { std::ofstream(dir / "file.txt") << "keep"; }
  const RunResult r = run("class-model --model " + kModel + " --class 1 -q --out " + (dir / "file.txt"), dir);
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("is not a folder") != std::string::npos);
  CHECK(slurp(dir / "file.txt") == "keep");
}
