#pragma once
// A model ready to run: the Graph, its card with command-line overrides applied, and the resolved
// input size, channel count and score value. Every inconsistency between card, flags and graph is an
// Error here, before any pixel is read.
#include <optional>
#include <string>
#include <vector>

#include "engine/graph.h"
#include "engine/model_card.h"

namespace deepinside {

// Command-line flags that override the card (docs/model-card.md).
struct CardOverrides {
  std::optional<std::string> card_path;
  std::optional<ChannelOrder> channel_order;
  std::optional<std::vector<float>> mean, std;
  std::optional<float> scale;
  std::optional<int> height, width;
  std::optional<int> resize_shorter;
  std::optional<std::string> labels_path;
  std::optional<std::string> scores_value;
};

struct Model {
  Graph graph;
  ModelCard card;         // with overrides applied
  int channels = 0, height = 0, width = 0;
  int scores_value = -1;  // the value holding the unnormalised class scores S_c
  int classes = 0;        // per-image length of the scores value
  std::vector<std::string> notes;  // what was assumed, for the user

  const Preprocessing& preprocessing() const { return card.preprocessing; }
  // Label of class c, or "class c" when the card has none.
  std::string label(int c) const;
};

Model load_model(const std::string& onnx_path, const CardOverrides& overrides);

}  // namespace deepinside
