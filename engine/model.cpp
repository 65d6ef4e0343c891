#include "engine/model.h"

#include "engine/error.h"
#include "engine/onnx_import.h"
#include "engine/shape_inference.h"

namespace deepinside {

std::string Model::label(int c) const {
  if (c >= 0 && c < int(card.labels.size())) return card.labels[c];
  return "class " + std::to_string(c);
}

Model load_model(const std::string& onnx_path, const CardOverrides& o) {
  Model m;
  m.graph = import_onnx_file(onnx_path);
  const std::optional<std::string> card_path = o.card_path ? o.card_path : find_model_card(onnx_path);
  if (card_path) m.card = load_model_card(*card_path);
  else m.notes.push_back("no model card found beside the model; using flags and defaults");

  Preprocessing& p = m.card.preprocessing;
  if (o.channel_order) p.channel_order = *o.channel_order;
  if (o.mean) {
    p.mean = *o.mean;
    p.mean_image.reset();
  }
  if (o.std) p.std = *o.std;
  if (o.scale) p.scale = *o.scale;
  if (o.height) p.height = *o.height;
  if (o.width) p.width = *o.width;
  if (o.resize_shorter) p.resize_shorter = *o.resize_shorter;
  if (o.labels_path) m.card.labels = read_labels_file(*o.labels_path);
  if (o.scores_value) m.card.scores = *o.scores_value;

  const Value& input = m.graph.value(m.graph.input());
  if (!m.card.input_name.empty())
    require(m.card.input_name == input.name, "the card names input '" + m.card.input_name +
                                                  "' but the model's input is '" + input.name + "'");
  const Shape& declared = input.declared_shape;
  require(declared.empty() || declared.size() == 4,
          "the model's input '" + input.name + "' has shape " + shape_to_string(declared) +
              "; deepinside needs an image input (N,C,H,W)");
  const auto declared_dim = [&](int i) { return declared.empty() ? -1 : int(declared[i]); };

  m.channels = declared_dim(1) > 0 ? declared_dim(1) : (p.channel_order == ChannelOrder::grey ? 1 : 3);
  require(m.channels == 1 || m.channels == 3,
          "the model's input has " + std::to_string(m.channels) + " channels; deepinside reads 1 or 3");
  if (m.channels == 1) p.channel_order = ChannelOrder::grey;
  require(m.channels == 3 || p.channel_order == ChannelOrder::grey,
          "channel order " + std::string(channel_order_name(p.channel_order)) + " does not fit a 1-channel input");
  require(m.channels == 1 || p.channel_order != ChannelOrder::grey,
          "channel order GREY does not fit the model's 3-channel input");
  for (const auto* values : {&p.mean, &p.std})
    require(values->empty() || int(values->size()) == m.channels,
            "mean/std have " + std::to_string(values->size()) + " values for " + std::to_string(m.channels) +
                " input channels");

  for (int i : {2, 3}) {
    int& size = i == 2 ? p.height : p.width;
    const int fixed = declared_dim(i);
    if (size == 0) size = fixed;
    require(size > 0, "the input size is unknown: the model does not fix it, give --size HxW or a card");
    require(fixed <= 0 || fixed == size, "the model's input is fixed at " + shape_to_string(declared) +
                                             " but the card or flags ask for " + std::to_string(p.height) +
                                             "x" + std::to_string(p.width));
  }
  m.height = p.height;
  m.width = p.width;

  const int named = m.card.scores.empty() ? -1 : m.graph.find_value(m.card.scores);
  if (o.scores_value) require(named >= 0, "no value named '" + *o.scores_value + "' in the model (--scores)");
  m.scores_value = named >= 0 ? named : m.graph.default_scores_value();
  const std::vector<Shape> shapes = infer_graph_shapes(m.graph, {1, m.channels, m.height, m.width});
  m.classes = int(shape_numel(shapes[m.scores_value]));
  require(m.card.labels.empty() || int(m.card.labels.size()) == m.classes,
          "the labels list " + std::to_string(m.card.labels.size()) + " classes but the model scores " +
              std::to_string(m.classes));
  return m;
}

}  // namespace deepinside
