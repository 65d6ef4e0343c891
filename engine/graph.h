#pragma once
// Graph: named values + nodes (op kind, typed parameters, inputs, outputs) in topological order.
// No knowledge of files or devices: onnx_import builds it, Session executes it.
#include <optional>
#include <string>
#include <vector>

#include "engine/op_params.h"
#include "engine/tensor.h"

namespace deepinside {

struct Value {
  std::string name;
  std::optional<Tensor> constant;  // weights and other initializers; activations have none
  Shape declared_shape;            // from the model file, -1 where unknown (graph input/outputs)
  bool is_constant() const { return constant.has_value(); }
};

struct Node {
  std::string name;  // the model's node name, or "<op>_<index>" when it has none
  OpKind kind;
  OpParams params;
  std::vector<int> inputs;   // value ids; -1 for an omitted optional input
  std::vector<int> outputs;  // value ids
};

class Graph {
 public:
  int add_value(std::string name, Shape declared_shape = {});
  int add_constant(std::string name, Tensor data);
  void add_node(Node node);

  // Sorts nodes topologically and checks the graph: one input, every value produced once,
  // every node input defined. Throws Error naming the offending node or value.
  void finalize(int input_id, std::vector<int> output_ids);

  int find_value(const std::string& name) const;  // -1 when absent
  const Value& value(int id) const { return values_.at(id); }
  Value& value(int id) { return values_.at(id); }
  int value_count() const { return static_cast<int>(values_.size()); }
  const std::vector<Node>& nodes() const { return nodes_; }
  std::vector<Node>& nodes() { return nodes_; }
  int input() const { return input_id_; }
  const std::vector<int>& outputs() const { return output_ids_; }

  // The node that produces a value, or -1 for the input and constants.
  int producer(int value_id) const;
  // The unnormalised class scores by default: the input of the last Softmax, else the first output.
  int default_scores_value() const;
  int64_t parameter_count() const;

  int opset = 13;

 private:
  std::vector<Value> values_;
  std::vector<Node> nodes_;
  std::vector<int> producer_;
  int input_id_ = -1;
  std::vector<int> output_ids_;
};

}  // namespace deepinside
