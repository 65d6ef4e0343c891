#pragma once
// Layer-wise relevance propagation (Bach et al. 2015; Montavon et al. 2017, 2019): the class score
// S_c is put on the score value and redistributed down to the input, node by node in reverse
// topological order, so that every layer's relevance is (almost) conserved. docs/lrp.md.
//
// Built from the session's forward values and the backend's per-node forward and backward_input
// (DESIGN.md Sec. 3): for a linear layer z = W x + b, sum_j w_ij s_j is the layer's input gradient
// for the seed s, so every rule is "divide by a denominator, back-propagate through the (possibly
// modified) layer, multiply by the input". Nothing in the model is modified: the z+ rule's W+ and
// W- live in buffers of their own, refilled from the graph's weights at every pass.
#include <list>
#include <string>
#include <vector>

#include "engine/model.h"
#include "engine/session.h"

namespace deepinside::viz {

enum class LrpRule {
  epsilon,  // R_i = sum_j x_i w_ij / (z_j + eps sign(z_j)) R_j,   z_j = sum_i x_i w_ij + b_j
  zplus,    // alpha1-beta0: R_i = sum_j (x_i w_ij)^+ / sum_i' (x_i' w_i'j)^+ R_j (no bias);
            // = the z+ rule x_i w+_ij / sum_i' x_i' w+_i'j where x >= 0
};

const char* lrp_rule_name(LrpRule rule);
LrpRule parse_lrp_rule(const std::string& name);  // "epsilon" | "zplus"; throws Error otherwise

struct LrpOptions {
  LrpRule rule = LrpRule::epsilon;
  // The epsilon rule's stabiliser, in the units of the layer outputs: s_j = R_j / (z_j + eps sign z_j)
  // with sign(0) = +1. eps = 0 is LRP-0 (s_j = 0 where z_j = 0); larger values absorb the relevance
  // of weak, contradictory contributions (docs/lrp.md: 100 for SqueezeNet's 0..255 inputs).
  float epsilon = 0.01f;
  // When both are set (one value per input channel, low <= every input value <= high): the linear
  // layers that read the graph input directly use the z^B rule (Montavon et al. 2017) instead:
  // R_i = sum_j (x_i w_ij - l_i w+_ij - h_i w-_ij) / sum_i' (same) R_j.
  std::vector<float> input_low, input_high;
};

// What one node does with the relevance of its output (docs/lrp.md, "Layer by layer").
enum class LrpStep {
  linear,       // Conv, Gemm, MatMul, BatchNormalization, AveragePool, GlobalAveragePool: the rule
  sum,          // Add / Sub / Sum of activations: split in proportion to the contributions
  affine,       // Add / Sub / Mul / Div of one activation and constants: epsilon as a 1-input linear
                // layer, z+ keeps the relevance as it is (a bias or a scale has nothing to share)
  pass,         // Relu, LRN, Clip: the relevance passes unchanged (identity rule)
  route,        // MaxPool (winner-take-all through the switches), Concat, Flatten, Reshape, Dropout,
                // Identity: relevance goes where the values came from (the op's own backward)
};
const char* lrp_step_name(LrpStep step);

// Relevance propagation from one value down to the input of a session's graph. Plans once (the path,
// the relevance buffers, scratch); each propagate() then needs a forward pass of the session first.
class Lrp {
 public:
  // Throws Error naming the first node between the input and `top` that LRP has no rule for
  // (Softmax, Sigmoid, products of activations, ...).
  Lrp(Session& session, int top);

  Lrp(const Lrp&) = delete;
  Lrp& operator=(const Lrp&) = delete;

  // R_top (the shape of the top value) -> relevance of every input element (the input's shape).
  const Tensor& propagate(const Tensor& r_top, const LrpOptions& options);

  // After propagate: the relevance of any value on the path (activations between input and top).
  const Tensor& relevance(int value_id) const;
  // Node indices (graph().nodes()) in the order propagate visits them (top first), with their steps.
  const std::vector<int>& nodes() const { return order_; }
  LrpStep step(int node_index) const;
  const Session& session() const { return session_; }
  int top() const { return top_; }

 private:
  struct Plan {
    int node = -1;
    LrpStep step = LrpStep::pass;
    int act = 0;               // linear, affine: the input that carries relevance
    int weight = -1;           // linear: the constant operand holding the weights (-1: pooling, weights >= 0)
    int bias = -1;             // linear: Conv's B or Gemm's C (-1: none)
    bool batchnorm = false;    // linear: BatchNormalization (weights = scale; bias = B and the mean)
    bool reads_input = false;  // linear: its activation is the graph input (the z^B rule may apply)
    float weight_sign = 1.0f;  // linear: sign of Gemm's alpha (the effective weight is alpha * B)
    std::vector<float> signs;  // sum: +1 / -1 per activation input (Sub's second), 0 for constants
  };
  struct NodeWeights {
    Tensor plus, minus;  // the weight operand's positive / negative part (of the effective weight)
    Tensor zeros;        // BatchNormalization: zero mean and bias
  };

  void linear_epsilon(const Plan& p, float eps);
  void linear_zplus(const Plan& p);
  void linear_zb(const Plan& p, const LrpOptions& o);
  void sum_rule(const Plan& p, const LrpOptions& o);
  void affine_rule(const Plan& p, const LrpOptions& o);
  void refresh_weights(const Plan& p);
  // Forward / backward_input of a linear node with its activation replaced by x and its weights by
  // one variant (0: the model's, 1: W+, 2: W-); variants 1 and 2 and `no_bias` drop the bias.
  void variant_inputs(const Plan& p, const Tensor* x, int variant, bool no_bias);
  void forward_variant(const Plan& p, const Tensor& x, int variant, bool no_bias, Tensor& out);
  void backward_variant(const Plan& p, int variant, const Tensor& seed, Tensor& grad);
  Tensor& scratch(const Shape& shape, int slot);

  Session& session_;
  int top_;
  std::vector<Plan> plans_;  // indexed like order_
  std::vector<int> order_;
  std::vector<int> plan_of_node_;
  std::vector<Tensor> rel_;  // per value id, for values on the path
  std::vector<NodeWeights> weights_;  // per plan
  std::list<std::pair<std::pair<Shape, int>, Tensor>> scratch_;  // a list: references stay valid
  std::vector<const Tensor*> ins_;
  NodeSaved no_saved_;
  bool done_ = false;
};

struct LrpResult {
  std::vector<int> classes;           // the class explained for each image
  std::vector<float> scores;          // its score S_c = the relevance put on the score value
  Tensor relevance;                   // (N,C,H,W) relevance of every input element
  Tensor map;                         // (N,H,W) sum over the channels (signed): the heat map
  std::vector<double> relevance_sum;  // per image: sum of the input relevance
  std::vector<double> conservation;   // per image: relevance_sum / S_c
};

// One forward and one relevance pass for a batch: R = S_c at each image's class on
// model.scores_value (zero at every other class). classes[n] = -1 picks image n's top-1.
LrpResult compute_lrp(Session& session, const Model& model, const Tensor& batch, const std::vector<int>& classes,
                      const LrpOptions& options);
// The same with an Lrp planned on (session, model.scores_value), whose intermediate relevances stay
// readable afterwards.
LrpResult compute_lrp(Lrp& lrp, Session& session, const Model& model, const Tensor& batch,
                      const std::vector<int>& classes, const LrpOptions& options);

// (N,C,H,W) -> (N,H,W): the sum over channels.
Tensor relevance_map(const Tensor& relevance);
// Per image (first axis) sums in double.
std::vector<double> per_image_sums(const Tensor& t);

}  // namespace deepinside::viz
