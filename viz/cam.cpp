#include "viz/cam.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"
#include "engine/shape_inference.h"
#include "viz/layers.h"
#include "viz/saliency_extras.h"
#include "viz/scores.h"

namespace deepinside::viz {

namespace {

// The one input of `node` that is not a constant; -1 when there are several or none.
int single_variable_input(const Graph& g, const Node& node) {
  int found = -1;
  for (int in : node.inputs) {
    if (in < 0 || g.value(in).is_constant()) continue;
    if (found >= 0) return -1;
    found = in;
  }
  return found;
}

// Forward, then a gradient-rule backward pass seeded one-hot at the class. Returns the class.
int forward_and_backward(Session& session, const Model& model, const Tensor& input, int cls, CamResult& r) {
  require(input.rank() == 4 && input.dim(0) == 1, "CAM and Grad-CAM take one image (1,C,H,W)");
  if (cls >= 0) check_class_index(cls, model);
  session.forward(input);
  const std::vector<float> s = image_scores(session, model, 0);
  r.cls = class_or_top1(s, cls, model);
  r.score = s[r.cls];
  Tensor seed(session.shape(model.scores_value));
  seed[r.cls] = 1.0f;
  session.backward_input(model.scores_value, seed, BackwardRule::gradient);
  return r.cls;
}

void upsample_into(CamResult& r, const Model& model, int h, int w) {
  r.map = upsample_bilinear(r.low_res.data(), h, w, model.height, model.width);
}

}  // namespace

int cam_feature_layer(const Model& model) {
  const Graph& g = model.graph;
  int v = model.scores_value;
  for (;;) {
    const int p = g.producer(v);
    require(p >= 0, "CAM needs a global average pool before the scores, and the scores value '" +
                        g.value(model.scores_value).name + "' has none; use --method gradcam");
    const Node& node = g.nodes()[p];
    const std::string where = std::string(op_name(node.kind)) + " node '" + node.name + "'";
    if (node.kind == OpKind::GlobalAveragePool) return node.inputs[0];
    switch (node.kind) {
      case OpKind::Flatten: case OpKind::Reshape: case OpKind::Identity: case OpKind::Dropout:
        v = node.inputs[0];
        continue;
      case OpKind::Gemm: case OpKind::MatMul: case OpKind::Add: case OpKind::Sub: case OpKind::Mul: {
        const int in = single_variable_input(g, node);
        require(in >= 0, "CAM needs the scores to be a linear function of a global average pool, but the " + where +
                             " combines two computed values; use --method gradcam");
        v = in;
        continue;
      }
      case OpKind::Div:
        require(single_variable_input(g, node) == node.inputs[0],
                "CAM needs the scores to be a linear function of a global average pool, but the " + where +
                    " divides by a computed value; use --method gradcam");
        v = node.inputs[0];
        continue;
      default:
        throw Error("CAM needs a net whose scores are a linear function of a global average pool (like SqueezeNet); "
                    "between the scores and the pool there is the " + where + "; use --method gradcam");
    }
  }
}

int default_gradcam_layer(const Model& model) {
  // The last convolutional layer (Selvaraju et al.), as its rectified output when a ReLU reads it
  // alone; without any Conv, the last 4-D value with more than one position.
  const Graph& g = model.graph;
  const std::vector<bool> on_path = values_between_input_and(g, model.scores_value);
  const std::vector<Shape> shapes = infer_graph_shapes(g, {1, model.channels, model.height, model.width});
  const auto spatial = [&](int v) { return shapes[v].size() == 4 && shapes[v][2] * shapes[v][3] > 1; };
  const auto& nodes = g.nodes();
  for (int n = int(nodes.size()) - 1; n >= 0; --n) {
    const int v = nodes[n].outputs[0];
    if (nodes[n].kind != OpKind::Conv || !on_path[v] || !spatial(v)) continue;
    int readers = 0, relu = -1;
    for (const Node& m : nodes)
      for (int in : m.inputs)
        if (in == v) ++readers, relu = m.kind == OpKind::Relu ? m.outputs[0] : relu;
    return readers == 1 && relu >= 0 ? relu : v;
  }
  for (int n = int(nodes.size()) - 1; n >= 0; --n)
    if (on_path[nodes[n].outputs[0]] && spatial(nodes[n].outputs[0])) return nodes[n].outputs[0];
  throw Error("the model has no 4-D layer with more than one spatial position between the input and the scores");
}

void check_cam_layer(const Model& model, int layer) {
  const Graph& g = model.graph;
  require(layer >= 0 && layer < g.value_count(), "layer value id out of range");
  require(layer != g.input(), "'" + g.value(layer).name + "' is the network's input, not a layer computed from it");
  require(values_between_input_and(g, model.scores_value)[layer],
          "layer " + describe_value(g, layer) + " is not between the input and the scores '" +
              g.value(model.scores_value).name + "'");
  const Shape shape = infer_graph_shapes(g, {1, model.channels, model.height, model.width})[layer];
  require(shape.size() == 4, "layer " + describe_value(g, layer) + " has shape " + shape_to_string(shape) +
                                 "; CAM and Grad-CAM need a 4-D layer (N,K,h,w)");
}

Tensor upsample_bilinear(const float* src, int h, int w, int H, int W) {
  Tensor out(Shape{H, W});
  const auto source = [](int dst, int in, int outn, int& i0, int& i1, float& lambda) {
    const float scale = float(in) / float(outn);
    float s = (float(dst) + 0.5f) * scale - 0.5f;
    if (s < 0.0f) s = 0.0f;
    i0 = std::min(int(s), in - 1);
    i1 = std::min(i0 + 1, in - 1);
    lambda = s - float(i0);
  };
  for (int y = 0; y < H; ++y) {
    int y0, y1;
    float ly;
    source(y, h, H, y0, y1, ly);
    for (int x = 0; x < W; ++x) {
      int x0, x1;
      float lx;
      source(x, w, W, x0, x1, lx);
      const float top = (1.0f - lx) * src[y0 * w + x0] + lx * src[y0 * w + x1];
      const float bottom = (1.0f - lx) * src[y1 * w + x0] + lx * src[y1 * w + x1];
      out[int64_t(y) * W + x] = (1.0f - ly) * top + ly * bottom;
    }
  }
  return out;
}

CamResult class_activation_map(Session& session, const Model& model, const Tensor& input, int cls) {
  const int layer = cam_feature_layer(model);
  check_cam_layer(model, layer);
  CamResult r;
  r.layer = layer;
  forward_and_backward(session, model, input, cls, r);
  const Graph& g = model.graph;
  // The pool's output: w_ck = dS_c/dGAP_k, exact because the head after the pool is affine.
  int pooled = -1;
  for (const Node& node : g.nodes())
    if (node.kind == OpKind::GlobalAveragePool && node.inputs[0] == layer) pooled = node.outputs[0];
  const Tensor& a = session.value(layer);
  const int K = int(a.dim(1)), h = int(a.dim(2)), w = int(a.dim(3));
  const Tensor& dpool = session.gradient(pooled);
  r.weights = Tensor(Shape{K});
  r.low_res = Tensor(Shape{h, w});
  for (int k = 0; k < K; ++k) {
    r.weights[k] = dpool[k];
    if (dpool[k] == 0.0f) continue;
    for (int i = 0; i < h * w; ++i) r.low_res[i] += dpool[k] * a[int64_t(k) * h * w + i];
  }
  upsample_into(r, model, h, w);
  return r;
}

CamResult grad_cam(Session& session, const Model& model, const Tensor& input, int cls, int layer) {
  check_cam_layer(model, layer);
  CamResult r;
  r.layer = layer;
  forward_and_backward(session, model, input, cls, r);
  const Tensor& a = session.value(layer);
  const Tensor& da = session.gradient(layer);
  const int K = int(a.dim(1)), h = int(a.dim(2)), w = int(a.dim(3));
  r.weights = Tensor(Shape{K});
  std::vector<double> sum(size_t(h) * w, 0.0);
  for (int k = 0; k < K; ++k) {
    double alpha = 0.0;
    for (int i = 0; i < h * w; ++i) alpha += da[int64_t(k) * h * w + i];
    alpha /= double(h) * w;
    r.weights[k] = float(alpha);
    for (int i = 0; i < h * w; ++i) sum[i] += alpha * a[int64_t(k) * h * w + i];
  }
  r.low_res = Tensor(Shape{h, w});
  for (int i = 0; i < h * w; ++i) r.low_res[i] = float(std::max(sum[i], 0.0));
  upsample_into(r, model, h, w);
  return r;
}

CamResult guided_grad_cam(Session& session, const Model& model, const Tensor& input, int cls, int layer) {
  CamResult r = grad_cam(session, model, input, cls, layer);
  // Guided backpropagation from the same forward pass.
  Tensor seed(session.shape(model.scores_value));
  seed[r.cls] = 1.0f;
  const Tensor& guided = session.backward_input(model.scores_value, seed, BackwardRule::guided);
  const int C = model.channels, HW = model.height * model.width;
  r.guided = Tensor(Shape{C, model.height, model.width});
  for (int c = 0; c < C; ++c)
    for (int i = 0; i < HW; ++i) r.guided[int64_t(c) * HW + i] = guided[int64_t(c) * HW + i] * r.map[i];
  r.guided_map = max_abs_map(r.guided.data(), C, model.height, model.width);
  return r;
}

}  // namespace deepinside::viz
