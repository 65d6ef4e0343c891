#include "engine/subgraph.h"

#include "engine/error.h"

namespace deepinside {

Graph graph_up_to(const Graph& graph, int value_id) {
  require(value_id >= 0 && value_id < graph.value_count(), "no such value (id " + std::to_string(value_id) + ")");
  const Value& target = graph.value(value_id);
  require(value_id != graph.input(), "value '" + target.name + "' is the input itself, not a layer");
  require(!target.is_constant(), "value '" + target.name + "' is a constant (a weight), not a layer");

  // Walk producers back from the target (nodes are in topological order).
  const auto& nodes = graph.nodes();
  std::vector<bool> needed_value(graph.value_count(), false), keep_node(nodes.size(), false);
  needed_value[value_id] = true;
  for (int n = int(nodes.size()) - 1; n >= 0; --n) {
    bool needed = false;
    for (int out : nodes[n].outputs) needed = needed || needed_value[out];
    if (!needed) continue;
    keep_node[n] = true;
    for (int in : nodes[n].inputs)
      if (in >= 0) needed_value[in] = true;
  }
  require(needed_value[graph.input()], "value '" + target.name + "' does not depend on the input");

  Graph part;
  for (int v = 0; v < graph.value_count(); ++v) {
    const Value& value = graph.value(v);
    if (value.is_constant() && needed_value[v]) {
      part.add_constant(value.name, value.constant->clone());
    } else if (v == graph.input()) {
      // The part takes any batch and image size its ops accept (the declared size belongs to the
      // whole net, whose classifier may fix it); rank and channels stay declared.
      Shape declared = value.declared_shape;
      for (size_t d = 0; d < declared.size(); ++d)
        if (d != 1) declared[d] = -1;
      part.add_value(value.name, declared);
    } else {
      part.add_value(value.name, value.is_constant() ? Shape{} : value.declared_shape);
    }
  }
  for (size_t n = 0; n < nodes.size(); ++n) {
    if (!keep_node[n]) continue;
    const Node& node = nodes[n];
    part.add_node(Node{node.name, node.kind, node.params, node.inputs, node.outputs});
  }
  part.opset = graph.opset;
  part.finalize(graph.input(), {value_id});
  return part;
}

}  // namespace deepinside
