#include "kernels/cpu/cpu_backend.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "engine/error.h"
#include "kernels/cpu/reference.h"

namespace deepinside::cpu {

namespace {

float* data_or_null(Tensor* t) { return t ? t->data() : nullptr; }
const float* data_or_null(const Tensor* t) { return t ? t->data() : nullptr; }

int normalized_axis(int axis, int rank) { return axis < 0 ? axis + rank : axis; }

// (outer, L, inner) view of a shape around an axis.
struct AxisView {
  int64_t outer = 1, length = 1, inner = 1;
};
AxisView axis_view(const Shape& s, int axis) {
  AxisView v;
  for (int i = 0; i < int(s.size()); ++i) (i < axis ? v.outer : i == axis ? v.length : v.inner) *= s[i];
  return v;
}

AxisView softmax_view(const SoftmaxParams& p, const Shape& s) {
  const int axis = normalized_axis(p.axis, int(s.size()));
  if (!p.coerce_2d) return axis_view(s, axis);
  AxisView v;  // opset < 13: flatten to (prod s[:axis], prod s[axis:]) and normalise the rows
  for (int i = 0; i < int(s.size()); ++i) (i < axis ? v.outer : v.length) *= s[i];
  return v;
}

// Sizes of Gemm / MatMul from their inputs.
struct MatmulSizes {
  int batch, M, N, K;
  bool b_batched;
};
MatmulSizes matmul_sizes(const Shape& a, const Shape& b) {
  MatmulSizes s{};
  s.M = int(a[a.size() - 2]);
  s.K = int(a.back());
  s.N = int(b.back());
  s.batch = int(shape_numel(a) / (int64_t(s.M) * s.K));
  s.b_batched = b.size() > 2;
  return s;
}

}  // namespace

bool CpuReferenceBackend::supports(OpKind) const { return true; }

void CpuReferenceBackend::plan_saved(const Node& node, std::span<const Shape* const> input_shapes,
                                     const Shape& output_shape, NodeSaved& saved) {
  if (node.kind == OpKind::MaxPool) saved.switches = IndexTensor(output_shape);
  if (node.kind == OpKind::LRN) saved.scale = Tensor(output_shape);
}

void CpuReferenceBackend::forward(const Node& node, std::span<const Tensor* const> in, Tensor& out,
                                  NodeSaved& saved) {
  const Tensor& x = *in[0];
  float* y = out.data();
  switch (node.kind) {
    case OpKind::Conv: {
      const ConvGeometry g = conv_geometry(std::get<ConvParams>(node.params), x.shape(), in[1]->shape());
      conv2d_forward(y, x.data(), in[1]->data(), in.size() > 2 ? data_or_null(in[2]) : nullptr, g);
      return;
    }
    case OpKind::Relu: relu_forward(y, x.data(), x.numel()); return;
    case OpKind::MaxPool:
      maxpool2d_forward(y, saved.switches.data(), x.data(), pool_geometry(std::get<PoolParams>(node.params), x.shape()));
      return;
    case OpKind::AveragePool:
      avgpool2d_forward(y, x.data(), pool_geometry(std::get<PoolParams>(node.params), x.shape()));
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
      const int M = int(out.dim(0)), N = int(out.dim(1)), K = int(p.trans_a ? x.dim(0) : x.dim(1));
      const Tensor* c = in.size() > 2 ? in[2] : nullptr;
      gemm_forward(y, x.data(), in[1]->data(), data_or_null(c), c ? c->shape() : Shape{}, M, N, K, p);
      return;
    }
    case OpKind::MatMul: {
      const MatmulSizes s = matmul_sizes(x.shape(), in[1]->shape());
      matmul_forward(y, x.data(), in[1]->data(), s.batch, s.b_batched, s.M, s.N, s.K);
      return;
    }
    case OpKind::Add: case OpKind::Sub: case OpKind::Mul: case OpKind::Div:
      binary_forward(y, x.data(), in[1]->data(), x.shape(), in[1]->shape(), out.shape(), node.kind);
      return;
    case OpKind::Max: case OpKind::Sum: {
      std::vector<const float*> xs;
      for (const Tensor* t : in) xs.push_back(t->data());
      if (node.kind == OpKind::Max) {
        max_forward(y, xs.data(), int(xs.size()), out.numel());
      } else {
        std::fill(y, y + out.numel(), 0.0f);
        for (const float* p : xs)
          for (int64_t i = 0; i < out.numel(); ++i) y[i] += p[i];
      }
      return;
    }
    case OpKind::Flatten: case OpKind::Reshape: case OpKind::Dropout: case OpKind::Identity:
      std::memcpy(y, x.data(), sizeof(float) * x.numel());
      return;
    case OpKind::Concat: {
      const int axis = normalized_axis(std::get<AxisParams>(node.params).axis, out.rank());
      std::vector<const float*> xs;
      std::vector<int64_t> lengths;
      for (const Tensor* t : in) {
        xs.push_back(t->data());
        lengths.push_back(t->dim(axis));
      }
      const AxisView v = axis_view(out.shape(), axis);
      concat_forward(y, xs.data(), lengths.data(), int(xs.size()), v.outer, v.inner);
      return;
    }
    case OpKind::BatchNormalization:
      batchnorm_forward(y, x.data(), in[1]->data(), in[2]->data(), in[3]->data(), in[4]->data(), int(x.dim(0)),
                        int(x.dim(1)), x.numel() / (x.dim(0) * x.dim(1)),
                        std::get<BatchNormParams>(node.params).epsilon);
      return;
    case OpKind::Softmax: {
      const AxisView v = softmax_view(std::get<SoftmaxParams>(node.params), x.shape());
      softmax_forward(y, x.data(), v.outer, v.length, v.inner);
      return;
    }
    default:
      if (is_unary_elementwise(node.kind)) {
        const UnaryParams p = std::holds_alternative<UnaryParams>(node.params) ? std::get<UnaryParams>(node.params)
                                                                               : UnaryParams{};
        unary_forward(y, x.data(), x.numel(), node.kind, p);
        return;
      }
  }
  throw Error(std::string("op ") + op_name(node.kind) + " has no forward on backend '" + name() + "'");
}

void CpuReferenceBackend::backward_input(const Node& node, BackwardRule rule, std::span<const Tensor* const> in,
                                         const Tensor& out, const Tensor& grad_out,
                                         std::span<Tensor* const> grad_in, const NodeSaved& saved) {
  const Tensor& x = *in[0];
  const float* dy = grad_out.data();
  float* dx = data_or_null(grad_in[0]);
  switch (node.kind) {
    case OpKind::Conv: {
      require(grad_in.size() < 2 || !grad_in[1], "Conv (node '" + node.name + "'): weights must be constants");
      const ConvGeometry g = conv_geometry(std::get<ConvParams>(node.params), x.shape(), in[1]->shape());
      if (dx) conv2d_backward_input(dx, dy, in[1]->data(), g);
      return;
    }
    case OpKind::Relu:
      if (dx) relu_backward_input(dx, dy, x.data(), x.numel(), rule);
      return;
    case OpKind::MaxPool:
      if (dx)
        maxpool2d_backward_input(dx, dy, saved.switches.data(),
                                 pool_geometry(std::get<PoolParams>(node.params), x.shape()));
      return;
    case OpKind::AveragePool:
      if (dx) avgpool2d_backward_input(dx, dy, pool_geometry(std::get<PoolParams>(node.params), x.shape()));
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
      require(grad_in.size() < 3 || !grad_in[2], "Gemm (node '" + node.name + "'): C must be a constant");
      const int M = int(out.dim(0)), N = int(out.dim(1)), K = int(p.trans_a ? x.dim(0) : x.dim(1));
      gemm_backward_input(dx, data_or_null(grad_in[1]), dy, x.data(), in[1]->data(), M, N, K, p);
      return;
    }
    case OpKind::MatMul: {
      const MatmulSizes s = matmul_sizes(x.shape(), in[1]->shape());
      matmul_backward_input(dx, data_or_null(grad_in[1]), dy, x.data(), in[1]->data(), s.batch, s.b_batched,
                            s.M, s.N, s.K);
      return;
    }
    case OpKind::Add: case OpKind::Sub: case OpKind::Mul: case OpKind::Div:
      binary_backward_input(dx, data_or_null(grad_in[1]), dy, x.data(), in[1]->data(), x.shape(), in[1]->shape(),
                            out.shape(), node.kind);
      return;
    case OpKind::Max: case OpKind::Sum: {
      std::vector<const float*> xs;
      std::vector<float*> dxs;
      for (size_t i = 0; i < in.size(); ++i) {
        xs.push_back(in[i]->data());
        dxs.push_back(data_or_null(grad_in[i]));
      }
      if (node.kind == OpKind::Max) {
        max_backward_input(dxs.data(), dy, xs.data(), int(xs.size()), out.numel());
      } else {
        for (float* d : dxs)
          if (d)
            for (int64_t i = 0; i < out.numel(); ++i) d[i] += dy[i];
      }
      return;
    }
    case OpKind::Flatten: case OpKind::Reshape: case OpKind::Dropout: case OpKind::Identity:
      if (dx)
        for (int64_t i = 0; i < x.numel(); ++i) dx[i] += dy[i];
      return;
    case OpKind::Concat: {
      const int axis = normalized_axis(std::get<AxisParams>(node.params).axis, out.rank());
      std::vector<float*> dxs;
      std::vector<int64_t> lengths;
      for (size_t i = 0; i < in.size(); ++i) {
        dxs.push_back(data_or_null(grad_in[i]));
        lengths.push_back(in[i]->dim(axis));
      }
      const AxisView v = axis_view(out.shape(), axis);
      concat_backward_input(dxs.data(), dy, lengths.data(), int(dxs.size()), v.outer, v.inner);
      return;
    }
    case OpKind::BatchNormalization:
      if (dx)
        batchnorm_backward_input(dx, dy, in[1]->data(), in[4]->data(), int(x.dim(0)), int(x.dim(1)),
                                 x.numel() / (x.dim(0) * x.dim(1)), std::get<BatchNormParams>(node.params).epsilon);
      return;
    case OpKind::Softmax: {
      const AxisView v = softmax_view(std::get<SoftmaxParams>(node.params), x.shape());
      if (dx) softmax_backward_input(dx, dy, out.data(), v.outer, v.length, v.inner);
      return;
    }
    default:
      if (is_unary_elementwise(node.kind)) {
        const UnaryParams p = std::holds_alternative<UnaryParams>(node.params) ? std::get<UnaryParams>(node.params)
                                                                               : UnaryParams{};
        if (dx) unary_backward_input(dx, dy, x.data(), out.data(), x.numel(), node.kind, p);
        return;
      }
  }
  throw Error(std::string("op ") + op_name(node.kind) + " has no backward on backend '" + name() + "'");
}

}  // namespace deepinside::cpu
