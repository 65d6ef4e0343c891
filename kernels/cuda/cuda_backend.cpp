// CudaBackend: dispatches each node to the launchers of kernels/cuda/ops.h, mirroring
// kernels/cpu/cpu_backend.cpp op for op (same views, same sizes).
#include "kernels/cuda/cuda_backend.h"

#include <vector>

#include "engine/error.h"
#include "kernels/cuda/ops.h"

namespace deepinside::DI_KERNEL_NS {

namespace {

float* data_or_null(Tensor* t) { return t ? t->data() : nullptr; }

int normalized_axis(int axis, int rank) { return axis < 0 ? axis + rank : axis; }

struct AxisView {  // (outer, L, inner) view of a shape around an axis
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
  AxisView v;  // opset < 13: flattened to 2-D at axis
  for (int i = 0; i < int(s.size()); ++i) (i < axis ? v.outer : v.length) *= s[i];
  return v;
}

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

UnaryParams unary_params(const Node& node) {
  return std::holds_alternative<UnaryParams>(node.params) ? std::get<UnaryParams>(node.params) : UnaryParams{};
}

}  // namespace

CudaBackend::CudaBackend() = default;

std::string CudaBackend::name() const {
#ifdef DEEPINSIDE_EMU
  return "cuda-emu";
#else
  return "cuda";
#endif
}

// Every op of the CPU reference has kernels here.
bool CudaBackend::supports(OpKind) const { return true; }

void CudaBackend::plan_saved(const Node& node, std::span<const Shape* const>, const Shape& output_shape,
                             NodeSaved& saved) {
  if (node.kind == OpKind::MaxPool) saved.switches = IndexTensor(output_shape, runtime_);
  if (node.kind == OpKind::LRN) saved.scale = Tensor(output_shape, runtime_);
}

void CudaBackend::forward(const Node& node, std::span<const Tensor* const> in, Tensor& out, NodeSaved& saved) {
  const Tensor& x = *in[0];
  require(!x.on_host() && !out.on_host(), "backend '" + name() + "' (node '" + node.name +
                                              "'): tensors must be in device memory (run nodes through a Session)");
  float* y = out.data();
  const Stream s = runtime_.stream();
  switch (node.kind) {
    case OpKind::Conv: {
      const ConvGeometry g = conv_geometry(std::get<ConvParams>(node.params), x.shape(), in[1]->shape());
      conv2d_forward(y, x.data(), in[1]->data(), in.size() > 2 && in[2] ? in[2]->data() : nullptr, g, s);
      return;
    }
    case OpKind::Relu: relu_forward(y, x.data(), x.numel(), s); return;
    case OpKind::MaxPool:
      maxpool2d_forward(y, saved.switches.data(), x.data(), pool_geometry(std::get<PoolParams>(node.params), x.shape()), s);
      return;
    case OpKind::AveragePool:
      avgpool2d_forward(y, x.data(), pool_geometry(std::get<PoolParams>(node.params), x.shape()), s);
      return;
    case OpKind::GlobalAveragePool:
      global_avgpool_forward(y, x.data(), x.dim(0) * x.dim(1), x.numel() / (x.dim(0) * x.dim(1)), s);
      return;
    case OpKind::LRN:
      lrn_forward(y, saved.scale.data(), x.data(), int(x.dim(0)), int(x.dim(1)), x.numel() / (x.dim(0) * x.dim(1)),
                  std::get<LrnParams>(node.params), s);
      return;
    case OpKind::Gemm: {
      const auto& p = std::get<GemmParams>(node.params);
      const int M = int(out.dim(0)), N = int(out.dim(1)), K = int(p.trans_a ? x.dim(0) : x.dim(1));
      const Tensor* c = in.size() > 2 ? in[2] : nullptr;
      const int c_rows = c && c->rank() == 2 ? int(c->dim(0)) : 1;
      const int c_cols = c && c->rank() > 0 ? int(c->shape().back()) : 1;
      gemm_forward(y, x.data(), in[1]->data(), c ? c->data() : nullptr, c_rows, c_cols, M, N, K, p, s);
      return;
    }
    case OpKind::MatMul: {
      const MatmulSizes m = matmul_sizes(x.shape(), in[1]->shape());
      matmul_forward(y, x.data(), in[1]->data(), m.batch, m.b_batched, m.M, m.N, m.K, s);
      return;
    }
    case OpKind::Add: case OpKind::Sub: case OpKind::Mul: case OpKind::Div:
      binary_forward(y, x.data(), in[1]->data(), x.shape(), in[1]->shape(), out.shape(), node.kind, s);
      return;
    case OpKind::Max: case OpKind::Sum: {
      std::vector<const float*> xs;
      for (const Tensor* t : in) xs.push_back(t->data());
      if (node.kind == OpKind::Max)
        max_forward(y, xs.data(), int(xs.size()), out.numel(), s);
      else
        sum_forward(y, xs.data(), int(xs.size()), out.numel(), s);
      return;
    }
    case OpKind::Flatten: case OpKind::Reshape: case OpKind::Dropout: case OpKind::Identity:
      runtime_.copy(y, x.data(), sizeof(float) * size_t(x.numel()));
      return;
    case OpKind::Concat: {
      const int axis = normalized_axis(std::get<AxisParams>(node.params).axis, out.rank());
      const AxisView v = axis_view(out.shape(), axis);
      int64_t offset = 0;
      for (const Tensor* t : in) {
        concat_copy_in(y, t->data(), v.outer, t->dim(axis), offset, v.length, v.inner, s);
        offset += t->dim(axis);
      }
      return;
    }
    case OpKind::BatchNormalization:
      batchnorm_forward(y, x.data(), in[1]->data(), in[2]->data(), in[3]->data(), in[4]->data(), int(x.dim(0)),
                        int(x.dim(1)), x.numel() / (x.dim(0) * x.dim(1)),
                        std::get<BatchNormParams>(node.params).epsilon, s);
      return;
    case OpKind::Softmax: {
      const AxisView v = softmax_view(std::get<SoftmaxParams>(node.params), x.shape());
      softmax_forward(y, x.data(), v.outer, v.length, v.inner, s);
      return;
    }
    default:
      if (is_unary_elementwise(node.kind)) {
        unary_forward(y, x.data(), x.numel(), node.kind, unary_params(node), s);
        return;
      }
  }
  throw Error(std::string("op ") + op_name(node.kind) + " has no forward on backend '" + name() + "'");
}

void CudaBackend::backward_input(const Node& node, BackwardRule rule, std::span<const Tensor* const> in,
                                 const Tensor& out, const Tensor& grad_out, std::span<Tensor* const> grad_in,
                                 const NodeSaved& saved) {
  const Tensor& x = *in[0];
  require(!x.on_host() && !grad_out.on_host(), "backend '" + name() + "' (node '" + node.name +
                                                   "'): tensors must be in device memory (run nodes through a Session)");
  const float* dy = grad_out.data();
  float* dx = data_or_null(grad_in[0]);
  const Stream s = runtime_.stream();
  switch (node.kind) {
    case OpKind::Conv: {
      require(grad_in.size() < 2 || !grad_in[1], "Conv (node '" + node.name + "'): weights must be constants");
      const ConvGeometry g = conv_geometry(std::get<ConvParams>(node.params), x.shape(), in[1]->shape());
      if (dx) conv2d_backward_input(dx, dy, in[1]->data(), g, s);
      return;
    }
    case OpKind::Relu:
      if (dx) relu_backward_input(dx, dy, x.data(), x.numel(), rule, s);
      return;
    case OpKind::MaxPool:
      if (dx)
        maxpool2d_backward_input(dx, dy, saved.switches.data(),
                                 pool_geometry(std::get<PoolParams>(node.params), x.shape()), s);
      return;
    case OpKind::AveragePool:
      if (dx) avgpool2d_backward_input(dx, dy, pool_geometry(std::get<PoolParams>(node.params), x.shape()), s);
      return;
    case OpKind::GlobalAveragePool:
      if (dx) global_avgpool_backward_input(dx, dy, x.dim(0) * x.dim(1), x.numel() / (x.dim(0) * x.dim(1)), s);
      return;
    case OpKind::LRN:
      if (dx)
        lrn_backward_input(dx, dy, x.data(), out.data(), saved.scale.data(), int(x.dim(0)), int(x.dim(1)),
                           x.numel() / (x.dim(0) * x.dim(1)), std::get<LrnParams>(node.params), s);
      return;
    case OpKind::Gemm: {
      const auto& p = std::get<GemmParams>(node.params);
      require(grad_in.size() < 3 || !grad_in[2], "Gemm (node '" + node.name + "'): C must be a constant");
      const int M = int(out.dim(0)), N = int(out.dim(1)), K = int(p.trans_a ? x.dim(0) : x.dim(1));
      gemm_backward_input(dx, data_or_null(grad_in[1]), dy, x.data(), in[1]->data(), M, N, K, p, s);
      return;
    }
    case OpKind::MatMul: {
      const MatmulSizes m = matmul_sizes(x.shape(), in[1]->shape());
      matmul_backward_input(dx, data_or_null(grad_in[1]), dy, x.data(), in[1]->data(), m.batch, m.b_batched, m.M, m.N,
                            m.K, s);
      return;
    }
    case OpKind::Add: case OpKind::Sub: case OpKind::Mul: case OpKind::Div:
      binary_backward_input(dx, data_or_null(grad_in[1]), dy, x.data(), in[1]->data(), x.shape(), in[1]->shape(),
                            out.shape(), node.kind, s);
      return;
    case OpKind::Max: {
      std::vector<const float*> xs;
      std::vector<float*> dxs;
      for (size_t i = 0; i < in.size(); ++i) {
        xs.push_back(in[i]->data());
        dxs.push_back(data_or_null(grad_in[i]));
      }
      max_backward_input(dxs.data(), dy, xs.data(), int(xs.size()), out.numel(), s);
      return;
    }
    case OpKind::Sum:
      for (size_t i = 0; i < in.size(); ++i)
        if (grad_in[i]) add_into(grad_in[i]->data(), dy, out.numel(), s);
      return;
    case OpKind::Flatten: case OpKind::Reshape: case OpKind::Dropout: case OpKind::Identity:
      if (dx) add_into(dx, dy, x.numel(), s);
      return;
    case OpKind::Concat: {
      const int axis = normalized_axis(std::get<AxisParams>(node.params).axis, out.rank());
      const AxisView v = axis_view(out.shape(), axis);
      int64_t offset = 0;
      for (size_t i = 0; i < in.size(); ++i) {
        if (grad_in[i]) concat_backward_slice(grad_in[i]->data(), dy, v.outer, in[i]->dim(axis), offset, v.length, v.inner, s);
        offset += in[i]->dim(axis);
      }
      return;
    }
    case OpKind::BatchNormalization:
      if (dx)
        batchnorm_backward_input(dx, dy, in[1]->data(), in[4]->data(), int(x.dim(0)), int(x.dim(1)),
                                 x.numel() / (x.dim(0) * x.dim(1)), std::get<BatchNormParams>(node.params).epsilon, s);
      return;
    case OpKind::Softmax: {
      const AxisView v = softmax_view(std::get<SoftmaxParams>(node.params), x.shape());
      if (dx) softmax_backward_input(dx, dy, out.data(), v.outer, v.length, v.inner, s);
      return;
    }
    default:
      if (is_unary_elementwise(node.kind)) {
        if (dx) unary_backward_input(dx, dy, x.data(), out.data(), x.numel(), node.kind, unary_params(node), s);
        return;
      }
  }
  throw Error(std::string("op ") + op_name(node.kind) + " has no backward on backend '" + name() + "'");
}

std::unique_ptr<Backend> make_cuda_backend() { return std::make_unique<CudaBackend>(); }

}  // namespace deepinside::DI_KERNEL_NS
