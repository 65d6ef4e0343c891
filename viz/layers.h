#pragma once
// Naming and locating the layers the methods work on: a value by name (or by the node that makes it),
// and which values lie between the input and a given value.
#include <string>
#include <vector>

#include "engine/graph.h"

namespace deepinside::viz {

// The value called `name`, else the first output of the node called `name` (so "/conv10/Conv" and
// "/conv10/Conv_output_0" both work). Throws Error saying that `deepinside info` lists the names.
int resolve_value(const Graph& graph, const std::string& name);

// on_path[v]: value v depends on the graph's input and feeds `to` (or is `to`): the values a backward
// pass seeded at `to` reaches.
std::vector<bool> values_between_input_and(const Graph& graph, int to);

// The producer node's name of a value, for messages ("the input" for the input, the value's own
// name otherwise).
std::string describe_value(const Graph& graph, int value);

}  // namespace deepinside::viz
