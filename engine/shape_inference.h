#pragma once
// Output shapes of one node from its input shapes; throws Error naming node and op on a mismatch.
#include <vector>

#include "engine/graph.h"

namespace deepinside {

// inputs[i] is nullptr for an omitted optional input.
Shape infer_output_shape(const Node& node, const std::vector<const Shape*>& inputs);

// Numpy-style broadcast of two shapes; throws when they are incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b);

// Shapes of every value for a given input shape (constants keep theirs; unused values stay empty).
std::vector<Shape> infer_graph_shapes(const Graph& graph, const Shape& input_shape);

}  // namespace deepinside
