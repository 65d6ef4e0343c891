#include "kernels/cpu_fast/cpu_fast_backend.h"

#include <cstdlib>
#include <cstring>

#include "engine/error.h"
#include "kernels/cpu_fast/ops.h"
#include "kernels/cpu_fast/winograd.h"

namespace deepinside::cpu_fast {

namespace {

float* data_or_null(Tensor* t) { return t ? t->data() : nullptr; }

struct FcSizes {
  int M, N, K;
};
FcSizes fc_sizes(const GemmParams& p, const Shape& a, const Shape& b) {
  return {int(a[0]), int(p.trans_b ? b[0] : b[1]), int(a[1])};
}

// (outer, inner) around a concat axis of an output shape.
std::pair<int64_t, int64_t> concat_view(const Shape& s, int axis) {
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < int(s.size()); ++i) {
    if (i < axis) outer *= s[i];
    if (i > axis) inner *= s[i];
  }
  return {outer, inner};
}

int concat_axis(const Node& node, int rank) {
  const int axis = std::get<AxisParams>(node.params).axis;
  return axis < 0 ? axis + rank : axis;
}

const Shape* optional_shape(std::span<const Shape* const> shapes, size_t i) {
  return shapes.size() > i ? shapes[i] : nullptr;
}

// A hash of 64 values sampled evenly across t (and its size): cheap enough for every call, and it
// changes when a layer's weights are redrawn or replaced in place (viz/sanity does that).
uint64_t fingerprint(const Tensor& t) {
  uint64_t h = 1469598103934665603ull ^ uint64_t(t.numel());
  const int64_t n = t.numel();
  for (int64_t s = 0; s < 64 && n > 0; ++s) {
    uint32_t bits;
    std::memcpy(&bits, t.data() + s * (n - 1) / 63, sizeof bits);
    h = (h ^ bits) * 1099511628211ull;
  }
  return h;
}

// The plan-time Winograd transform of w, if saved holds one made from this very tensor and values.
const float* prepared_weights(const NodeSaved& saved, const Tensor* w) {
  if (saved.prepared.empty() || saved.prepared_from != w || saved.prepared_fingerprint != fingerprint(*w))
    return nullptr;
  return saved.prepared.data();
}

}  // namespace

void CpuFastBackend::FreeDeleter::operator()(float* p) const { std::free(p); }

CpuFastBackend::CpuFastBackend() = default;

int CpuFastBackend::threads() const { return thread_count(); }

void CpuFastBackend::plan_saved(const Node& node, std::span<const Shape* const> input_shapes,
                                const Shape& output_shape, NodeSaved& saved) {
  reference_.plan_saved(node, input_shapes, output_shape, saved);  // switches, LRN scales
  int64_t need = 0;
  if (node.kind == OpKind::Conv) {
    need = conv_workspace_floats(conv_geometry(std::get<ConvParams>(node.params), *input_shapes[0], *input_shapes[1]));
    if (saved.relu_fused) need += shape_numel(output_shape);  // the masked gradient, after the conv's own part
  } else if (node.kind == OpKind::Gemm) {
    const auto& p = std::get<GemmParams>(node.params);
    if (fc_supported(p, *input_shapes[0], *input_shapes[1], optional_shape(input_shapes, 2))) {
      const FcSizes s = fc_sizes(p, *input_shapes[0], *input_shapes[1]);
      need = fc_workspace_floats(s.M, s.N, s.K);
    }
  }
  if (need > workspace_size_) {
    // 64-byte aligned (whole cache lines, AVX-512 vectors); grown only here, at plan time.
    const size_t bytes = (size_t(need) * sizeof(float) + 63) / 64 * 64;
    float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!p) throw std::bad_alloc();
    workspace_.reset(p);
    workspace_size_ = need;
  }
}

void CpuFastBackend::prepare_constants(const Node& node, std::span<const Tensor* const> in,
                                       std::span<const bool> is_constant, NodeSaved& saved) {
  if (node.kind != OpKind::Conv || in.size() < 2 || !is_constant[1]) return;
  const ConvGeometry g = conv_geometry(std::get<ConvParams>(node.params), in[0]->shape(), in[1]->shape());
  if (!winograd_applies(g)) return;
  saved.prepared = Tensor({16, g.M, g.C});  // U_xi (M x C) for the 16 positions of the 4x4 tile
  winograd_transform_weights(saved.prepared.data(), in[1]->data(), g);
  saved.prepared_from = in[1];
  saved.prepared_fingerprint = fingerprint(*in[1]);
}

float* CpuFastBackend::workspace(int64_t floats, const Node& node) {
  require(floats <= workspace_size_, "backend 'cpu': node '" + node.name + "' needs " + std::to_string(floats) +
                                         " floats of workspace, " + std::to_string(workspace_size_) +
                                         " were planned (plan_saved was not called for this shape)");
  return workspace_.get();
}

void CpuFastBackend::forward(const Node& node, std::span<const Tensor* const> in, Tensor& out, NodeSaved& saved) {
  const Tensor& x = *in[0];
  float* y = out.data();
  switch (node.kind) {
    case OpKind::Conv: {
      const ConvGeometry g = conv_geometry(std::get<ConvParams>(node.params), x.shape(), in[1]->shape());
      float* ws = workspace(conv_workspace_floats(g), node);
      const Tensor* b = in.size() > 2 ? in[2] : nullptr;
      conv2d_forward(y, x.data(), in[1]->data(), b ? b->data() : nullptr, g, ws, prepared_weights(saved, in[1]),
                     saved.relu_fused);
      return;
    }
    case OpKind::Relu: relu_forward(y, x.data(), x.numel()); return;
    case OpKind::MaxPool:
      maxpool2d_forward(y, saved.switches.data(), x.data(), pool_geometry(std::get<PoolParams>(node.params), x.shape()));
      return;
    case OpKind::GlobalAveragePool:
      global_avgpool_forward(y, x.data(), x.dim(0) * x.dim(1), x.numel() / (x.dim(0) * x.dim(1)));
      return;
    case OpKind::LRN:
      lrn_forward(y, saved.scale.data(), x.data(), int(x.dim(0)), int(x.dim(1)), x.numel() / (x.dim(0) * x.dim(1)),
                  std::get<LrnParams>(node.params));
      return;
    case OpKind::Gemm: {
      const auto& p = std::get<GemmParams>(node.params);
      const Tensor* c = in.size() > 2 ? in[2] : nullptr;
      if (!fc_supported(p, x.shape(), in[1]->shape(), c ? &c->shape() : nullptr)) break;
      const FcSizes s = fc_sizes(p, x.shape(), in[1]->shape());
      float* ws = workspace(fc_workspace_floats(s.M, s.N, s.K), node);
      fc_forward(y, x.data(), in[1]->data(), c ? c->data() : nullptr, c ? c->shape() : Shape{}, s.M, s.N, s.K, p, ws);
      return;
    }
    case OpKind::Flatten: case OpKind::Reshape: case OpKind::Dropout: case OpKind::Identity:
      std::memcpy(y, x.data(), sizeof(float) * x.numel());
      return;
    case OpKind::Concat: {
      const int axis = concat_axis(node, out.rank());
      const auto [outer, inner] = concat_view(out.shape(), axis);
      concat_forward(y, in, axis, outer, inner);
      return;
    }
    default: break;
  }
  reference_.forward(node, in, out, saved);  // the specification's code for everything else
}

void CpuFastBackend::backward_input(const Node& node, BackwardRule rule, std::span<const Tensor* const> in,
                                    const Tensor& out, const Tensor& grad_out, std::span<Tensor* const> grad_in,
                                    const NodeSaved& saved) {
  const Tensor& x = *in[0];
  const float* dy = grad_out.data();
  float* dx = data_or_null(grad_in[0]);
  switch (node.kind) {
    case OpKind::Conv: {
      require(grad_in.size() < 2 || !grad_in[1], "Conv (node '" + node.name + "'): weights must be constants");
      const ConvGeometry g = conv_geometry(std::get<ConvParams>(node.params), x.shape(), in[1]->shape());
      if (!dx) return;
      const int64_t conv_ws = conv_workspace_floats(g);
      float* ws = workspace(conv_ws + (saved.relu_fused ? out.numel() : 0), node);
      // A fused Relu: dy is d(loss)/d(Relu output), rectified by the rule against out (out > 0 <=> in > 0).
      const FusedRelu relu{out.data(), rule, ws + conv_ws};
      conv2d_backward_input(dx, dy, in[1]->data(), g, ws, prepared_weights(saved, in[1]),
                            saved.relu_fused ? &relu : nullptr);
      return;
    }
    case OpKind::Relu:
      if (dx) relu_backward_input(dx, dy, x.data(), x.numel(), rule);
      return;
    case OpKind::MaxPool:
      if (dx)
        maxpool2d_backward_input(dx, dy, saved.switches.data(), pool_geometry(std::get<PoolParams>(node.params), x.shape()));
      return;
    case OpKind::GlobalAveragePool:
      if (dx) global_avgpool_backward_input(dx, dy, x.dim(0) * x.dim(1), x.numel() / (x.dim(0) * x.dim(1)));
      return;
    case OpKind::LRN:
      if (dx)
        lrn_backward_input(dx, dy, x.data(), out.data(), saved.scale.data(), int(x.dim(0)), int(x.dim(1)),
                           x.numel() / (x.dim(0) * x.dim(1)), std::get<LrnParams>(node.params));
      return;
    case OpKind::Gemm: {
      const auto& p = std::get<GemmParams>(node.params);
      const Tensor* c = in.size() > 2 ? in[2] : nullptr;
      const bool weights_constant = grad_in.size() < 2 || !grad_in[1];
      if (!weights_constant || !fc_supported(p, x.shape(), in[1]->shape(), c ? &c->shape() : nullptr)) break;
      require(grad_in.size() < 3 || !grad_in[2], "Gemm (node '" + node.name + "'): C must be a constant");
      if (!dx) return;
      const FcSizes s = fc_sizes(p, x.shape(), in[1]->shape());
      fc_backward_input(dx, dy, in[1]->data(), s.M, s.N, s.K, p, workspace(fc_workspace_floats(s.M, s.N, s.K), node));
      return;
    }
    case OpKind::Flatten: case OpKind::Reshape: case OpKind::Dropout: case OpKind::Identity:
      if (dx) add_into(dx, dy, x.numel());
      return;
    case OpKind::Concat: {
      const int axis = concat_axis(node, out.rank());
      const auto [outer, inner] = concat_view(out.shape(), axis);
      concat_backward_input(grad_in, in, dy, axis, outer, inner);
      return;
    }
    default: break;
  }
  reference_.backward_input(node, rule, in, out, grad_out, grad_in, saved);
}

}  // namespace deepinside::cpu_fast
