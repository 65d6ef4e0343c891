#include "engine/zoo.h"

#include <cmath>
#include <random>

#include "engine/error.h"
#include "engine/op_params.h"

namespace deepinside {

namespace {

// Appends layers to a Graph while tracking the activation shape (C,H,W) of one image.
class NetBuilder {
 public:
  NetBuilder(int height, int width, uint64_t seed) : rng_(seed) {
    input_ = graph_.add_value("data", Shape{-1, 3, height, width});
    current_ = input_;
    shape_ = {1, 3, height, width};
  }

  void conv(const std::string& name, int filters, int kernel, int stride, int pad) {
    ConvParams p;
    p.window.kernel = {kernel, kernel};
    p.window.stride = {stride, stride};
    p.window.pads = {pad, pad, pad, pad};
    const Shape w_shape{filters, shape_[1], kernel, kernel};
    const int64_t fan_in = shape_[1] * kernel * kernel;
    const int w = graph_.add_constant(name + "_w", he_normal(w_shape, fan_in, 2.0));
    const int b = graph_.add_constant(name + "_b", small_bias(filters));
    const ConvGeometry g = conv_geometry(p, shape_, w_shape);
    shape_ = {1, g.M, g.OH, g.OW};
    add(name, OpKind::Conv, p, {current_, w, b});
  }

  void relu(const std::string& name) { add(name, OpKind::Relu, std::monostate{}, {current_}); }

  void lrn(const std::string& name, int size, float alpha, float beta, float bias) {
    add(name, OpKind::LRN, LrnParams{size, alpha, beta, bias}, {current_});
  }

  void maxpool(const std::string& name, int kernel, int stride) {
    PoolParams p;
    p.window.kernel = {kernel, kernel};
    p.window.stride = {stride, stride};
    const PoolGeometry g = pool_geometry(p, shape_);
    shape_ = {1, shape_[1], g.OH, g.OW};
    add(name, OpKind::MaxPool, p, {current_});
  }

  void flatten(const std::string& name) {
    add(name, OpKind::Flatten, AxisParams{1}, {current_});
    shape_ = {1, shape_numel(shape_)};
  }

  // y = x W^T + b with W (out, in): ONNX Gemm with transB = 1, as PyTorch's Linear exports.
  void fc(const std::string& name, int out, double gain = 2.0) {
    const int64_t in = shape_[1];
    const int w = graph_.add_constant(name + "_w", he_normal(Shape{out, in}, in, gain));
    const int b = graph_.add_constant(name + "_b", small_bias(out));
    GemmParams p;
    p.trans_b = true;
    add(name, OpKind::Gemm, p, {current_, w, b});
    shape_ = {1, out};
  }

  Graph finish() {
    // The scores keep a fixed name: the input of the final Softmax (the engine's default).
    const int scores = current_;
    graph_.value(scores).name = "scores";
    add("prob", OpKind::Softmax, SoftmaxParams{1, false}, {current_});
    graph_.value(current_).name = "prob";
    graph_.finalize(input_, {current_});
    return std::move(graph_);
  }

 private:
  void add(const std::string& name, OpKind kind, OpParams params, std::vector<int> inputs) {
    const int out = graph_.add_value(name + "_out");
    graph_.add_node(Node{name, kind, std::move(params), std::move(inputs), {out}});
    current_ = out;
  }

  // N(0, gain / fan_in): He et al. 2015 for layers followed by a rectifier (gain 2).
  Tensor he_normal(const Shape& shape, int64_t fan_in, double gain) {
    Tensor t(shape);
    std::normal_distribution<float> d(0.0f, float(std::sqrt(gain / double(fan_in))));
    for (int64_t i = 0; i < t.numel(); ++i) t[i] = d(rng_);
    return t;
  }

  Tensor small_bias(int n) {
    Tensor t(Shape{n});
    std::uniform_real_distribution<float> d(-0.05f, 0.05f);
    for (int64_t i = 0; i < n; ++i) t[i] = d(rng_);
    return t;
  }

  Graph graph_;
  std::mt19937_64 rng_;
  int input_ = -1, current_ = -1;
  Shape shape_;
};

Graph simonyan13(const ZooOptions& o) {
  NetBuilder b(o.height, o.width, o.seed);
  b.conv("conv1", 64, 7, 2, 0);
  b.relu("relu1");
  b.lrn("norm1", 5, 1e-4f, 0.75f, 2.0f);
  b.maxpool("pool1", 3, 2);
  b.conv("conv2", 256, 5, 2, 1);
  b.relu("relu2");
  b.lrn("norm2", 5, 1e-4f, 0.75f, 2.0f);
  b.maxpool("pool2", 3, 2);
  for (int i = 3; i <= 5; ++i) {
    b.conv("conv" + std::to_string(i), 256, 3, 1, 1);
    b.relu("relu" + std::to_string(i));
  }
  b.maxpool("pool5", 3, 2);
  b.flatten("flatten");
  b.fc("fc6", 4096);
  b.relu("relu6");
  b.fc("fc7", 4096);
  b.relu("relu7");
  b.fc("fc8", o.classes, 1.0);
  return b.finish();
}

Graph alexnet(const ZooOptions& o) {  // torchvision.models.alexnet (dropout is identity in eval)
  NetBuilder b(o.height, o.width, o.seed);
  b.conv("conv1", 64, 11, 4, 2);
  b.relu("relu1");
  b.maxpool("pool1", 3, 2);
  b.conv("conv2", 192, 5, 1, 2);
  b.relu("relu2");
  b.maxpool("pool2", 3, 2);
  b.conv("conv3", 384, 3, 1, 1);
  b.relu("relu3");
  b.conv("conv4", 256, 3, 1, 1);
  b.relu("relu4");
  b.conv("conv5", 256, 3, 1, 1);
  b.relu("relu5");
  b.maxpool("pool5", 3, 2);
  b.flatten("flatten");
  b.fc("fc6", 4096);
  b.relu("relu6");
  b.fc("fc7", 4096);
  b.relu("relu7");
  b.fc("fc8", o.classes, 1.0);
  return b.finish();
}

Graph vgg16(const ZooOptions& o) {  // torchvision.models.vgg16, configuration D
  NetBuilder b(o.height, o.width, o.seed);
  const int blocks[5][2] = {{64, 2}, {128, 2}, {256, 3}, {512, 3}, {512, 3}};
  for (int s = 0; s < 5; ++s) {
    for (int i = 1; i <= blocks[s][1]; ++i) {
      const std::string id = std::to_string(s + 1) + "_" + std::to_string(i);
      b.conv("conv" + id, blocks[s][0], 3, 1, 1);
      b.relu("relu" + id);
    }
    b.maxpool("pool" + std::to_string(s + 1), 2, 2);
  }
  b.flatten("flatten");
  b.fc("fc6", 4096);
  b.relu("relu6");
  b.fc("fc7", 4096);
  b.relu("relu7");
  b.fc("fc8", o.classes, 1.0);
  return b.finish();
}

}  // namespace

const std::vector<std::string>& zoo_names() {
  static const std::vector<std::string> names{"simonyan13", "alexnet", "vgg16"};
  return names;
}

bool is_zoo_name(const std::string& name) {
  for (const std::string& n : zoo_names())
    if (n == name) return true;
  return false;
}

std::string zoo_summary(const std::string& name) {
  if (name == "simonyan13")
    return "Simonyan et al. 2013: conv64-conv256-conv256-conv256-conv256-full4096-full4096-full1000 (LRN after conv1, conv2)";
  if (name == "alexnet") return "AlexNet (torchvision, no LRN): conv64-conv192-conv384-conv256-conv256-full4096-full4096-full1000";
  if (name == "vgg16") return "VGG-16 (configuration D): 13 conv3x3 layers (64..512) + full4096-full4096-full1000";
  return "";
}

Graph zoo_graph(const std::string& name, const ZooOptions& options) {
  require(options.height > 0 && options.width > 0 && options.classes > 0, "zoo: sizes must be positive");
  if (name == "simonyan13") return simonyan13(options);
  if (name == "alexnet") return alexnet(options);
  if (name == "vgg16") return vgg16(options);
  throw Error("unknown zoo net '" + name + "' (known: simonyan13, alexnet, vgg16)");
}

}  // namespace deepinside
