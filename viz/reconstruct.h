#pragma once
// Reconstructions (paper Sec. 4, docs/reconstructions.md): one neuron of any layer back-projected to
// the input under the three rectifier rules (gradient, DeconvNet, guided backpropagation), and numbers
// that compare them. A neuron's reconstruction under every rule is one backward_input pass seeded
// one-hot at the neuron, from the same forward pass.
#include <array>
#include <vector>

#include "engine/image.h"
#include "engine/model.h"
#include "engine/session.h"

namespace deepinside::viz {

inline constexpr std::array<BackwardRule, 3> kRules = {BackwardRule::gradient, BackwardRule::deconvnet,
                                                       BackwardRule::guided};

// A neuron of a layer value: (channel, y, x) of a 4-D value (1,K,h,w), or unit `channel` of a 2-D value
// (1,K) (y = x = -1).
struct Neuron {
  int channel = 0, y = -1, x = -1;
  float activation = 0.0f;  // its value after the forward pass
};

// Rows y0..y1 and columns x0..x1 (inclusive) of the input, clamped to the image.
struct Box {
  int y0 = 0, x0 = 0, y1 = -1, x1 = -1;
  bool contains(int y, int x) const { return y >= y0 && y <= y1 && x >= x0 && x <= x1; }
};

// The input pixels a neuron at (y, x) of `value` can depend on, from the conv and pooling geometry
// (kernel, stride, dilation, padding) of every path between the input and the value; y < 0 means the
// whole value. Ops that mix positions (global pooling, Flatten, Gemm, ...) make it the whole image.
Box receptive_field(const Graph& graph, const std::vector<Shape>& shapes, int value, int y, int x);

// Throws Error unless `layer` depends on the input and is 2-D (1,K) or 4-D (1,K,h,w).
void check_reconstruct_layer(const Session& session, int layer);
// The neuron (channel, y, x) after a forward pass; y and x = -1 pick the channel's largest activation
// (first in scan order). Throws Error naming the range when an index is out of it.
Neuron find_neuron(const Session& session, int layer, int channel, int y, int x);
// The k channels whose largest activation is highest, each at that position (one neuron per channel),
// strongest first.
std::vector<Neuron> top_neurons(const Session& session, int layer, int k);

struct RulePair {
  int a = 0, b = 0;                   // indices into kRules
  double pearson = 0;                 // over the C*H*W input elements
  double sign_agreement = 0;          // where both are nonzero, the fraction of equal signs
};

struct Reconstruction {
  Neuron neuron;
  Box receptive_field;
  std::array<Tensor, 3> images;          // (C,H,W) d(neuron)/d(input) under each of kRules
  std::array<double, 3> energy_outside;  // sum of r^2 outside the receptive field / sum of r^2
  std::array<RulePair, 3> pairs;         // (gradient, deconvnet), (gradient, guided), (deconvnet, guided)
};

// session: planned for (1,C,H,W) and forward already run. Three backward passes seeded at the neuron.
Reconstruction reconstruct(Session& session, int layer, const Neuron& neuron);

// A signed back-projection (C,H,W) in the model's channel order as an RGB (or grey) picture: 0 is mid
// grey, +-s is white/black with s the 99.5th percentile of |r| (clipped beyond).
Image render_signed(const float* chw, int channels, int height, int width, const Preprocessing& p);

}  // namespace deepinside::viz
