// Backend "cudnn": the comparison backend. Convolution forward and backward-data, average pooling,
// LRN and softmax through cuDNN 9 (FP32 math: CUDNN_FMA_MATH, so no TF32 tensor-op algorithms); every
// other op, and the cases cuDNN cannot express, run our kernels of kernels/cuda (the class derives
// from cuda::CudaBackend):
//   - max pooling always: our int32 switches with the first-maximum tie rule (DESIGN.md Sec. 4) are
//     part of the backend contract, and cuDNN keeps no switches;
//   - convolution and average pooling with asymmetric pads (ONNX auto_pad, cuda-convnet's ceil
//     sizes), ceil mode or dilated pooling, which cuDNN's symmetric-pad descriptors cannot state;
//   - LRN with a window over 16 channels or beta < 0.01 (cuDNN's limits).
// All descriptors, algorithms and the one shared workspace are chosen at plan time (plan_saved).
#include <cudnn.h>

#include <map>
#include <memory>
#include <string>

#include "engine/error.h"
#include "kernels/cuda/cuda_backend.h"

namespace deepinside::cudnn {

namespace {

void check_cudnn(cudnnStatus_t status, const char* call, const char* file, int line) {
  if (status != CUDNN_STATUS_SUCCESS)
    throw Error(std::string("cuDNN error in ") + call + " at " + file + ":" + std::to_string(line) + ": " +
                cudnnGetErrorString(status));
}
#define DI_CUDNN_CHECK(call) check_cudnn((call), #call, __FILE__, __LINE__)

// RAII owners of cuDNN descriptors.
struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc() { DI_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d)); }
  ~TensorDesc() { cudnnDestroyTensorDescriptor(d); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
  void set(int n, int c, int h, int w) {
    DI_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w));
  }
};

struct ConvPlan {
  TensorDesc x, y, bias;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnConvolutionFwdAlgo_t fwd_algo{};
  cudnnConvolutionBwdDataAlgo_t bwd_algo{};
  ConvPlan() {
    DI_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    DI_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
  }
  ~ConvPlan() {
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyConvolutionDescriptor(conv);
  }
};

struct PoolPlan {
  TensorDesc x, y;
  cudnnPoolingDescriptor_t pool = nullptr;
  PoolPlan() { DI_CUDNN_CHECK(cudnnCreatePoolingDescriptor(&pool)); }
  ~PoolPlan() { cudnnDestroyPoolingDescriptor(pool); }
};

struct LrnPlan {
  TensorDesc x;
  cudnnLRNDescriptor_t lrn = nullptr;
  LrnPlan() { DI_CUDNN_CHECK(cudnnCreateLRNDescriptor(&lrn)); }
  ~LrnPlan() { cudnnDestroyLRNDescriptor(lrn); }
};

struct SoftmaxPlan {
  TensorDesc x;
};

// (outer, L, inner) of a softmax, as cuDNN's (N, C, H, W) = (outer, L, inner, 1).
struct Lines {
  int64_t outer = 1, length = 1, inner = 1;
};
Lines softmax_lines(const SoftmaxParams& p, const Shape& s) {
  const int rank = int(s.size()), axis = p.axis < 0 ? p.axis + rank : p.axis;
  Lines v;
  for (int i = 0; i < rank; ++i) {
    if (p.coerce_2d)
      (i < axis ? v.outer : v.length) *= s[i];
    else
      (i < axis ? v.outer : i == axis ? v.length : v.inner) *= s[i];
  }
  return v;
}

bool fits_int(int64_t v) { return v > 0 && v < (int64_t(1) << 31); }

}  // namespace

class CudnnBackend final : public cuda::CudaBackend {
 public:
  CudnnBackend() {
    DI_CUDNN_CHECK(cudnnCreate(&handle_));
    DI_CUDNN_CHECK(cudnnSetStream(handle_, runtime_.stream()));
  }
  ~CudnnBackend() override { cudnnDestroy(handle_); }

  std::string name() const override { return "cudnn"; }

  void plan_saved(const Node& node, std::span<const Shape* const> input_shapes, const Shape& output_shape,
                  NodeSaved& saved) override {
    CudaBackend::plan_saved(node, input_shapes, output_shape, saved);
    const Shape& x = *input_shapes[0];
    if (node.kind == OpKind::Conv) plan_conv(node, x, *input_shapes[1]);
    if (node.kind == OpKind::AveragePool) plan_pool(node, x);
    if (node.kind == OpKind::LRN) plan_lrn(node, x);
    if (node.kind == OpKind::Softmax) {
      const Lines v = softmax_lines(std::get<SoftmaxParams>(node.params), x);
      if (fits_int(v.outer) && fits_int(v.length) && fits_int(v.inner)) {
        auto plan = std::make_unique<SoftmaxPlan>();
        plan->x.set(int(v.outer), int(v.length), int(v.inner), 1);
        softmax_[{&node, x}] = std::move(plan);
      }
    }
  }

  void forward(const Node& node, std::span<const Tensor* const> in, Tensor& out, NodeSaved& saved) override {
    const float one = 1.0f, zero = 0.0f;
    if (node.kind == OpKind::Conv && conv_.count({&node, in[0]->shape()})) {
      const ConvPlan& p = *conv_.at({&node, in[0]->shape()});
      DI_CUDNN_CHECK(cudnnConvolutionForward(handle_, &one, p.x.d, in[0]->data(), p.w, in[1]->data(), p.conv,
                                             p.fwd_algo, workspace(), workspace_bytes_, &zero, p.y.d, out.data()));
      if (in.size() > 2 && in[2])
        DI_CUDNN_CHECK(cudnnAddTensor(handle_, &one, p.bias.d, in[2]->data(), &one, p.y.d, out.data()));
      return;
    }
    if (node.kind == OpKind::AveragePool && pool_.count({&node, in[0]->shape()})) {
      const PoolPlan& p = *pool_.at({&node, in[0]->shape()});
      DI_CUDNN_CHECK(cudnnPoolingForward(handle_, p.pool, &one, p.x.d, in[0]->data(), &zero, p.y.d, out.data()));
      return;
    }
    if (node.kind == OpKind::LRN && lrn_.count({&node, in[0]->shape()})) {
      const LrnPlan& p = *lrn_.at({&node, in[0]->shape()});
      DI_CUDNN_CHECK(cudnnLRNCrossChannelForward(handle_, p.lrn, CUDNN_LRN_CROSS_CHANNEL_DIM1, &one, p.x.d,
                                                 in[0]->data(), &zero, p.x.d, out.data()));
      return;
    }
    if (node.kind == OpKind::Softmax && softmax_.count({&node, in[0]->shape()})) {
      const SoftmaxPlan& p = *softmax_.at({&node, in[0]->shape()});
      DI_CUDNN_CHECK(cudnnSoftmaxForward(handle_, CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_CHANNEL, &one, p.x.d,
                                         in[0]->data(), &zero, p.x.d, out.data()));
      return;
    }
    CudaBackend::forward(node, in, out, saved);
  }

  void backward_input(const Node& node, BackwardRule rule, std::span<const Tensor* const> in, const Tensor& out,
                      const Tensor& grad_out, std::span<Tensor* const> grad_in, const NodeSaved& saved) override {
    const float one = 1.0f;  // beta = 1: add into dx, as every backend must
    Tensor* dx = grad_in[0];
    if (node.kind == OpKind::Conv && conv_.count({&node, in[0]->shape()})) {
      require(grad_in.size() < 2 || !grad_in[1], "Conv (node '" + node.name + "'): weights must be constants");
      if (!dx) return;
      const ConvPlan& p = *conv_.at({&node, in[0]->shape()});
      DI_CUDNN_CHECK(cudnnConvolutionBackwardData(handle_, &one, p.w, in[1]->data(), p.y.d, grad_out.data(), p.conv,
                                                  p.bwd_algo, workspace(), workspace_bytes_, &one, p.x.d, dx->data()));
      return;
    }
    if (node.kind == OpKind::AveragePool && pool_.count({&node, in[0]->shape()})) {
      if (!dx) return;
      const PoolPlan& p = *pool_.at({&node, in[0]->shape()});
      DI_CUDNN_CHECK(cudnnPoolingBackward(handle_, p.pool, &one, p.y.d, out.data(), p.y.d, grad_out.data(), p.x.d,
                                          in[0]->data(), &one, p.x.d, dx->data()));
      return;
    }
    if (node.kind == OpKind::LRN && lrn_.count({&node, in[0]->shape()})) {
      if (!dx) return;
      const LrnPlan& p = *lrn_.at({&node, in[0]->shape()});
      DI_CUDNN_CHECK(cudnnLRNCrossChannelBackward(handle_, p.lrn, CUDNN_LRN_CROSS_CHANNEL_DIM1, &one, p.x.d,
                                                  out.data(), p.x.d, grad_out.data(), p.x.d, in[0]->data(), &one,
                                                  p.x.d, dx->data()));
      return;
    }
    if (node.kind == OpKind::Softmax && softmax_.count({&node, in[0]->shape()})) {
      if (!dx) return;
      const SoftmaxPlan& p = *softmax_.at({&node, in[0]->shape()});
      DI_CUDNN_CHECK(cudnnSoftmaxBackward(handle_, CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_CHANNEL, &one, p.x.d,
                                          out.data(), p.x.d, grad_out.data(), &one, p.x.d, dx->data()));
      return;
    }
    CudaBackend::backward_input(node, rule, in, out, grad_out, grad_in, saved);
  }

 private:
  void plan_conv(const Node& node, const Shape& x, const Shape& w) {
    const ConvGeometry g = conv_geometry(std::get<ConvParams>(node.params), x, w);
    // cuDNN pads symmetrically: only when that gives our output size (else our kernels run).
    const int oh = (g.H + 2 * g.pad_t - g.dil_h * (g.KH - 1) - 1) / g.stride_h + 1;
    const int ow = (g.W + 2 * g.pad_l - g.dil_w * (g.KW - 1) - 1) / g.stride_w + 1;
    if (oh != g.OH || ow != g.OW) return;
    auto p = std::make_unique<ConvPlan>();
    p->x.set(g.N, g.C, g.H, g.W);
    p->y.set(g.N, g.M, g.OH, g.OW);
    p->bias.set(1, g.M, 1, 1);
    DI_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, g.M, g.C / g.group, g.KH, g.KW));
    DI_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv, g.pad_t, g.pad_l, g.stride_h, g.stride_w, g.dil_h, g.dil_w,
                                                   CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    DI_CUDNN_CHECK(cudnnSetConvolutionGroupCount(p->conv, g.group));
    DI_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, CUDNN_FMA_MATH));  // FP32: no TF32
    cudnnConvolutionFwdAlgoPerf_t fwd[8];
    cudnnConvolutionBwdDataAlgoPerf_t bwd[8];
    int nf = 0, nb = 0;
    DI_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(handle_, p->x.d, p->w, p->conv, p->y.d, 8, &nf, fwd));
    DI_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle_, p->w, p->y.d, p->conv, p->x.d, 8, &nb, bwd));
    bool have_fwd = false, have_bwd = false;
    for (int i = 0; i < nf && !have_fwd; ++i)
      if (fwd[i].status == CUDNN_STATUS_SUCCESS && fwd[i].mathType != CUDNN_TENSOR_OP_MATH) {
        p->fwd_algo = fwd[i].algo;
        have_fwd = true;
      }
    for (int i = 0; i < nb && !have_bwd; ++i)
      if (bwd[i].status == CUDNN_STATUS_SUCCESS && bwd[i].mathType != CUDNN_TENSOR_OP_MATH) {
        p->bwd_algo = bwd[i].algo;
        have_bwd = true;
      }
    require(have_fwd && have_bwd, "cuDNN has no FP32 algorithm for Conv node '" + node.name + "'");
    size_t fwd_bytes = 0, bwd_bytes = 0;
    DI_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(handle_, p->x.d, p->w, p->conv, p->y.d, p->fwd_algo, &fwd_bytes));
    DI_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(handle_, p->w, p->y.d, p->conv, p->x.d, p->bwd_algo,
                                                                &bwd_bytes));
    reserve_workspace(std::max(fwd_bytes, bwd_bytes));
    conv_[{&node, x}] = std::move(p);
  }

  void plan_pool(const Node& node, const Shape& x) {
    const PoolParams& params = std::get<PoolParams>(node.params);
    const PoolGeometry g = pool_geometry(params, x);
    const int oh = (g.H + 2 * g.pad_t - g.KH) / g.stride_h + 1, ow = (g.W + 2 * g.pad_l - g.KW) / g.stride_w + 1;
    if (g.dil_h != 1 || g.dil_w != 1 || oh != g.OH || ow != g.OW || g.pad_b != g.pad_t || g.pad_r != g.pad_l) return;
    auto p = std::make_unique<PoolPlan>();
    p->x.set(g.N, g.C, g.H, g.W);
    p->y.set(g.N, g.C, g.OH, g.OW);
    const cudnnPoolingMode_t mode =
        g.count_include_pad ? CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING;
    DI_CUDNN_CHECK(cudnnSetPooling2dDescriptor(p->pool, mode, CUDNN_PROPAGATE_NAN, g.KH, g.KW, g.pad_t, g.pad_l,
                                               g.stride_h, g.stride_w));
    pool_[{&node, x}] = std::move(p);
  }

  void plan_lrn(const Node& node, const Shape& x) {
    const LrnParams& l = std::get<LrnParams>(node.params);
    if (l.size < 1 || l.size > 16 || l.beta < 0.01f || l.bias < 1e-5f || x.size() < 2) return;
    int64_t spatial = 1;
    for (size_t i = 2; i < x.size(); ++i) spatial *= x[i];
    if (!fits_int(x[0]) || !fits_int(x[1]) || !fits_int(spatial)) return;
    auto p = std::make_unique<LrnPlan>();
    p->x.set(int(x[0]), int(x[1]), int(spatial), 1);
    DI_CUDNN_CHECK(cudnnSetLRNDescriptor(p->lrn, unsigned(l.size), l.alpha, l.beta, l.bias));
    lrn_[{&node, x}] = std::move(p);
  }

  // The one workspace, grown at plan time only.
  void reserve_workspace(size_t bytes) {
    if (bytes <= workspace_bytes_) return;
    workspace_ = Tensor(Shape{int64_t((bytes + 3) / 4)}, runtime_);
    workspace_bytes_ = bytes;
  }
  void* workspace() { return workspace_bytes_ ? workspace_.data() : nullptr; }

  cudnnHandle_t handle_ = nullptr;
  Tensor workspace_;
  size_t workspace_bytes_ = 0;
  // Plans per node and input shape: one backend may serve Sessions planned for several shapes.
  using Key = std::pair<const Node*, Shape>;
  std::map<Key, std::unique_ptr<ConvPlan>> conv_;
  std::map<Key, std::unique_ptr<PoolPlan>> pool_;
  std::map<Key, std::unique_ptr<LrnPlan>> lrn_;
  std::map<Key, std::unique_ptr<SoftmaxPlan>> softmax_;
};

std::unique_ptr<Backend> make_cudnn_backend() { return std::make_unique<CudnnBackend>(); }

}  // namespace deepinside::cudnn
