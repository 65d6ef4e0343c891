#include "engine/graph.h"

#include <queue>

#include "engine/error.h"

namespace deepinside {

int Graph::add_value(std::string name, Shape declared_shape) {
  require(find_value(name) < 0, "value '" + name + "' is defined twice");
  values_.push_back(Value{std::move(name), std::nullopt, std::move(declared_shape)});
  return value_count() - 1;
}

int Graph::add_constant(std::string name, Tensor data) {
  const int id = add_value(std::move(name), data.shape());
  values_[id].constant = std::move(data);
  return id;
}

void Graph::add_node(Node node) { nodes_.push_back(std::move(node)); }

int Graph::find_value(const std::string& name) const {
  for (int i = 0; i < value_count(); ++i)
    if (values_[i].name == name) return i;
  return -1;
}

int Graph::producer(int value_id) const { return producer_.at(value_id); }

void Graph::finalize(int input_id, std::vector<int> output_ids) {
  require(input_id >= 0 && !values_.at(input_id).is_constant(), "the graph has no data input");
  input_id_ = input_id;
  output_ids_ = std::move(output_ids);
  require(!output_ids_.empty(), "the graph has no outputs");

  // Producers: each value is written by at most one node, never the input or a constant.
  std::vector<int> producer(values_.size(), -1);
  for (size_t n = 0; n < nodes_.size(); ++n) {
    for (int out : nodes_[n].outputs) {
      const Value& v = values_.at(out);
      require(producer[out] < 0 && !v.is_constant() && out != input_id_,
              "value '" + v.name + "' is produced more than once (node '" + nodes_[n].name + "')");
      producer[out] = int(n);
    }
  }
  // Kahn's algorithm; ties keep the file's order so execution follows the model as written.
  std::vector<int> pending(nodes_.size(), 0);
  std::vector<std::vector<int>> consumers(nodes_.size());
  for (size_t n = 0; n < nodes_.size(); ++n) {
    for (int in : nodes_[n].inputs) {
      if (in < 0) continue;
      const Value& v = values_.at(in);
      if (v.is_constant() || in == input_id_) continue;
      require(producer[in] >= 0, "node '" + nodes_[n].name + "' (" + op_name(nodes_[n].kind) +
                                     ") reads value '" + v.name + "' that nothing produces");
      ++pending[n];
      consumers[producer[in]].push_back(int(n));
    }
  }
  std::priority_queue<int, std::vector<int>, std::greater<int>> ready;
  for (size_t n = 0; n < nodes_.size(); ++n)
    if (pending[n] == 0) ready.push(int(n));
  std::vector<int> order;
  while (!ready.empty()) {
    const int n = ready.top();
    ready.pop();
    order.push_back(n);
    for (int c : consumers[n])
      if (--pending[c] == 0) ready.push(c);
  }
  require(order.size() == nodes_.size(), "the graph has a cycle");
  std::vector<Node> sorted;
  sorted.reserve(nodes_.size());
  for (int n : order) sorted.push_back(std::move(nodes_[n]));
  nodes_ = std::move(sorted);

  producer_.assign(values_.size(), -1);
  for (size_t n = 0; n < nodes_.size(); ++n)
    for (int out : nodes_[n].outputs) producer_[out] = int(n);
  for (int out : output_ids_)
    require(producer_[out] >= 0 || out == input_id_,
            "graph output '" + values_.at(out).name + "' is not computed by any node");
}

int Graph::default_scores_value() const {
  for (int n = int(nodes_.size()) - 1; n >= 0; --n)
    if (nodes_[n].kind == OpKind::Softmax) return nodes_[n].inputs.at(0);
  return output_ids_.at(0);
}

int64_t Graph::parameter_count() const {
  int64_t count = 0;
  for (const Value& v : values_)
    if (v.is_constant()) count += v.constant->numel();
  return count;
}

}  // namespace deepinside
