#include "viz/lrp.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"
#include "viz/scores.h"

namespace deepinside::viz {

namespace {

// R / (z + eps sign z), sign(0) = +1; 0 where the denominator is 0 (eps = 0 and z = 0).
inline float epsilon_ratio(float r, float z, float eps) {
  const float d = z + (z >= 0.0f ? eps : -eps);
  return d != 0.0f ? r / d : 0.0f;
}

void add_product(Tensor& acc, const Tensor& a, const Tensor& b) {  // acc += a * b
  for (int64_t i = 0; i < acc.numel(); ++i) acc[i] += a[i] * b[i];
}

std::string node_label(const Node& node) { return "node '" + node.name + "' (" + op_name(node.kind) + ")"; }

}  // namespace

const char* lrp_rule_name(LrpRule rule) { return rule == LrpRule::epsilon ? "epsilon" : "zplus"; }

LrpRule parse_lrp_rule(const std::string& name) {
  if (name == "epsilon") return LrpRule::epsilon;
  if (name == "zplus") return LrpRule::zplus;
  throw Error("unknown LRP rule '" + name + "' (use epsilon or zplus)");
}

const char* lrp_step_name(LrpStep step) {
  switch (step) {
    case LrpStep::linear: return "linear";
    case LrpStep::sum: return "sum";
    case LrpStep::affine: return "affine";
    case LrpStep::pass: return "pass";
    case LrpStep::route: return "route";
  }
  return "?";
}

Lrp::Lrp(Session& session, int top) : session_(session), top_(top) {
  const Graph& g = session.graph();
  require(top >= 0 && top < g.value_count(), "LRP: no such value (id " + std::to_string(top) + ")");
  require(top != g.input(), "LRP: the top value is the input itself");
  const auto& nodes = g.nodes();
  std::vector<bool> depends(g.value_count(), false);
  depends[g.input()] = true;
  for (const Node& node : nodes)
    for (int in : node.inputs)
      if (in >= 0 && depends[in]) depends[node.outputs[0]] = true;
  require(depends[top], "LRP: value '" + g.value(top).name + "' does not depend on the input");

  std::vector<bool> needed(g.value_count(), false);
  needed[top] = true;
  plan_of_node_.assign(nodes.size(), -1);
  const std::string where = " between the input and value '" + g.value(top).name + "'";
  for (int n = int(nodes.size()) - 1; n >= 0; --n) {
    const Node& node = nodes[n];
    if (!needed[node.outputs[0]] || !depends[node.outputs[0]]) continue;
    std::vector<int> acts;
    for (size_t i = 0; i < node.inputs.size(); ++i)
      if (node.inputs[i] >= 0 && depends[node.inputs[i]]) {
        acts.push_back(int(i));
        needed[node.inputs[i]] = true;
      }
    Plan p;
    p.node = n;
    const auto only_act = [&](int i) {
      require(acts.size() == 1 && acts[0] == i, "LRP: " + node_label(node) + where +
                                                    ": only its data input may depend on the image (weights must be constants)");
    };
    switch (node.kind) {
      case OpKind::Conv:
        only_act(0);
        p.step = LrpStep::linear;
        p.weight = 1;
        p.bias = node.inputs.size() > 2 && node.inputs[2] >= 0 ? 2 : -1;
        break;
      case OpKind::Gemm: case OpKind::MatMul:
        require(acts.size() == 1 && acts[0] < 2, "LRP: " + node_label(node) + where +
                                                     " multiplies two activations; LRP needs one of them constant");
        p.step = LrpStep::linear;
        p.act = acts[0];
        p.weight = 1 - acts[0];
        if (node.kind == OpKind::Gemm) {
          p.bias = node.inputs.size() > 2 && node.inputs[2] >= 0 ? 2 : -1;
          p.weight_sign = std::get<GemmParams>(node.params).alpha < 0 ? -1.0f : 1.0f;
        }
        break;
      case OpKind::BatchNormalization:
        only_act(0);
        p.step = LrpStep::linear;
        p.weight = 1;
        p.batchnorm = true;
        break;
      case OpKind::AveragePool: case OpKind::GlobalAveragePool:
        only_act(0);
        p.step = LrpStep::linear;
        break;
      case OpKind::Add: case OpKind::Sub: case OpKind::Sum:
        if (acts.size() >= 2) {
          p.step = LrpStep::sum;
          p.signs.assign(node.inputs.size(), 0.0f);
          for (int i : acts) p.signs[i] = (node.kind == OpKind::Sub && i == 1) ? -1.0f : 1.0f;
          for (int i : acts)
            require(session.shape(node.inputs[i]) == session.shape(node.outputs[0]),
                    "LRP: " + node_label(node) + where + " broadcasts one activation against another; "
                    "the sum rule needs them of one shape");
        } else {
          p.step = LrpStep::affine;
          p.act = acts[0];
        }
        break;
      case OpKind::Mul: case OpKind::Div:
        require(acts.size() == 1, "LRP: " + node_label(node) + where +
                                      " multiplies or divides two activations; LRP has no rule for that");
        require(node.kind == OpKind::Mul || acts[0] == 0,
                "LRP: " + node_label(node) + where + " divides by an activation; LRP has no rule for that");
        p.step = LrpStep::affine;
        p.act = acts[0];
        break;
      case OpKind::Relu: case OpKind::LRN: case OpKind::Clip:
        only_act(0);
        p.step = LrpStep::pass;
        break;
      case OpKind::MaxPool: case OpKind::Concat: case OpKind::Flatten: case OpKind::Reshape:
      case OpKind::Dropout: case OpKind::Identity: case OpKind::Max:
        p.step = LrpStep::route;
        break;
      case OpKind::Softmax:
        throw Error("LRP starts at the unnormalised class scores, below the Softmax: " + node_label(node) + where +
                    " (name the Softmax's input with --scores)");
      default:
        throw Error("LRP has no rule for " + node_label(node) + where +
                    " (rules exist for Conv, Gemm, MatMul, BatchNormalization, pooling, LRN, Relu, Clip, Add, Sub, "
                    "Sum, Mul/Div by constants, Concat, Flatten, Reshape, Dropout, Identity, Max)");
    }
    p.reads_input = p.step == LrpStep::linear && node.inputs[p.act] == g.input();
    plan_of_node_[n] = int(plans_.size());
    plans_.push_back(std::move(p));
    order_.push_back(n);
  }

  rel_.resize(g.value_count());
  for (int v = 0; v < g.value_count(); ++v)
    if (needed[v] && depends[v]) rel_[v] = Tensor(session.shape(v));
  weights_.resize(plans_.size());
}

LrpStep Lrp::step(int node_index) const {
  require(node_index >= 0 && node_index < int(plan_of_node_.size()) && plan_of_node_[node_index] >= 0,
          "LRP: node " + std::to_string(node_index) + " is not on the path");
  return plans_[plan_of_node_[node_index]].step;
}

const Tensor& Lrp::relevance(int value_id) const {
  require(done_, "LRP: relevance() needs a propagate() pass first");
  require(value_id >= 0 && value_id < int(rel_.size()) && !rel_[value_id].empty(),
          "LRP: value " + std::to_string(value_id) + " is not on the path from the input to the top value");
  return rel_[value_id];
}

Tensor& Lrp::scratch(const Shape& shape, int slot) {
  for (auto& [key, t] : scratch_)
    if (key.second == slot && key.first == shape) return t;
  scratch_.emplace_back(std::make_pair(shape, slot), Tensor(shape));
  return scratch_.back().second;
}

void Lrp::refresh_weights(const Plan& p) {
  if (p.weight < 0) return;
  const Node& node = session_.graph().nodes()[p.node];
  const Tensor& w = session_.value(node.inputs[p.weight]);
  NodeWeights& nw = weights_[&p - plans_.data()];
  if (nw.plus.shape() != w.shape() || nw.plus.empty()) {
    nw.plus = Tensor(w.shape());
    nw.minus = Tensor(w.shape());
    if (p.batchnorm) nw.zeros = Tensor(w.shape());
  }
  // The effective weight is weight_sign * w (Gemm's alpha); BatchNormalization's a_c = scale_c /
  // sqrt(var_c + eps) has the sign of its scale.
  for (int64_t i = 0; i < w.numel(); ++i) {
    const float e = p.weight_sign * w[i];
    nw.plus[i] = e > 0.0f ? w[i] : 0.0f;
    nw.minus[i] = e < 0.0f ? w[i] : 0.0f;
  }
}

void Lrp::variant_inputs(const Plan& p, const Tensor* x, int variant, bool no_bias) {
  const Node& node = session_.graph().nodes()[p.node];
  ins_.clear();
  for (int in : node.inputs) ins_.push_back(in < 0 ? nullptr : &session_.value(in));
  ins_[p.act] = x;
  if (variant != 0) {
    const NodeWeights& nw = weights_[&p - plans_.data()];
    ins_[p.weight] = variant == 1 ? &nw.plus : &nw.minus;
  }
  if (variant != 0 || no_bias) {
    if (p.batchnorm) {
      ins_[2] = &weights_[&p - plans_.data()].zeros;  // B = 0
      ins_[3] = &weights_[&p - plans_.data()].zeros;  // mean = 0: y = a_c x
    } else if (p.bias >= 0) {
      ins_[p.bias] = nullptr;
    }
  }
}

void Lrp::forward_variant(const Plan& p, const Tensor& x, int variant, bool no_bias, Tensor& out) {
  variant_inputs(p, &x, variant, no_bias);
  session_.backend().forward(session_.graph().nodes()[p.node], ins_, out, no_saved_);
}

void Lrp::backward_variant(const Plan& p, int variant, const Tensor& seed, Tensor& grad) {
  const Node& node = session_.graph().nodes()[p.node];
  variant_inputs(p, &session_.value(node.inputs[p.act]), variant, false);
  std::vector<Tensor*> grad_in(node.inputs.size(), nullptr);
  grad_in[p.act] = &grad;
  grad.fill(0.0f);
  session_.backend().backward_input(node, BackwardRule::gradient, ins_, session_.value(node.outputs[0]), seed, grad_in,
                                    session_.saved(p.node));
}

// epsilon: s = R / (z + eps sign z) with z the layer's own output (bias included); c = W^T s;
// R_in = x * c.
void Lrp::linear_epsilon(const Plan& p, float eps) {
  const Node& node = session_.graph().nodes()[p.node];
  const Tensor& x = session_.value(node.inputs[p.act]);
  const Tensor& z = session_.value(node.outputs[0]);
  const Tensor& r = rel_[node.outputs[0]];
  Tensor& s = scratch(z.shape(), 0);
  for (int64_t i = 0; i < z.numel(); ++i) s[i] = epsilon_ratio(r[i], z[i], eps);
  Tensor& c = scratch(x.shape(), 1);
  backward_variant(p, 0, s, c);
  add_product(rel_[node.inputs[p.act]], x, c);
}

// alpha1-beta0: (x_i w_ij)^+ = x+_i w+_ij + x-_i w-_ij, no bias. z = W+ x+ + W- x- (>= 0);
// s = R / z; R_in = x+ (W+^T s) + x- (W-^T s). Pooling has W- = 0.
void Lrp::linear_zplus(const Plan& p) {
  const Node& node = session_.graph().nodes()[p.node];
  const Tensor& x = session_.value(node.inputs[p.act]);
  const Tensor& r = rel_[node.outputs[0]];
  Tensor& xp = scratch(x.shape(), 2);
  Tensor& xn = scratch(x.shape(), 3);
  bool any_negative = false;
  for (int64_t i = 0; i < x.numel(); ++i) {
    xp[i] = std::max(x[i], 0.0f);
    xn[i] = std::min(x[i], 0.0f);
    any_negative = any_negative || x[i] < 0.0f;
  }
  const bool negative_part = any_negative && p.weight >= 0;
  const Shape& out_shape = session_.shape(node.outputs[0]);
  Tensor& z = scratch(out_shape, 0);
  forward_variant(p, xp, p.weight >= 0 ? 1 : 0, true, z);
  if (negative_part) {
    Tensor& zn = scratch(out_shape, 4);
    forward_variant(p, xn, 2, true, zn);
    for (int64_t i = 0; i < z.numel(); ++i) z[i] += zn[i];
  }
  Tensor& s = z;  // in place: z is not needed once s is formed
  for (int64_t i = 0; i < z.numel(); ++i) s[i] = z[i] > 0.0f ? r[i] / z[i] : 0.0f;
  Tensor& c = scratch(x.shape(), 1);
  Tensor& r_in = rel_[node.inputs[p.act]];
  backward_variant(p, p.weight >= 0 ? 1 : 0, s, c);
  add_product(r_in, xp, c);
  if (negative_part) {
    backward_variant(p, 2, s, c);
    add_product(r_in, xn, c);
  }
}

// z^B (the first layer, inputs bounded by l <= x <= h): z = W x - W+ l - W- h (no bias, >= 0);
// s = R / z; R_in = x (W^T s) - l (W+^T s) - h (W-^T s).
void Lrp::linear_zb(const Plan& p, const LrpOptions& o) {
  const Node& node = session_.graph().nodes()[p.node];
  const Tensor& x = session_.value(node.inputs[p.act]);
  const Tensor& r = rel_[node.outputs[0]];
  const int64_t N = x.dim(0), C = x.dim(1), inner = x.numel() / (N * C);
  require(int64_t(o.input_low.size()) == C && int64_t(o.input_high.size()) == C,
          "LRP z^B: " + std::to_string(o.input_low.size()) + " lower and " + std::to_string(o.input_high.size()) +
              " upper bounds given for an input with " + std::to_string(C) + " channels");
  Tensor& lo = scratch(x.shape(), 5);
  Tensor& hi = scratch(x.shape(), 6);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t ch = 0; ch < C; ++ch)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t k = (n * C + ch) * inner + i;
        lo[k] = o.input_low[ch];
        hi[k] = o.input_high[ch];
        require(lo[k] <= x[k] && x[k] <= hi[k],
                "LRP z^B: input value " + std::to_string(x[k]) + " in channel " + std::to_string(ch) +
                    " lies outside the bounds [" + std::to_string(lo[k]) + ", " + std::to_string(hi[k]) + "]");
      }
  const Shape& out_shape = session_.shape(node.outputs[0]);
  Tensor& z = scratch(out_shape, 0);
  Tensor& t = scratch(out_shape, 4);
  forward_variant(p, x, 0, true, z);
  forward_variant(p, lo, 1, true, t);
  for (int64_t i = 0; i < z.numel(); ++i) z[i] -= t[i];
  forward_variant(p, hi, 2, true, t);
  for (int64_t i = 0; i < z.numel(); ++i) z[i] -= t[i];
  Tensor& s = z;
  for (int64_t i = 0; i < z.numel(); ++i) s[i] = z[i] != 0.0f ? r[i] / z[i] : 0.0f;
  Tensor& c = scratch(x.shape(), 1);
  Tensor& r_in = rel_[node.inputs[p.act]];
  backward_variant(p, 0, s, c);
  add_product(r_in, x, c);
  backward_variant(p, 1, s, c);
  for (int64_t i = 0; i < c.numel(); ++i) r_in[i] -= lo[i] * c[i];
  backward_variant(p, 2, s, c);
  for (int64_t i = 0; i < c.numel(); ++i) r_in[i] -= hi[i] * c[i];
}

// Add / Sub / Sum of activations a_k with signs e_k (constants among the inputs act as a bias):
// epsilon: R_k = e_k a_k / (z + eps sign z) R; z+: R_k = (e_k a_k)^+ / sum_k' (e_k' a_k')^+ R.
void Lrp::sum_rule(const Plan& p, const LrpOptions& o) {
  const Node& node = session_.graph().nodes()[p.node];
  const Tensor& z = session_.value(node.outputs[0]);
  const Tensor& r = rel_[node.outputs[0]];
  Tensor& s = scratch(z.shape(), 0);
  if (o.rule == LrpRule::epsilon) {
    for (int64_t i = 0; i < z.numel(); ++i) s[i] = epsilon_ratio(r[i], z[i], o.epsilon);
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      if (p.signs[k] == 0.0f) continue;
      const Tensor& a = session_.value(node.inputs[k]);
      Tensor& rk = rel_[node.inputs[k]];
      for (int64_t i = 0; i < z.numel(); ++i) rk[i] += p.signs[k] * a[i] * s[i];
    }
    return;
  }
  s.fill(0.0f);  // s = sum_k (e_k a_k)^+, then R / s
  for (size_t k = 0; k < node.inputs.size(); ++k) {
    if (p.signs[k] == 0.0f) continue;
    const Tensor& a = session_.value(node.inputs[k]);
    for (int64_t i = 0; i < z.numel(); ++i) s[i] += std::max(p.signs[k] * a[i], 0.0f);
  }
  for (int64_t i = 0; i < z.numel(); ++i) s[i] = s[i] > 0.0f ? r[i] / s[i] : 0.0f;
  for (size_t k = 0; k < node.inputs.size(); ++k) {
    if (p.signs[k] == 0.0f) continue;
    const Tensor& a = session_.value(node.inputs[k]);
    Tensor& rk = rel_[node.inputs[k]];
    for (int64_t i = 0; i < z.numel(); ++i) rk[i] += std::max(p.signs[k] * a[i], 0.0f) * s[i];
  }
}

// One activation and constants (x - mean, x / std, x * scale, x + bias). epsilon: a one-input linear
// layer, R_in = x (dz/dx)^T (R / (z + eps sign z)); z+: the relevance as it is (z+ drops biases,
// and there is nothing to share between inputs).
void Lrp::affine_rule(const Plan& p, const LrpOptions& o) {
  const Node& node = session_.graph().nodes()[p.node];
  const int in = node.inputs[p.act], out = node.outputs[0];
  if (o.rule == LrpRule::zplus) {
    require(session_.shape(in) == session_.shape(out),
            "LRP z+: " + node_label(node) + " broadcasts its activation; the pass-through needs one shape");
    Tensor& r_in = rel_[in];
    const Tensor& r = rel_[out];
    for (int64_t i = 0; i < r.numel(); ++i) r_in[i] += r[i];
    return;
  }
  const Tensor& z = session_.value(out);
  const Tensor& r = rel_[out];
  Tensor& s = scratch(z.shape(), 0);
  for (int64_t i = 0; i < z.numel(); ++i) s[i] = epsilon_ratio(r[i], z[i], o.epsilon);
  const Tensor& x = session_.value(in);
  Tensor& c = scratch(x.shape(), 1);
  std::vector<Tensor*> grad_in(node.inputs.size(), nullptr);
  grad_in[p.act] = &c;
  c.fill(0.0f);
  ins_.clear();
  for (int v : node.inputs) ins_.push_back(v < 0 ? nullptr : &session_.value(v));
  session_.backend().backward_input(node, BackwardRule::gradient, ins_, z, s, grad_in, session_.saved(p.node));
  add_product(rel_[in], x, c);
}

const Tensor& Lrp::propagate(const Tensor& r_top, const LrpOptions& o) {
  const Graph& g = session_.graph();
  require(r_top.shape() == session_.shape(top_), "LRP: the relevance at the top has shape " +
                                                     shape_to_string(r_top.shape()) + ", value '" +
                                                     g.value(top_).name + "' has shape " +
                                                     shape_to_string(session_.shape(top_)));
  require(std::isfinite(o.epsilon) && o.epsilon >= 0.0f, "LRP: epsilon must be a number >= 0");
  const bool zb = !o.input_low.empty() || !o.input_high.empty();
  if (zb) {
    bool any = false;
    for (const Plan& p : plans_) any = any || (p.reads_input && p.weight >= 0);
    require(any, "LRP z^B: no Conv, Gemm, MatMul or BatchNormalization reads the input directly");
    for (size_t c = 0; c < std::min(o.input_low.size(), o.input_high.size()); ++c)
      require(o.input_low[c] <= o.input_high[c], "LRP z^B: a lower bound exceeds its upper bound");
  }
  for (Tensor& t : rel_)
    if (!t.empty()) t.fill(0.0f);
  std::copy(r_top.data(), r_top.data() + r_top.numel(), rel_[top_].data());

  const auto& nodes = g.nodes();
  for (const Plan& p : plans_) {
    const Node& node = nodes[p.node];
    const int out = node.outputs[0];
    switch (p.step) {
      case LrpStep::linear:
        if (zb && p.reads_input && p.weight >= 0) {
          refresh_weights(p);
          linear_zb(p, o);
        } else if (o.rule == LrpRule::zplus) {
          refresh_weights(p);
          linear_zplus(p);
        } else {
          linear_epsilon(p, o.epsilon);
        }
        break;
      case LrpStep::sum: sum_rule(p, o); break;
      case LrpStep::affine: affine_rule(p, o); break;
      case LrpStep::pass: {
        Tensor& r_in = rel_[node.inputs[0]];
        const Tensor& r = rel_[out];
        for (int64_t i = 0; i < r.numel(); ++i) r_in[i] += r[i];
        break;
      }
      case LrpStep::route: {
        ins_.clear();
        std::vector<Tensor*> grad_in;
        for (int in : node.inputs) {
          ins_.push_back(in < 0 ? nullptr : &session_.value(in));
          grad_in.push_back(in >= 0 && !rel_[in].empty() ? &rel_[in] : nullptr);
        }
        // The op's own backward adds into the relevance buffers: max-pool through its switches,
        // Concat / Flatten / Reshape / Dropout / Identity by moving elements back.
        session_.backend().backward_input(node, BackwardRule::gradient, ins_, session_.value(out), rel_[out], grad_in,
                                          session_.saved(p.node));
        break;
      }
    }
  }
  done_ = true;
  return rel_[g.input()];
}

Tensor relevance_map(const Tensor& r) {
  require(r.rank() == 4, "a relevance map needs a relevance tensor (N,C,H,W)");
  const int64_t N = r.dim(0), C = r.dim(1), HW = r.dim(2) * r.dim(3);
  Tensor map(Shape{N, r.dim(2), r.dim(3)});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < HW; ++i) map[n * HW + i] += r[(n * C + c) * HW + i];
  return map;
}

std::vector<double> per_image_sums(const Tensor& t) {
  const int64_t N = t.dim(0), per = t.numel() / N;
  std::vector<double> sums(N, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < per; ++i) sums[n] += double(t[n * per + i]);
  return sums;
}

LrpResult compute_lrp(Session& session, const Model& model, const Tensor& batch, const std::vector<int>& classes,
                      const LrpOptions& options) {
  Lrp lrp(session, model.scores_value);  // refuses nets without rules before anything runs
  return compute_lrp(lrp, session, model, batch, classes, options);
}

LrpResult compute_lrp(Lrp& lrp, Session& session, const Model& model, const Tensor& batch,
                      const std::vector<int>& classes, const LrpOptions& options) {
  const int N = int(batch.dim(0));
  require(int(classes.size()) == N, "one class per image is needed");
  require(&lrp.session() == &session && lrp.top() == model.scores_value,
          "LRP: the Lrp was planned for another session or value than the model's scores");
  session.forward(batch);
  LrpResult r;
  Tensor top(session.shape(model.scores_value));
  for (int n = 0; n < N; ++n) {
    const std::vector<float> s = image_scores(session, model, n);
    const int c = class_or_top1(s, classes[n], model);
    r.classes.push_back(c);
    r.scores.push_back(s[c]);
    top[int64_t(n) * model.classes + c] = s[c];  // R = S_c at the class, 0 elsewhere
  }
  r.relevance = lrp.propagate(top, options).clone();
  r.map = relevance_map(r.relevance);
  r.relevance_sum = per_image_sums(r.relevance);
  for (int n = 0; n < N; ++n)
    r.conservation.push_back(r.scores[n] != 0.0f ? r.relevance_sum[n] / r.scores[n] : 0.0);
  return r;
}

}  // namespace deepinside::viz
