#include "viz/reconstruct.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "engine/error.h"
#include "viz/compare.h"

namespace deepinside::viz {

namespace {

// A window of rows (or columns) of one value, unclamped: a neuron near the border reaches into the
// padding, and that must not shrink what its neighbours upstream can see.
struct Span {
  int lo = 0, hi = -1;
};
struct Region {  // of a 4-D value; `whole` = every position
  bool whole = false;
  Span y, x;
};

Region merge(const std::optional<Region>& a, const Region& b) {
  if (!a) return b;
  if (a->whole || b.whole) return Region{true, {}, {}};
  return Region{false, {std::min(a->y.lo, b.y.lo), std::max(a->y.hi, b.y.hi)},
                {std::min(a->x.lo, b.x.lo), std::max(a->x.hi, b.x.hi)}};
}

// Input positions lo*s - pad .. hi*s - pad + (k-1)*d that outputs lo..hi of a window op read.
Span window_back(Span o, int stride, int pad, int kernel, int dilation) {
  return {o.lo * stride - pad, o.hi * stride - pad + (kernel - 1) * dilation};
}

bool spatial(const Shape& s) { return s.size() == 4; }

}  // namespace

Box receptive_field(const Graph& graph, const std::vector<Shape>& shapes, int value, int y, int x) {
  std::vector<std::optional<Region>> region(graph.value_count());
  region[value] = (y < 0 || !spatial(shapes[value])) ? Region{true, {}, {}} : Region{false, {y, y}, {x, x}};
  const auto& nodes = graph.nodes();
  for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
    const Node& node = *it;
    const int out = node.outputs[0];
    if (!region[out]) continue;
    const Region r = *region[out];
    for (int in : node.inputs) {
      if (in < 0 || graph.value(in).is_constant()) continue;
      Region back{true, {}, {}};
      const bool same_plane = spatial(shapes[in]) && spatial(shapes[out]) && shapes[in][2] == shapes[out][2] &&
                              shapes[in][3] == shapes[out][3];
      if (!r.whole && spatial(shapes[in]) && spatial(shapes[out])) {
        if (node.kind == OpKind::Conv && in == node.inputs[0]) {
          const ConvGeometry g =
              conv_geometry(std::get<ConvParams>(node.params), shapes[in], shapes[node.inputs[1]]);
          back = Region{false, window_back(r.y, g.stride_h, g.pad_t, g.KH, g.dil_h),
                        window_back(r.x, g.stride_w, g.pad_l, g.KW, g.dil_w)};
        } else if (node.kind == OpKind::MaxPool || node.kind == OpKind::AveragePool) {
          const PoolGeometry g = pool_geometry(std::get<PoolParams>(node.params), shapes[in]);
          back = Region{false, window_back(r.y, g.stride_h, g.pad_t, g.KH, g.dil_h),
                        window_back(r.x, g.stride_w, g.pad_l, g.KW, g.dil_w)};
        } else if (same_plane && node.kind != OpKind::GlobalAveragePool && node.kind != OpKind::Reshape &&
                   node.kind != OpKind::Flatten && node.kind != OpKind::Softmax && node.kind != OpKind::MatMul) {
          // Position-wise ops (ReLU, LRN, BatchNorm, elementwise without spatial broadcasting, Concat
          // along channels: a Concat along rows or columns changes the plane and lands below).
          back = r;
        }
      }
      region[in] = merge(region[in], back);
    }
  }
  const Shape& s = shapes[graph.input()];
  const int H = int(s[2]), W = int(s[3]);
  const std::optional<Region>& at_input = region[graph.input()];
  if (!at_input || at_input->whole) return Box{0, 0, H - 1, W - 1};
  return Box{std::clamp(at_input->y.lo, 0, H - 1), std::clamp(at_input->x.lo, 0, W - 1),
             std::clamp(at_input->y.hi, 0, H - 1), std::clamp(at_input->x.hi, 0, W - 1)};
}

void check_reconstruct_layer(const Session& session, int layer) {
  const Graph& g = session.graph();
  require(layer >= 0 && layer < g.value_count(), "layer value id out of range");
  require(layer != g.input() && !g.value(layer).is_constant() && g.producer(layer) >= 0,
          "'" + g.value(layer).name + "' is not a layer computed from the input");
  const Shape& s = session.shape(layer);
  require((s.size() == 4 || s.size() == 2) && s[0] == 1,
          "layer '" + g.value(layer).name + "' has shape " + shape_to_string(s) +
              "; reconstructions need a 4-D (1,K,h,w) or 2-D (1,K) layer of one image");
}

Neuron find_neuron(const Session& session, int layer, int channel, int y, int x) {
  check_reconstruct_layer(session, layer);
  const Shape& s = session.shape(layer);
  const std::string name = "layer '" + session.graph().value(layer).name + "'";
  const int K = int(s[1]);
  require(channel >= 0 && channel < K, "channel " + std::to_string(channel) + " is out of range: " + name +
                                           " has " + std::to_string(K) + " channels (0.." + std::to_string(K - 1) +
                                           ")");
  const Tensor& a = session.value(layer);
  if (s.size() == 2) {
    require(y < 0 && x < 0, name + " is 2-D (" + shape_to_string(s) + "): it has no positions (--x, --y)");
    return Neuron{channel, -1, -1, a[channel]};
  }
  const int h = int(s[2]), w = int(s[3]);
  const float* plane = a.data() + int64_t(channel) * h * w;
  if (y < 0 && x < 0) {
    const int at = int(std::max_element(plane, plane + h * w) - plane);
    return Neuron{channel, at / w, at % w, plane[at]};
  }
  require(y >= 0 && y < h && x >= 0 && x < w,
          "position (x " + std::to_string(x) + ", y " + std::to_string(y) + ") is out of range: " + name + " is " +
              std::to_string(w) + " wide and " + std::to_string(h) + " high");
  return Neuron{channel, y, x, plane[int64_t(y) * w + x]};
}

std::vector<Neuron> top_neurons(const Session& session, int layer, int k) {
  check_reconstruct_layer(session, layer);
  const int K = int(session.shape(layer)[1]);
  require(k >= 1 && k <= K, "--top-k must be between 1 and the layer's " + std::to_string(K) + " channels");
  std::vector<Neuron> all;
  for (int c = 0; c < K; ++c) all.push_back(find_neuron(session, layer, c, -1, -1));
  std::stable_sort(all.begin(), all.end(), [](const Neuron& a, const Neuron& b) { return a.activation > b.activation; });
  all.resize(k);
  return all;
}

Reconstruction reconstruct(Session& session, int layer, const Neuron& neuron) {
  check_reconstruct_layer(session, layer);
  const Graph& g = session.graph();
  const Shape& s = session.shape(layer);
  Tensor seed(s);
  const int64_t at = s.size() == 2 ? neuron.channel
                                   : (int64_t(neuron.channel) * s[2] + neuron.y) * s[3] + neuron.x;
  seed[at] = 1.0f;

  Reconstruction r;
  r.neuron = neuron;
  std::vector<Shape> shapes(g.value_count());
  for (int v = 0; v < g.value_count(); ++v) shapes[v] = session.shape(v);
  r.receptive_field = receptive_field(g, shapes, layer, neuron.y, neuron.x);

  const Shape& in = session.input_shape();
  const int C = int(in[1]), H = int(in[2]), W = int(in[3]);
  for (size_t i = 0; i < kRules.size(); ++i) {
    r.images[i] = session.backward_input(layer, seed, kRules[i]).clone();
    r.images[i].reshape({C, H, W});
    double total = 0, outside = 0;
    for (int c = 0; c < C; ++c)
      for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) {
          const double v = r.images[i][(int64_t(c) * H + y) * W + x];
          total += v * v;
          if (!r.receptive_field.contains(y, x)) outside += v * v;
        }
    r.energy_outside[i] = total > 0 ? outside / total : std::nan("");
  }
  const int pairs[3][2] = {{0, 1}, {0, 2}, {1, 2}};
  for (int p = 0; p < 3; ++p) {
    const Tensor& a = r.images[pairs[p][0]];
    const Tensor& b = r.images[pairs[p][1]];
    r.pairs[p] = RulePair{pairs[p][0], pairs[p][1], pearson(a.data(), b.data(), a.numel()),
                          sign_agreement(a.data(), b.data(), a.numel())};
  }
  return r;
}

Image render_signed(const float* chw, int C, int H, int W, const Preprocessing& p) {
  const int64_t n = int64_t(C) * H * W;
  std::vector<float> mags(chw, chw + n);
  for (float& v : mags) v = std::fabs(v);
  const size_t at = std::min<size_t>(n - 1, size_t(std::floor(0.995 * double(n - 1))));
  std::nth_element(mags.begin(), mags.begin() + at, mags.end());
  float s = mags[at];
  if (!(s > 0)) s = *std::max_element(mags.begin(), mags.end());
  if (!(s > 0)) s = 1.0f;
  Image img{W, H, C, std::vector<uint8_t>(size_t(n))};
  for (int c = 0; c < C; ++c) {
    const int dst = (C == 3 && p.channel_order == ChannelOrder::bgr) ? 2 - c : c;
    for (int64_t i = 0; i < int64_t(H) * W; ++i) {
      const float v = std::clamp(0.5f + 0.5f * chw[c * int64_t(H) * W + i] / s, 0.0f, 1.0f);
      img.pixels[size_t(i) * C + dst] = uint8_t(std::lround(v * 255.0f));
    }
  }
  return img;
}

}  // namespace deepinside::viz
