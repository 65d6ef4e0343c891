// The command line on the CUDA backends: through cuda-emu (always built) every subcommand that runs
// a model gives the CPU's results; "cuda" and "cudnn" without a GPU (or in a build without CUDA) fail
// with one clear message naming the backend, exit 1, and write nothing.
#include <filesystem>
#include <string>

#include <catch2/catch.hpp>

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/npy.h"
#include "cli_support.h"
#include "test_support.h"

using namespace deepinside;
using deepinside::test::source_path;
using namespace deepinside::test;

namespace {

const std::string kModel = source_path("weights/fashion_mnist/fashion_cnn.onnx");
const std::string kImage = source_path("weights/fashion_mnist/samples/test0000_ankle_boot.png");

bool gpu_backend_available(const std::string& name) {
  try {
    make_backend(name);
    return true;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace

TEST_CASE("cuda cli: predict and saliency through cuda-emu give the CPU's classes and maps", "[cuda-cli]") {
  TempDir dir;
  const RunResult cpu = run("predict --model " + kModel + " --json " + kImage, dir);
  const RunResult emu = run("predict --model " + kModel + " --backend cuda-emu --json " + kImage, dir);
  require_ok(cpu);
  require_ok(emu);
  // Same top classes, in the same order (the JSON's class fields).
  auto classes = [](const std::string& json) {
    std::string out;
    for (size_t at = json.find("\"class\""); at != std::string::npos; at = json.find("\"class\"", at + 1))
      out += json.substr(at, json.find(',', at) - at) + ";";
    return out;
  };
  REQUIRE(!classes(cpu.out).empty());
  REQUIRE(classes(cpu.out) == classes(emu.out));

  for (const char* rule : {"gradient", "deconvnet", "guided"}) {
    INFO("rule " << rule);
    const std::string a = dir / (std::string("cpu_") + rule + ".npy"), b = dir / (std::string("emu_") + rule + ".npy");
    require_ok(run("saliency --model " + kModel + " --image " + kImage + " --rule " + rule + " --out " + (dir / "cpu.png") +
                       " --raw " + a,
                   dir));
    require_ok(run("saliency --model " + kModel + " --image " + kImage + " --rule " + rule + " --backend cuda-emu --out " +
                       (dir / "emu.png") + " --raw " + b,
                   dir));
    const NpyArray ma = read_npy(a), mb = read_npy(b);
    REQUIRE(ma.shape == mb.shape);
    const std::vector<float> got(mb.values.begin(), mb.values.end());
    REQUIRE(test::max_abs(ma.values) > 0);
    REQUIRE_CLOSE(got.data(), ma.values, int64_t(ma.values.size()), 1e-3, 1e-4 * test::max_abs(ma.values));
  }
}

TEST_CASE("cuda cli: --device cuda and --backend cuda|cudnn without a GPU fail with one clear message",
          "[cuda-cli][bad-input]") {
  TempDir dir;
  for (const std::string flags : {"--device cuda", "--backend cuda", "--backend cudnn"}) {
    const std::string name = flags == "--backend cudnn" ? "cudnn" : "cuda";
    if (gpu_backend_available(name)) {
      WARN("a GPU is present: " << flags << " is checked by the device parity tests instead");
      continue;
    }
    INFO(flags);
    require_clean_failure(run("saliency --model " + kModel + " --image " + kImage + " " + flags + " --out " + (dir / "o.png"), dir),
                          "backend '" + name + "' is not available", dir);
  }
}
