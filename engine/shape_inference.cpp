#include "engine/shape_inference.h"

#include <algorithm>

#include "engine/error.h"

namespace deepinside {

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    require(da == db || da == 1 || db == 1,
            "shapes " + shape_to_string(a) + " and " + shape_to_string(b) + " do not broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

namespace {

int normalize_axis(int axis, int rank, const Node& node) {
  const int a = axis < 0 ? axis + rank : axis;
  require(a >= 0 && a < rank, "axis " + std::to_string(axis) + " out of range for rank " +
                                  std::to_string(rank));
  return a;
}

Shape infer(const Node& node, const std::vector<const Shape*>& in) {
  auto input = [&](size_t i) -> const Shape& {
    require(i < in.size() && in[i], "missing input " + std::to_string(i));
    return *in[i];
  };
  const OpKind kind = node.kind;
  if (kind == OpKind::Conv) {
    const auto& p = std::get<ConvParams>(node.params);
    const ConvGeometry g = conv_geometry(p, input(0), input(1));
    if (in.size() > 2 && in[2])
      require(*in[2] == Shape{g.M}, "Conv bias must have shape " + std::to_string(g.M) +
                                        ", got " + shape_to_string(*in[2]));
    return {g.N, g.M, g.OH, g.OW};
  }
  if (kind == OpKind::MaxPool || kind == OpKind::AveragePool) {
    const PoolGeometry g = pool_geometry(std::get<PoolParams>(node.params), input(0));
    return {g.N, g.C, g.OH, g.OW};
  }
  if (kind == OpKind::GlobalAveragePool) {
    const Shape& x = input(0);
    require(x.size() == 4, "needs a 4-D input, got " + shape_to_string(x));
    return {x[0], x[1], 1, 1};
  }
  if (kind == OpKind::Gemm) {
    const auto& p = std::get<GemmParams>(node.params);
    const Shape& a = input(0);
    const Shape& b = input(1);
    require(a.size() == 2 && b.size() == 2,
            "Gemm needs 2-D A and B, got " + shape_to_string(a) + " and " + shape_to_string(b));
    const int64_t m = p.trans_a ? a[1] : a[0], k = p.trans_a ? a[0] : a[1];
    const int64_t kb = p.trans_b ? b[1] : b[0], n = p.trans_b ? b[0] : b[1];
    require(k == kb, "Gemm inner dimensions differ: " + shape_to_string(a) + " and " +
                         shape_to_string(b));
    if (in.size() > 2 && in[2]) {
      const Shape c = broadcast_shapes(*in[2], {m, n});
      require(c == Shape({m, n}), "Gemm C " + shape_to_string(*in[2]) + " does not broadcast to " +
                                      shape_to_string({m, n}));
    }
    return {m, n};
  }
  if (kind == OpKind::MatMul) {
    const Shape& a = input(0);
    const Shape& b = input(1);
    require(a.size() >= 2 && (b.size() == 2 || b.size() == a.size()),
            "MatMul supports A of rank >= 2 with B of rank 2 or of A's rank, got " +
                shape_to_string(a) + " and " + shape_to_string(b));
    require(a.back() == b[b.size() - 2], "MatMul inner dimensions differ: " + shape_to_string(a) +
                                             " and " + shape_to_string(b));
    if (b.size() > 2)
      require(std::equal(a.begin(), a.end() - 2, b.begin()),
              "MatMul batch dimensions differ: " + shape_to_string(a) + " and " + shape_to_string(b));
    Shape out = a;
    out.back() = b.back();
    return out;
  }
  if (is_binary_elementwise(kind)) return broadcast_shapes(input(0), input(1));
  if (kind == OpKind::Max || kind == OpKind::Sum) {
    for (size_t i = 1; i < in.size(); ++i)
      require(input(i) == input(0), "inputs must have equal shapes, got " +
                                        shape_to_string(input(0)) + " and " + shape_to_string(input(i)));
    return input(0);
  }
  if (kind == OpKind::Flatten) {
    const Shape& x = input(0);
    const int rank = int(x.size());
    int axis = std::get<AxisParams>(node.params).axis;
    if (axis < 0) axis += rank;
    require(axis >= 0 && axis <= rank, "Flatten axis out of range for " + shape_to_string(x));
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < rank; ++i) (i < axis ? outer : inner) *= x[i];
    return {outer, inner};
  }
  if (kind == OpKind::Reshape) {
    const auto& p = std::get<ReshapeParams>(node.params);
    const Shape& x = input(0);
    Shape out = p.target;
    int infer_at = -1;
    int64_t known = 1;
    for (size_t i = 0; i < out.size(); ++i) {
      if (out[i] == 0 && !p.allowzero) {
        require(i < x.size(), "Reshape copies dim " + std::to_string(i) + " that the input lacks");
        out[i] = x[i];
      }
      if (out[i] == -1) {
        require(infer_at < 0, "Reshape target has more than one -1");
        infer_at = int(i);
      } else {
        require(out[i] >= 0, "Reshape target has a negative size");
        known *= out[i];
      }
    }
    const int64_t total = shape_numel(x);
    if (infer_at >= 0) {
      require(known > 0 && total % known == 0, "cannot reshape " + shape_to_string(x) + " to the target");
      out[infer_at] = total / known;
    }
    require(shape_numel(out) == total, "cannot reshape " + shape_to_string(x) + " to " +
                                           shape_to_string(out));
    return out;
  }
  if (kind == OpKind::Concat) {
    const Shape& first = input(0);
    const int axis = normalize_axis(std::get<AxisParams>(node.params).axis, int(first.size()), node);
    Shape out = first;
    out[axis] = 0;
    for (size_t i = 0; i < in.size(); ++i) {
      const Shape& s = input(i);
      require(s.size() == first.size(), "Concat inputs differ in rank");
      for (size_t d = 0; d < s.size(); ++d)
        require(int(d) == axis || s[d] == first[d], "Concat inputs " + shape_to_string(first) +
                                                        " and " + shape_to_string(s) + " differ off the axis");
      out[axis] += s[axis];
    }
    return out;
  }
  if (kind == OpKind::Softmax) {
    const Shape& x = input(0);
    normalize_axis(std::get<SoftmaxParams>(node.params).axis, int(x.size()), node);
    return x;
  }
  if (kind == OpKind::BatchNormalization) {
    const Shape& x = input(0);
    require(x.size() >= 2, "BatchNormalization needs (N,C,...)");
    for (size_t i = 1; i < 5; ++i)
      require(input(i) == Shape{x[1]}, "BatchNormalization parameter " + std::to_string(i) +
                                           " must have shape " + std::to_string(x[1]));
    return x;
  }
  if (kind == OpKind::LRN) {
    require(input(0).size() >= 3, "LRN needs (N,C,...)");
    return input(0);
  }
  // Relu, Dropout, Identity and unary elementwise ops keep the shape.
  return input(0);
}

}  // namespace

Shape infer_output_shape(const Node& node, const std::vector<const Shape*>& inputs) {
  try {
    return infer(node, inputs);
  } catch (const Error& e) {
    throw Error("node '" + node.name + "' (" + op_name(node.kind) + "): " + e.what());
  }
}

std::vector<Shape> infer_graph_shapes(const Graph& graph, const Shape& input_shape) {
  std::vector<Shape> shapes(graph.value_count());
  for (int v = 0; v < graph.value_count(); ++v)
    if (graph.value(v).is_constant()) shapes[v] = graph.value(v).constant->shape();
  shapes[graph.input()] = input_shape;
  std::vector<const Shape*> in;
  for (const Node& node : graph.nodes()) {
    in.clear();
    for (int id : node.inputs) in.push_back(id < 0 ? nullptr : &shapes[id]);
    shapes[node.outputs.at(0)] = infer_output_shape(node, in);
  }
  return shapes;
}

}  // namespace deepinside
