#include "tools/deepinside/common.h"

#include <filesystem>
#include <iostream>
#include <sstream>

#include "engine/error.h"

namespace deepinside::cli {

void add_model_flags(CLI::App* cmd, ModelFlags& f) {
  cmd->add_option("--model,-m", f.model, "ONNX model file")->required();
  cmd->add_option("--card", f.card, "model card JSON (default: STEM.json or model.json beside the model)");
  cmd->add_option("--channel-order", f.channel_order, "rgb|bgr|grey (overrides the card)");
  cmd->add_option("--mean", f.mean, "per-channel mean, e.g. 104,117,123 (overrides the card)");
  cmd->add_option("--std", f.std, "per-channel std, e.g. 0.229,0.224,0.225 (overrides the card)");
  f.scale_opt = cmd->add_option("--scale", f.scale, "multiplier after mean and std (overrides the card)");
  cmd->add_option("--size", f.size, "network input size HxW (overrides the card)");
  f.resize_opt = cmd->add_option("--resize-shorter", f.resize_shorter,
                                 "resize the shorter side to N, then centre-crop (0: resize straight)");
  cmd->add_option("--labels", f.labels, "label file, one class per line (overrides the card)");
  cmd->add_option("--scores", f.scores, "name of the value holding the class scores (default: softmax input)");
  cmd->add_option("--device", f.device, "cpu or cuda (a GPU, in CUDA builds)")->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_option("--backend", f.backend,
                  "backend (default: the device's own): cpu, cpu-reference, cuda, cudnn, or cuda-emu (the CUDA "
                  "kernels emulated on the CPU; slow, for checks)");
}

std::pair<int, int> parse_size(const std::string& text, const std::string& flag) {
  int h = 0, w = 0;
  char x = 0, extra = 0;
  std::istringstream in(text);
  if (!(in >> h >> x >> w) || (x != 'x' && x != 'X') || (in >> extra) || h <= 0 || w <= 0)
    throw Error(flag + " must look like 227x227, got '" + text + "'");
  return {h, w};
}

std::vector<float> parse_floats(const std::string& text, const std::string& flag) {
  std::vector<float> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      size_t used = 0;
      out.push_back(std::stof(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw Error(flag + " must be numbers separated by commas, got '" + text + "'");
    }
  }
  if (out.empty()) throw Error(flag + " is empty");
  return out;
}

Model load_model_from_flags(const ModelFlags& f) {
  CardOverrides o;
  if (!f.card.empty()) o.card_path = f.card;
  if (!f.channel_order.empty()) o.channel_order = parse_channel_order(f.channel_order);
  if (!f.mean.empty()) o.mean = parse_floats(f.mean, "--mean");
  if (!f.std.empty()) o.std = parse_floats(f.std, "--std");
  if (f.scale_opt && f.scale_opt->count()) o.scale = f.scale;
  if (!f.size.empty()) std::tie(o.height, o.width) = parse_size(f.size, "--size");
  if (f.resize_opt && f.resize_opt->count()) {
    require(f.resize_shorter >= 0, "--resize-shorter must be >= 0");
    o.resize_shorter = f.resize_shorter;
  }
  if (!f.labels.empty()) o.labels_path = f.labels;
  if (!f.scores.empty()) o.scores_value = f.scores;
  require(std::filesystem::exists(f.model), "model file '" + f.model + "' does not exist");
  Model m = load_model(f.model, o);
  for (const std::string& note : m.notes) std::cerr << "deepinside: note: " << note << "\n";
  return m;
}

std::unique_ptr<Backend> backend_from_flags(const ModelFlags& f) {
  return make_backend(f.backend.empty() ? f.device : f.backend);
}

std::vector<PreparedImage> load_images(const std::vector<std::string>& paths, const Model& model) {
  std::vector<PreparedImage> out;
  for (const std::string& path : paths) {
    PreparedImage p = prepare_image(load_image(path), model.preprocessing(), model.channels, model.height,
                                    model.width);
    if (!p.note.empty()) std::cerr << "deepinside: note: " << path << ": " << p.note << "\n";
    out.push_back(std::move(p));
  }
  return out;
}

std::string output_path(const std::string& out, const std::string& image, size_t image_count) {
  if (image_count <= 1) return out;
  const std::filesystem::path o(out);
  const std::string stem = std::filesystem::path(image).stem().string();
  return (o.parent_path() / (o.stem().string() + "_" + stem + o.extension().string())).string();
}

}  // namespace deepinside::cli
