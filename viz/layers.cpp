#include "viz/layers.h"

#include "engine/error.h"

namespace deepinside::viz {

int resolve_value(const Graph& graph, const std::string& name) {
  const int id = graph.find_value(name);
  if (id >= 0) return id;
  for (const Node& node : graph.nodes())
    if (node.name == name) return node.outputs.at(0);
  throw Error("the model has no value or node named '" + name + "' (deepinside info lists them)");
}

std::vector<bool> values_between_input_and(const Graph& graph, int to) {
  const auto& nodes = graph.nodes();
  std::vector<bool> from_input(graph.value_count(), false), feeds(graph.value_count(), false);
  from_input[graph.input()] = true;
  for (const Node& node : nodes)
    for (int in : node.inputs)
      if (in >= 0 && from_input[in]) from_input[node.outputs[0]] = true;
  feeds[to] = true;
  for (auto it = nodes.rbegin(); it != nodes.rend(); ++it)
    if (feeds[it->outputs[0]])
      for (int in : it->inputs)
        if (in >= 0) feeds[in] = true;
  std::vector<bool> on_path(graph.value_count());
  for (int v = 0; v < graph.value_count(); ++v) on_path[v] = from_input[v] && feeds[v];
  return on_path;
}

std::string describe_value(const Graph& graph, int value) {
  if (value == graph.input()) return "the input '" + graph.value(value).name + "'";
  return "'" + graph.value(value).name + "'";
}

}  // namespace deepinside::viz
