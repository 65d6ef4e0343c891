#pragma once
// The model card: the JSON beside a model that says how pixels become the input tensor, which value
// holds the class scores, and the class names. Format: docs/model-card.md.
#include <optional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace deepinside {

enum class ChannelOrder { rgb, bgr, grey };

struct Preprocessing {
  int height = 0, width = 0;  // 0: take it from the model's input shape
  ChannelOrder channel_order = ChannelOrder::rgb;
  float range_lo = 0.0f, range_hi = 255.0f;
  std::vector<float> mean;           // per channel, model order; empty = zeros
  std::vector<float> std;            // per channel; empty = ones
  float scale = 1.0f;
  std::optional<Tensor> mean_image;  // (C,H,W), replaces mean when present
  int resize_shorter = 0;            // 0: resize straight to height x width
};

struct ModelCard {
  std::string card_path;  // empty when the model has no card
  std::string name;
  std::string model;       // the ONNX file named by the card (resolved against the card's folder)
  std::string input_name;  // empty: the graph's data input
  std::string scores;      // a value name, or free text (then the default rule applies)
  std::vector<std::string> labels;
  Preprocessing preprocessing;
};

// Parses and validates a card; relative paths (labels, mean_image, model) resolve against its folder.
// Throws Error naming the card, the field and what is wrong.
ModelCard load_model_card(const std::string& path);
// STEM.json beside STEM.onnx, else model.json in the same folder; nullopt when neither exists.
std::optional<std::string> find_model_card(const std::string& model_path);
// One class name per line; a leading WordNet id ("n01440764 tench, ...") is dropped.
std::vector<std::string> read_labels_file(const std::string& path);

ChannelOrder parse_channel_order(const std::string& name);  // rgb|bgr|grey (any case); throws Error
const char* channel_order_name(ChannelOrder order);

}  // namespace deepinside
