// The command line on the CUDA backends: through cuda-emu (always built) every subcommand that runs
// a model gives the CPU's results; "cuda" and "cudnn" without a GPU (or in a build without CUDA) fail
// with one clear message naming the backend, exit 1, and write nothing.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/npy.h"
#include "test_support.h"

using namespace deepinside;
using deepinside::test::source_path;

namespace {

const std::string kModel = source_path("weights/fashion_mnist/fashion_cnn.onnx");
const std::string kImage = source_path("weights/fashion_mnist/samples/test0000_ankle_boot.png");

struct Run {
  int code;
  std::string out;
};

Run run(const std::string& args, const std::filesystem::path& dir) {
  const std::filesystem::path log = dir / "log.txt";
  const std::string cmd = std::string(DEEPINSIDE_BINARY) + " " + args + " > " + log.string() + " 2>&1";
  const int status = std::system(cmd.c_str());
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  std::filesystem::remove(log);
  return {WEXITSTATUS(status), text.str()};
}

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    path = std::filesystem::temp_directory_path() / ("deepinside-cuda-cli-" + std::to_string(std::rand()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

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
  const Run cpu = run("predict --model " + kModel + " --json " + kImage, dir.path);
  const Run emu = run("predict --model " + kModel + " --backend cuda-emu --json " + kImage, dir.path);
  INFO(cpu.out << "\n" << emu.out);
  REQUIRE(cpu.code == 0);
  REQUIRE(emu.code == 0);
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
    const auto a = dir.path / (std::string("cpu_") + rule + ".npy"), b = dir.path / (std::string("emu_") + rule + ".npy");
    REQUIRE(run("saliency --model " + kModel + " --image " + kImage + " --rule " + rule + " --out " +
                    (dir.path / "cpu.png").string() + " --raw " + a.string(), dir.path).code == 0);
    const Run r = run("saliency --model " + kModel + " --image " + kImage + " --rule " + rule + " --backend cuda-emu --out " +
                          (dir.path / "emu.png").string() + " --raw " + b.string(), dir.path);
    INFO(r.out);
    REQUIRE(r.code == 0);
    const NpyArray ma = read_npy(a.string()), mb = read_npy(b.string());
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
    const Run r = run("saliency --model " + kModel + " --image " + kImage + " " + flags + " --out " +
                          (dir.path / "o.png").string(), dir.path);
    INFO(flags << ": " << r.out);
    REQUIRE(r.code == 1);
    REQUIRE(r.out.find("backend '" + name + "' is not available") != std::string::npos);
    REQUIRE(!std::filesystem::exists(dir.path / "o.png"));
  }
}
