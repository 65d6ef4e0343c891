#pragma once
// The part of a graph that computes one value: the nodes on which that value depends, with the same
// value ids as the whole graph. A visualisation that only reads an intermediate layer runs (and
// plans buffers for) that part alone, and the part may accept input sizes the whole net does not
// (a convolutional trunk in front of a fixed-size classifier).
#include "engine/graph.h"

namespace deepinside {

// A new graph whose only output is value_id (of `graph`): the nodes value_id depends on, the
// constants they read (copied), every other value kept as an unused placeholder so that value ids
// and names stay valid in both graphs. The input's declared batch and spatial sizes are dropped
// (its rank and channel count stay): the part takes any size its ops accept. Throws Error when value_id is the input, a constant or
// not a value of the graph.
Graph graph_up_to(const Graph& graph, int value_id);

}  // namespace deepinside
