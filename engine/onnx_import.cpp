#include "engine/onnx_import.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <onnx/onnx_pb.h>

#include "engine/error.h"

namespace deepinside {

namespace {

constexpr int kMinOpset = 7, kMaxOpset = 17;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  require(bool(in), "cannot open model '" + path + "'");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  require(!in.bad(), "cannot read model '" + path + "'");
  return buffer.str();
}

// A TensorProto's elements as doubles, whatever its numeric type (float, double, ints).
std::vector<double> tensor_elements(const onnx::TensorProto& t, const std::string& what) {
  require(t.data_location() != onnx::TensorProto::EXTERNAL,
          what + " keeps its data in an external file, which deepinside does not read");
  // Dimensions are checked before use so that a hostile shape cannot overflow or ask for memory
  // that the data does not back.
  int64_t count = 1;
  for (int64_t d : t.dims()) {
    require(d >= 0, what + " has a negative dimension");
    require(d == 0 || count <= (int64_t(1) << 40) / d, what + " has an absurdly large shape");
    count *= d;
  }
  std::vector<double> out;
  const std::string& raw = t.raw_data();
  auto from_raw = [&](auto sample) {
    using T = decltype(sample);
    require(raw.size() == size_t(count) * sizeof(T),
            what + " has " + std::to_string(raw.size()) + " bytes of data for " + std::to_string(count) +
                " elements");
    for (int64_t i = 0; i < count; ++i) {
      T v;
      std::memcpy(&v, raw.data() + i * sizeof(T), sizeof(T));
      out.push_back(double(v));
    }
  };
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT:
      if (!raw.empty()) from_raw(float{});
      else for (float v : t.float_data()) out.push_back(v);
      break;
    case onnx::TensorProto::DOUBLE:
      if (!raw.empty()) from_raw(double{});
      else for (double v : t.double_data()) out.push_back(v);
      break;
    case onnx::TensorProto::INT64:
      if (!raw.empty()) from_raw(int64_t{});
      else for (int64_t v : t.int64_data()) out.push_back(double(v));
      break;
    case onnx::TensorProto::INT32:
      if (!raw.empty()) from_raw(int32_t{});
      else for (int32_t v : t.int32_data()) out.push_back(v);
      break;
    default:
      throw Error(what + " has ONNX data type " + std::to_string(t.data_type()) +
                  ", deepinside reads float, double, int32 and int64 tensors");
  }
  require(int64_t(out.size()) == count, what + " holds " + std::to_string(out.size()) +
                                            " elements, its shape says " + std::to_string(count));
  return out;
}

// Integer tensors (shapes, axes) may hold values such as INT64_MAX that no float represents, so
// only floating-point tensors are checked for NaN and Inf.
Tensor to_float_tensor(const onnx::TensorProto& t, const std::string& what) {
  const std::vector<double> values = tensor_elements(t, what);
  const bool check_finite = t.data_type() == onnx::TensorProto::FLOAT || t.data_type() == onnx::TensorProto::DOUBLE;
  Shape shape(t.dims().begin(), t.dims().end());
  Tensor out(shape);
  int64_t bad = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    out[int64_t(i)] = float(values[i]);
    if (check_finite && !std::isfinite(out[int64_t(i)])) ++bad;
  }
  require(bad == 0, what + " holds " + std::to_string(bad) +
                        " NaN or infinite values: the model's weights are corrupt");
  return out;
}

class Importer {
 public:
  explicit Importer(const onnx::ModelProto& model) : model_(model) {}

  Graph run() {
    for (const auto& op : model_.opset_import())
      if (op.domain().empty() || op.domain() == "ai.onnx") graph_.opset = int(op.version());
    require(graph_.opset >= kMinOpset && graph_.opset <= kMaxOpset,
            "the model uses ONNX opset " + std::to_string(graph_.opset) + "; deepinside reads opsets " +
                std::to_string(kMinOpset) + " to " + std::to_string(kMaxOpset));
    const onnx::GraphProto& g = model_.graph();
    for (const auto& init : g.initializer()) add_constant(init.name(), init);
    int input_id = -1;
    std::vector<std::string> data_inputs;
    for (const auto& in : g.input()) {
      if (graph_.find_value(in.name()) >= 0 || ints_.count(in.name())) continue;  // initializer listed as input
      Shape declared;
      for (const auto& d : in.type().tensor_type().shape().dim())
        declared.push_back(d.has_dim_value() ? d.dim_value() : -1);
      require(in.type().has_tensor_type() || !in.has_type(),
              "input '" + in.name() + "' is not a tensor (optional and sequence inputs are not supported)");
      const int elem_type = in.type().tensor_type().elem_type();
      require(elem_type == onnx::TensorProto::FLOAT || elem_type == onnx::TensorProto::UNDEFINED,
              "input '" + in.name() + "' has ONNX element type " + std::to_string(elem_type) +
                  "; deepinside feeds float32 images");
      input_id = graph_.add_value(in.name(), declared);
      data_inputs.push_back(in.name());
    }
    require(data_inputs.size() == 1, "the model has " + std::to_string(data_inputs.size()) +
                                         " data inputs; deepinside needs exactly one (the image)");
    for (int i = 0; i < g.node_size(); ++i) add_node(g.node(i), i);
    std::vector<int> outputs;
    for (const auto& out : g.output()) {
      if (dropped_outputs_.count(out.name())) continue;
      const int id = graph_.find_value(out.name());
      require(id >= 0, "graph output '" + out.name() + "' is not computed by any node");
      outputs.push_back(id);
    }
    graph_.finalize(input_id, outputs);
    return std::move(graph_);
  }

 private:
  void add_constant(const std::string& name, const onnx::TensorProto& t) {
    if (t.data_type() == onnx::TensorProto::INT64 || t.data_type() == onnx::TensorProto::INT32) {
      std::vector<int64_t> ints;
      for (double v : tensor_elements(t, "initializer '" + name + "'")) ints.push_back(int64_t(v));
      ints_[name] = ints;  // a float copy is kept below too, for integer tensors that feed arithmetic
    }
    graph_.add_constant(name, to_float_tensor(t, "initializer '" + name + "'"));
  }

  // Attribute lookup helpers.
  const onnx::AttributeProto* attr(const onnx::NodeProto& n, const char* name) {
    for (const auto& a : n.attribute())
      if (a.name() == name) return &a;
    return nullptr;
  }
  int64_t attr_int(const onnx::NodeProto& n, const char* name, int64_t fallback) {
    const auto* a = attr(n, name);
    return a ? a->i() : fallback;
  }
  float attr_float(const onnx::NodeProto& n, const char* name, float fallback) {
    const auto* a = attr(n, name);
    return a ? a->f() : fallback;
  }
  std::vector<int64_t> attr_ints(const onnx::NodeProto& n, const char* name) {
    const auto* a = attr(n, name);
    return a ? std::vector<int64_t>(a->ints().begin(), a->ints().end()) : std::vector<int64_t>{};
  }
  std::string attr_string(const onnx::NodeProto& n, const char* name, const std::string& fallback) {
    const auto* a = attr(n, name);
    return a ? a->s() : fallback;
  }

  std::string node_label(const onnx::NodeProto& n) const {
    return "node '" + current_name_ + "' (" + n.op_type() + ", opset " + std::to_string(graph_.opset) + ")";
  }

  Window2d window(const onnx::NodeProto& n) {
    Window2d w;
    const auto check2 = [&](const std::vector<int64_t>& v, const char* name) {
      require(v.empty() || v.size() == 2, node_label(n) + ": " + name +
                                              " has " + std::to_string(v.size()) +
                                              " entries; deepinside supports 2-D windows only");
    };
    const auto kernel = attr_ints(n, "kernel_shape"), strides = attr_ints(n, "strides"),
               dilations = attr_ints(n, "dilations"), pads = attr_ints(n, "pads");
    check2(kernel, "kernel_shape");
    check2(strides, "strides");
    check2(dilations, "dilations");
    require(pads.empty() || pads.size() == 4, node_label(n) + ": pads must have 4 entries for 2-D");
    if (!kernel.empty()) w.kernel = {int(kernel[0]), int(kernel[1])};
    if (!strides.empty()) w.stride = {int(strides[0]), int(strides[1])};
    if (!dilations.empty()) w.dilation = {int(dilations[0]), int(dilations[1])};
    // ONNX pads are [x1_begin, x2_begin, x1_end, x2_end] = {top, left, bottom, right}.
    if (!pads.empty()) w.pads = {int(pads[0]), int(pads[1]), int(pads[2]), int(pads[3])};
    for (int v : {w.stride[0], w.stride[1], w.dilation[0], w.dilation[1]})
      require(v >= 1, node_label(n) + ": strides and dilations must be >= 1");
    for (int v : w.pads) require(v >= 0, node_label(n) + ": pads must be >= 0");
    const std::string auto_pad = attr_string(n, "auto_pad", "NOTSET");
    if (auto_pad == "SAME_UPPER") w.auto_pad = AutoPad::same_upper;
    else if (auto_pad == "SAME_LOWER") w.auto_pad = AutoPad::same_lower;
    else if (auto_pad == "VALID") w.auto_pad = AutoPad::valid;
    else require(auto_pad == "NOTSET", node_label(n) + ": unknown auto_pad '" + auto_pad + "'");
    return w;
  }

  // An input that must be a constant integer list (Reshape's shape).
  std::vector<int64_t> const_ints(const onnx::NodeProto& n, int index, const char* what) {
    require(n.input_size() > index && ints_.count(n.input(index)),
            node_label(n) + ": " + what + " must be a constant int64 tensor");
    return ints_.at(n.input(index));
  }
  // An optional input that must be a constant scalar (Clip bounds, Pow exponent).
  bool const_scalar(const onnx::NodeProto& n, int index, const char* what, float& value) {
    if (n.input_size() <= index || n.input(index).empty()) return false;
    const int id = graph_.find_value(n.input(index));
    require(id >= 0 && graph_.value(id).is_constant() && graph_.value(id).constant->numel() == 1,
            node_label(n) + ": " + what + " must be a constant scalar");
    value = (*graph_.value(id).constant)[0];
    return true;
  }

  void add_node(const onnx::NodeProto& n, int index) {
    current_name_ = n.name().empty() ? n.op_type() + "_" + std::to_string(index) : n.name();
    require(n.domain().empty() || n.domain() == "ai.onnx",
            node_label(n) + ": operator domain '" + n.domain() + "' is not supported");
    const std::string& op = n.op_type();
    if (op == "Constant") return add_constant_node(n);

    Node node;
    node.name = current_name_;
    int data_inputs = n.input_size();  // how many inputs stay graph edges
    if (op == "Conv") {
      node.kind = OpKind::Conv;
      ConvParams p;
      p.window = window(n);
      p.group = int(attr_int(n, "group", 1));
      node.params = p;
    } else if (op == "Relu") {
      node.kind = OpKind::Relu;
    } else if (op == "MaxPool" || op == "AveragePool") {
      node.kind = op == "MaxPool" ? OpKind::MaxPool : OpKind::AveragePool;
      PoolParams p;
      p.window = window(n);
      require(p.window.kernel[0] > 0, node_label(n) + ": kernel_shape is required");
      p.ceil_mode = attr_int(n, "ceil_mode", 0) != 0;
      p.count_include_pad = attr_int(n, "count_include_pad", 0) != 0;
      require(attr_int(n, "storage_order", 0) == 0, node_label(n) + ": storage_order 1 is not supported");
      require(node.kind == OpKind::MaxPool || (p.window.dilation[0] == 1 && p.window.dilation[1] == 1),
              node_label(n) + ": dilated average pooling is not supported");
      node.params = p;
    } else if (op == "GlobalAveragePool") {
      node.kind = OpKind::GlobalAveragePool;
    } else if (op == "LRN") {
      node.kind = OpKind::LRN;
      LrnParams p;
      require(attr(n, "size"), node_label(n) + ": attribute 'size' is required");
      p.size = int(attr_int(n, "size", 5));
      p.alpha = attr_float(n, "alpha", 1e-4f);
      p.beta = attr_float(n, "beta", 0.75f);
      p.bias = attr_float(n, "bias", 1.0f);
      require(p.size >= 1, node_label(n) + ": size must be >= 1");
      node.params = p;
    } else if (op == "Gemm") {
      node.kind = OpKind::Gemm;
      GemmParams p;
      p.trans_a = attr_int(n, "transA", 0) != 0;
      p.trans_b = attr_int(n, "transB", 0) != 0;
      p.alpha = attr_float(n, "alpha", 1.0f);
      p.beta = attr_float(n, "beta", 1.0f);
      node.params = p;
    } else if (op == "MatMul") {
      node.kind = OpKind::MatMul;
    } else if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") {
      node.kind = op == "Add" ? OpKind::Add : op == "Sub" ? OpKind::Sub : op == "Mul" ? OpKind::Mul : OpKind::Div;
    } else if (op == "Max" || op == "Sum") {
      node.kind = op == "Max" ? OpKind::Max : OpKind::Sum;
    } else if (op == "Flatten") {
      node.kind = OpKind::Flatten;
      node.params = AxisParams{int(attr_int(n, "axis", 1))};
    } else if (op == "Reshape") {
      node.kind = OpKind::Reshape;
      node.params = ReshapeParams{const_ints(n, 1, "the target shape"), attr_int(n, "allowzero", 0) != 0};
      data_inputs = 1;
    } else if (op == "Concat") {
      node.kind = OpKind::Concat;
      require(attr(n, "axis"), node_label(n) + ": attribute 'axis' is required");
      node.params = AxisParams{int(attr_int(n, "axis", 1))};
    } else if (op == "Dropout") {
      node.kind = OpKind::Dropout;  // inference: identity; ratio and training_mode inputs ignored
      data_inputs = 1;
    } else if (op == "BatchNormalization") {
      node.kind = OpKind::BatchNormalization;
      require(attr_int(n, "training_mode", 0) == 0, node_label(n) + ": training_mode is not supported");
      require(n.input_size() == 5, node_label(n) + ": needs 5 inputs");
      node.params = BatchNormParams{attr_float(n, "epsilon", 1e-5f)};
    } else if (op == "Softmax") {
      node.kind = OpKind::Softmax;
      SoftmaxParams p;
      p.coerce_2d = graph_.opset < 13;
      p.axis = int(attr_int(n, "axis", p.coerce_2d ? 1 : -1));
      node.params = p;
    } else if (op == "Identity") {
      node.kind = OpKind::Identity;
    } else if (op == "Sigmoid" || op == "Tanh" || op == "Abs" || op == "Softplus" || op == "Sqrt" ||
               op == "Exp" || op == "Log" || op == "Neg") {
      static const std::map<std::string, OpKind> unary = {
          {"Sigmoid", OpKind::Sigmoid}, {"Tanh", OpKind::Tanh}, {"Abs", OpKind::Abs}, {"Softplus", OpKind::Softplus},
          {"Sqrt", OpKind::Sqrt}, {"Exp", OpKind::Exp}, {"Log", OpKind::Log}, {"Neg", OpKind::Neg}};
      node.kind = unary.at(op);
    } else if (op == "Clip") {
      node.kind = OpKind::Clip;
      UnaryParams p;
      if (graph_.opset < 11) {
        p.min = attr_float(n, "min", p.min);
        p.max = attr_float(n, "max", p.max);
      } else {
        const_scalar(n, 1, "min", p.min);
        const_scalar(n, 2, "max", p.max);
      }
      node.params = p;
      data_inputs = 1;
    } else if (op == "Pow") {
      node.kind = OpKind::Pow;
      UnaryParams p;
      require(const_scalar(n, 1, "the exponent", p.exponent), node_label(n) + ": needs an exponent");
      node.params = p;
      data_inputs = 1;
    } else {
      throw Error(node_label(n) + " is not supported by deepinside (supported ops: " + supported_list() + ")");
    }
    for (int i = 0; i < data_inputs && i < n.input_size(); ++i) {
      if (n.input(i).empty()) {
        node.inputs.push_back(-1);
        continue;
      }
      const int id = graph_.find_value(n.input(i));
      require(id >= 0, node_label(n) + " reads '" + n.input(i) + "', which is not defined before it");
      node.inputs.push_back(id);
    }
    require(!node.inputs.empty() && node.inputs[0] >= 0, node_label(n) + ": missing its first input");
    require(n.output_size() >= 1, node_label(n) + ": has no output");
    node.outputs.push_back(graph_.add_value(n.output(0)));
    // Extra outputs (MaxPool indices, Dropout mask, BatchNorm training statistics) are dropped;
    // a later node reading one fails with "not defined", naming it.
    for (int i = 1; i < n.output_size(); ++i)
      if (!n.output(i).empty()) dropped_outputs_.insert(n.output(i));
    graph_.add_node(std::move(node));
  }

  void add_constant_node(const onnx::NodeProto& n) {
    require(n.output_size() == 1, node_label(n) + ": needs one output");
    const std::string& name = n.output(0);
    if (const auto* a = attr(n, "value")) return add_constant(name, a->t());
    if (const auto* a = attr(n, "value_float")) {
      require(std::isfinite(a->f()), node_label(n) + ": the constant is NaN or infinite");
      return void(graph_.add_constant(name, scalar(a->f())));
    }
    if (const auto* a = attr(n, "value_int")) {
      ints_[name] = {a->i()};
      return void(graph_.add_constant(name, scalar(float(a->i()))));
    }
    if (const auto* a = attr(n, "value_ints")) {
      ints_[name] = std::vector<int64_t>(a->ints().begin(), a->ints().end());
      Tensor t(Shape{int64_t(a->ints_size())});
      for (int i = 0; i < a->ints_size(); ++i) t[i] = float(a->ints(i));
      return void(graph_.add_constant(name, std::move(t)));
    }
    if (const auto* a = attr(n, "value_floats")) {
      Tensor t(Shape{int64_t(a->floats_size())});
      for (int i = 0; i < a->floats_size(); ++i) {
        require(std::isfinite(a->floats(i)), node_label(n) + ": the constant holds NaN or infinite values");
        t[i] = a->floats(i);
      }
      return void(graph_.add_constant(name, std::move(t)));
    }
    throw Error(node_label(n) + ": only tensor, float and int constants are supported");
  }

  static Tensor scalar(float v) {
    Tensor t(Shape{});
    t[0] = v;
    return t;
  }

  static std::string supported_list() {
    std::string s;
    for (const auto& op : supported_onnx_ops()) s += (s.empty() ? "" : ", ") + op;
    return s;
  }

  const onnx::ModelProto& model_;
  Graph graph_;
  std::map<std::string, std::vector<int64_t>> ints_;
  std::set<std::string> dropped_outputs_;
  std::string current_name_;
};

}  // namespace

const std::vector<std::string>& supported_onnx_ops() {
  static const std::vector<std::string> ops = {
      "Abs", "Add", "AveragePool", "BatchNormalization", "Clip", "Concat", "Constant", "Conv", "Div", "Dropout",
      "Exp", "Flatten", "Gemm", "GlobalAveragePool", "Identity", "LRN", "Log", "MatMul", "Max", "MaxPool",
      "Mul", "Neg", "Pow", "Relu", "Reshape", "Sigmoid", "Softmax", "Softplus", "Sqrt", "Sub", "Sum", "Tanh"};
  return ops;
}

Graph import_onnx_bytes(const std::string& bytes, const std::string& source_name) {
  onnx::ModelProto model;
  require(!bytes.empty(), "model '" + source_name + "' is empty");
  require(model.ParseFromString(bytes),
          "model '" + source_name + "' is not a valid ONNX file (truncated or corrupt protobuf)");
  require(model.has_graph() && model.graph().node_size() > 0,
          "model '" + source_name + "' has no graph nodes (truncated or not an ONNX model)");
  try {
    return Importer(model).run();
  } catch (const Error& e) {
    throw Error("model '" + source_name + "': " + e.what());
  }
}

Graph import_onnx_file(const std::string& path) { return import_onnx_bytes(read_file(path), path); }

Tensor read_onnx_tensor_file(const std::string& path) {
  onnx::TensorProto t;
  require(t.ParseFromString(read_file(path)), "'" + path + "' is not a serialized ONNX tensor");
  const std::vector<double> values = tensor_elements(t, "tensor '" + path + "'");
  Tensor out(Shape(t.dims().begin(), t.dims().end()));
  for (size_t i = 0; i < values.size(); ++i) out[int64_t(i)] = float(values[i]);
  return out;
}

}  // namespace deepinside
