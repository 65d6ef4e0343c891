#include "engine/onnx_export.h"

#include <onnx/onnx_pb.h>

#include "engine/atomic_file.h"
#include "engine/error.h"

namespace deepinside {

namespace {

void set_ints(onnx::NodeProto& n, const char* name, std::initializer_list<int64_t> values) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
}
void set_int(onnx::NodeProto& n, const char* name, int64_t value) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}
void set_float(onnx::NodeProto& n, const char* name, float value) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(value);
}

void set_window(onnx::NodeProto& n, const Window2d& w, bool with_kernel) {
  require(w.auto_pad == AutoPad::notset, "export: auto_pad is not supported (node '" + n.name() + "')");
  if (with_kernel) set_ints(n, "kernel_shape", {w.kernel[0], w.kernel[1]});
  set_ints(n, "strides", {w.stride[0], w.stride[1]});
  set_ints(n, "pads", {w.pads[0], w.pads[1], w.pads[2], w.pads[3]});
  set_ints(n, "dilations", {w.dilation[0], w.dilation[1]});
}

void set_shape(onnx::ValueInfoProto& v, const Shape& shape) {
  auto* t = v.mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  auto* s = t->mutable_shape();
  for (int64_t d : shape) {
    auto* dim = s->add_dim();
    if (d < 0)
      dim->set_dim_param("N");
    else
      dim->set_dim_value(d);
  }
}

}  // namespace

std::string export_onnx_bytes(const Graph& graph, const std::string& model_name) {
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.set_producer_name("deepinside");
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(13);
  onnx::GraphProto* g = model.mutable_graph();
  g->set_name(model_name);

  for (int id = 0; id < graph.value_count(); ++id) {
    const Value& v = graph.value(id);
    if (!v.is_constant()) continue;
    onnx::TensorProto* t = g->add_initializer();
    t->set_name(v.name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : v.constant->shape()) t->add_dims(d);
    t->set_raw_data(reinterpret_cast<const char*>(v.constant->data()), sizeof(float) * v.constant->numel());
  }
  const Value& input = graph.value(graph.input());
  set_shape(*g->add_input(), input.declared_shape);
  g->mutable_input(0)->set_name(input.name);
  for (int out : graph.outputs()) {
    auto* o = g->add_output();
    o->set_name(graph.value(out).name);
    o->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  }

  for (const Node& node : graph.nodes()) {
    onnx::NodeProto* n = g->add_node();
    n->set_name(node.name);
    for (int in : node.inputs) n->add_input(in < 0 ? "" : graph.value(in).name);
    for (int out : node.outputs) n->add_output(graph.value(out).name);
    switch (node.kind) {
      case OpKind::Conv: {
        const auto& p = std::get<ConvParams>(node.params);
        n->set_op_type("Conv");
        set_window(*n, p.window, p.window.kernel[0] > 0);
        set_int(*n, "group", p.group);
        break;
      }
      case OpKind::MaxPool: case OpKind::AveragePool: {
        const auto& p = std::get<PoolParams>(node.params);
        n->set_op_type(node.kind == OpKind::MaxPool ? "MaxPool" : "AveragePool");
        set_window(*n, p.window, true);
        set_int(*n, "ceil_mode", p.ceil_mode ? 1 : 0);
        if (node.kind == OpKind::AveragePool) set_int(*n, "count_include_pad", p.count_include_pad ? 1 : 0);
        break;
      }
      case OpKind::LRN: {
        const auto& p = std::get<LrnParams>(node.params);
        n->set_op_type("LRN");
        set_int(*n, "size", p.size);
        set_float(*n, "alpha", p.alpha);
        set_float(*n, "beta", p.beta);
        set_float(*n, "bias", p.bias);
        break;
      }
      case OpKind::Gemm: {
        const auto& p = std::get<GemmParams>(node.params);
        n->set_op_type("Gemm");
        set_int(*n, "transA", p.trans_a ? 1 : 0);
        set_int(*n, "transB", p.trans_b ? 1 : 0);
        set_float(*n, "alpha", p.alpha);
        set_float(*n, "beta", p.beta);
        break;
      }
      case OpKind::Flatten: case OpKind::Concat:
        n->set_op_type(node.kind == OpKind::Flatten ? "Flatten" : "Concat");
        set_int(*n, "axis", std::get<AxisParams>(node.params).axis);
        break;
      case OpKind::Softmax: {
        const auto& p = std::get<SoftmaxParams>(node.params);
        require(!p.coerce_2d, "export: opset<13 Softmax is not supported (node '" + node.name + "')");
        n->set_op_type("Softmax");
        set_int(*n, "axis", p.axis);
        break;
      }
      case OpKind::Relu: n->set_op_type("Relu"); break;
      case OpKind::GlobalAveragePool: n->set_op_type("GlobalAveragePool"); break;
      case OpKind::Dropout: case OpKind::Identity: n->set_op_type("Identity"); break;
      default:
        throw Error(std::string("export: op ") + op_name(node.kind) + " (node '" + node.name +
                    "') is not supported by the ONNX writer");
    }
  }
  std::string bytes;
  require(model.SerializeToString(&bytes), "export: could not serialise model '" + model_name + "'");
  return bytes;
}

void write_onnx(const Graph& graph, const std::string& path, const std::string& model_name) {
  write_file_atomic(path, export_onnx_bytes(graph, model_name));
}

}  // namespace deepinside
