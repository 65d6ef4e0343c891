// deepinside info: the graph as deepinside sees it: ops, shapes, parameters and MACs per layer.
#include <iomanip>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "engine/shape_inference.h"
#include "tools/deepinside/commands.h"
#include "tools/deepinside/common.h"

namespace deepinside::cli {

namespace {

struct InfoFlags {
  ModelFlags model;
  bool json = false;
};

// Multiply-accumulates of one node at the planned shapes (convolutions and matrix products only).
int64_t node_macs(const Node& node, const std::vector<Shape>& shapes) {
  const Shape& out = shapes[node.outputs[0]];
  if (node.kind == OpKind::Conv) {
    const Shape& w = shapes[node.inputs[1]];
    return shape_numel(out) * w[1] * w[2] * w[3];
  }
  if (node.kind == OpKind::Gemm) {
    const Shape& a = shapes[node.inputs[0]];
    return shape_numel(out) * (std::get<GemmParams>(node.params).trans_a ? a[0] : a[1]);
  }
  if (node.kind == OpKind::MatMul) return shape_numel(out) * shapes[node.inputs[0]].back();
  return 0;
}

void run_info(const InfoFlags& f) {
  const Model model = load_model_from_flags(f.model);
  const Graph& g = model.graph;
  const Shape input{1, model.channels, model.height, model.width};
  const std::vector<Shape> shapes = infer_graph_shapes(g, input);
  int64_t total_macs = 0;
  nlohmann::json layers = nlohmann::json::array();
  if (!f.json) {
    std::cout << "model   " << f.model.model << (model.card.name.empty() ? "" : "  (" + model.card.name + ")")
              << "\ninput   " << g.value(g.input()).name << "  " << shape_to_string(input) << "  "
              << channel_order_name(model.preprocessing().channel_order) << "\nscores  "
              << g.value(model.scores_value).name << "  (" << model.classes << " classes)\nopset   " << g.opset
              << "\n\n"
              << std::left << std::setw(28) << "node" << std::setw(20) << "op" << std::setw(18) << "output"
              << std::right << std::setw(12) << "params" << std::setw(16) << "MACs" << "\n";
  }
  for (const Node& node : g.nodes()) {
    int64_t params = 0;
    for (int in : node.inputs)
      if (in >= 0 && g.value(in).is_constant()) params += g.value(in).constant->numel();
    const int64_t macs = node_macs(node, shapes);
    total_macs += macs;
    const std::string out = shape_to_string(shapes[node.outputs[0]]);
    if (f.json) {
      layers.push_back({{"node", node.name}, {"op", op_name(node.kind)}, {"output", shapes[node.outputs[0]]},
                        {"params", params}, {"macs", macs}});
    } else {
      std::cout << std::left << std::setw(28) << node.name << std::setw(20) << op_name(node.kind) << std::setw(18)
                << out << std::right << std::setw(12) << params << std::setw(16) << macs << "\n";
    }
  }
  if (f.json) {
    nlohmann::json j = {{"model", f.model.model}, {"input", input}, {"input_name", g.value(g.input()).name},
                        {"scores", g.value(model.scores_value).name}, {"classes", model.classes},
                        {"opset", g.opset}, {"parameters", g.parameter_count()}, {"macs", total_macs},
                        {"layers", layers}};
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << "\n" << g.nodes().size() << " nodes, " << g.parameter_count() << " parameters, " << total_macs
              << " MACs per image (" << std::fixed << std::setprecision(3) << double(total_macs) * 2e-9
              << " GFLOP forward)\n";
  }
}

}  // namespace

void register_info(CLI::App& app, std::function<void()>& run) {
  auto flags = std::make_shared<InfoFlags>();
  CLI::App* cmd = app.add_subcommand("info", "ops, shapes, parameters and MACs per layer");
  add_model_flags(cmd, flags->model);
  cmd->add_flag("--json", flags->json, "machine-readable output");
  cmd->callback([flags, &run] { run = [flags] { run_info(*flags); }; });
}

}  // namespace deepinside::cli
