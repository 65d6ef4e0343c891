#pragma once
// What every subcommand shares: the model flags (card overrides, device, backend), loading the
// model and images, and naming output files.
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "engine/backend.h"
#include "engine/model.h"
#include "engine/preprocess.h"

namespace deepinside::cli {

struct ModelFlags {
  std::string model, card, channel_order, mean, std, size, labels, scores;
  float scale = 1.0f;
  int resize_shorter = 0;
  std::string device = "cpu", backend;
  CLI::Option *scale_opt = nullptr, *resize_opt = nullptr;
};

void add_model_flags(CLI::App* cmd, ModelFlags& flags);
Model load_model_from_flags(const ModelFlags& flags);
std::unique_ptr<Backend> backend_from_flags(const ModelFlags& flags);

// Decodes and preprocesses every image before anything runs, so that a bad file fails early and
// no output is written. Conversion notes go to stderr.
std::vector<PreparedImage> load_images(const std::vector<std::string>& paths, const Model& model);

// OUT itself for one image; OUT with "_<image stem>" before its extension for several.
std::string output_path(const std::string& out, const std::string& image, size_t image_count);

// "227x227" -> {227, 227}; "1,2,3" -> {1,2,3}. Throw Error naming the flag.
std::pair<int, int> parse_size(const std::string& text, const std::string& flag);
std::vector<float> parse_floats(const std::string& text, const std::string& flag);

}  // namespace deepinside::cli
