#include "engine/op_params.h"

#include <algorithm>

#include "engine/error.h"

namespace deepinside {

const char* op_name(OpKind kind) {
  switch (kind) {
    case OpKind::Conv: return "Conv";
    case OpKind::Relu: return "Relu";
    case OpKind::MaxPool: return "MaxPool";
    case OpKind::AveragePool: return "AveragePool";
    case OpKind::GlobalAveragePool: return "GlobalAveragePool";
    case OpKind::LRN: return "LRN";
    case OpKind::Gemm: return "Gemm";
    case OpKind::MatMul: return "MatMul";
    case OpKind::Add: return "Add";
    case OpKind::Sub: return "Sub";
    case OpKind::Mul: return "Mul";
    case OpKind::Div: return "Div";
    case OpKind::Max: return "Max";
    case OpKind::Sum: return "Sum";
    case OpKind::Flatten: return "Flatten";
    case OpKind::Reshape: return "Reshape";
    case OpKind::Concat: return "Concat";
    case OpKind::Dropout: return "Dropout";
    case OpKind::BatchNormalization: return "BatchNormalization";
    case OpKind::Softmax: return "Softmax";
    case OpKind::Identity: return "Identity";
    case OpKind::Sigmoid: return "Sigmoid";
    case OpKind::Tanh: return "Tanh";
    case OpKind::Abs: return "Abs";
    case OpKind::Softplus: return "Softplus";
    case OpKind::Sqrt: return "Sqrt";
    case OpKind::Exp: return "Exp";
    case OpKind::Log: return "Log";
    case OpKind::Neg: return "Neg";
    case OpKind::Clip: return "Clip";
    case OpKind::Pow: return "Pow";
  }
  return "?";
}

bool is_unary_elementwise(OpKind kind) {
  switch (kind) {
    case OpKind::Sigmoid: case OpKind::Tanh: case OpKind::Abs: case OpKind::Softplus:
    case OpKind::Sqrt: case OpKind::Exp: case OpKind::Log: case OpKind::Neg:
    case OpKind::Clip: case OpKind::Pow:
      return true;
    default:
      return false;
  }
}

bool is_binary_elementwise(OpKind kind) {
  return kind == OpKind::Add || kind == OpKind::Sub || kind == OpKind::Mul || kind == OpKind::Div;
}

bool is_copy_op(OpKind kind) {
  return kind == OpKind::Flatten || kind == OpKind::Reshape || kind == OpKind::Dropout ||
         kind == OpKind::Identity;
}

namespace {

struct Extent {
  int out, pad_begin, pad_end;
};

// Output length and resolved pads along one spatial axis, following ONNX (and, for ceil mode,
// the rule that the last window must start inside the input or its leading padding).
Extent window_extent(int in, int kernel, int stride, int dilation, int pad_begin, int pad_end,
                     AutoPad auto_pad, bool ceil_mode) {
  const int effective = (kernel - 1) * dilation + 1;
  if (auto_pad == AutoPad::same_upper || auto_pad == AutoPad::same_lower) {
    const int out = (in + stride - 1) / stride;
    const int total = std::max(0, (out - 1) * stride + effective - in);
    const int small = total / 2, large = total - small;
    return auto_pad == AutoPad::same_upper ? Extent{out, small, large} : Extent{out, large, small};
  }
  if (auto_pad == AutoPad::valid) pad_begin = pad_end = 0;
  const int span = in + pad_begin + pad_end - effective;
  require(span >= 0, "window of " + std::to_string(effective) + " does not fit input of " +
                         std::to_string(in) + " with pads " + std::to_string(pad_begin) + "," +
                         std::to_string(pad_end));
  int out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad_begin) --out;
  return Extent{out, pad_begin, pad_end};
}

void require_rank4(const Shape& x, const char* what) {
  require(x.size() == 4, std::string(what) + " needs a 4-D input (N,C,H,W), got " +
                             shape_to_string(x));
}

}  // namespace

ConvGeometry conv_geometry(const ConvParams& p, const Shape& x, const Shape& w) {
  require_rank4(x, "Conv");
  require(w.size() == 4, "Conv needs 4-D weights (M,C/group,KH,KW), got " + shape_to_string(w));
  const Window2d& win = p.window;
  ConvGeometry g{};
  g.N = int(x[0]); g.C = int(x[1]); g.H = int(x[2]); g.W = int(x[3]);
  g.M = int(w[0]); g.KH = int(w[2]); g.KW = int(w[3]);
  g.group = p.group;
  require(g.group >= 1 && g.C % g.group == 0 && g.M % g.group == 0,
          "Conv group " + std::to_string(g.group) + " does not divide channels " +
              std::to_string(g.C) + " and filters " + std::to_string(g.M));
  require(w[1] * g.group == g.C, "Conv weights " + shape_to_string(w) + " expect " +
                                     std::to_string(w[1] * g.group) + " input channels, got " +
                                     std::to_string(g.C));
  require(win.kernel[0] == 0 || (win.kernel[0] == g.KH && win.kernel[1] == g.KW),
          "Conv kernel_shape attribute disagrees with weight shape " + shape_to_string(w));
  g.stride_h = win.stride[0]; g.stride_w = win.stride[1];
  g.dil_h = win.dilation[0]; g.dil_w = win.dilation[1];
  const Extent eh = window_extent(g.H, g.KH, g.stride_h, g.dil_h, win.pads[0], win.pads[2], win.auto_pad, false);
  const Extent ew = window_extent(g.W, g.KW, g.stride_w, g.dil_w, win.pads[1], win.pads[3], win.auto_pad, false);
  g.OH = eh.out; g.OW = ew.out; g.pad_t = eh.pad_begin; g.pad_l = ew.pad_begin;
  return g;
}

PoolGeometry pool_geometry(const PoolParams& p, const Shape& x) {
  require_rank4(x, "pooling");
  const Window2d& win = p.window;
  PoolGeometry g{};
  g.N = int(x[0]); g.C = int(x[1]); g.H = int(x[2]); g.W = int(x[3]);
  g.KH = win.kernel[0]; g.KW = win.kernel[1];
  require(g.KH > 0 && g.KW > 0, "pooling needs kernel_shape");
  g.stride_h = win.stride[0]; g.stride_w = win.stride[1];
  g.dil_h = win.dilation[0]; g.dil_w = win.dilation[1];
  const Extent eh = window_extent(g.H, g.KH, g.stride_h, g.dil_h, win.pads[0], win.pads[2], win.auto_pad, p.ceil_mode);
  const Extent ew = window_extent(g.W, g.KW, g.stride_w, g.dil_w, win.pads[1], win.pads[3], win.auto_pad, p.ceil_mode);
  g.OH = eh.out; g.OW = ew.out;
  g.pad_t = eh.pad_begin; g.pad_b = eh.pad_end; g.pad_l = ew.pad_begin; g.pad_r = ew.pad_end;
  g.count_include_pad = p.count_include_pad;
  return g;
}

}  // namespace deepinside
