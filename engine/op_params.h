#pragma once
// The ops the engine knows, one typed parameter struct per op (shared by every backend), and the
// geometry helpers that turn parameters + input shapes into the sizes the kernels loop over.
#include <array>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "engine/tensor.h"

namespace deepinside {

enum class OpKind {
  Conv, Relu, MaxPool, AveragePool, GlobalAveragePool, LRN, Gemm, MatMul,
  Add, Sub, Mul, Div, Max, Sum,
  Flatten, Reshape, Concat, Dropout, BatchNormalization, Softmax, Identity,
  Sigmoid, Tanh, Abs, Softplus, Sqrt, Exp, Log, Neg, Clip, Pow,
};

const char* op_name(OpKind kind);
bool is_unary_elementwise(OpKind kind);   // Sigmoid .. Pow
bool is_binary_elementwise(OpKind kind);  // Add, Sub, Mul, Div
bool is_copy_op(OpKind kind);             // Flatten, Reshape, Dropout, Identity: y = x, new shape

enum class AutoPad { notset, same_upper, same_lower, valid };

// Spatial window parameters shared by Conv and pooling (2-D only). pads = {top, left, bottom, right}.
struct Window2d {
  std::array<int, 2> kernel{0, 0};
  std::array<int, 2> stride{1, 1};
  std::array<int, 2> dilation{1, 1};
  std::array<int, 4> pads{0, 0, 0, 0};
  AutoPad auto_pad = AutoPad::notset;
};

struct ConvParams {
  Window2d window;  // kernel taken from the weight shape when the attribute is absent
  int group = 1;
};

struct PoolParams {
  Window2d window;
  bool ceil_mode = false;
  bool count_include_pad = false;  // AveragePool only
};

struct LrnParams {
  int size = 5;
  float alpha = 1e-4f;
  float beta = 0.75f;
  float bias = 1.0f;
};

struct GemmParams {
  bool trans_a = false;
  bool trans_b = false;
  float alpha = 1.0f;
  float beta = 1.0f;
};

struct AxisParams {  // Flatten, Concat
  int axis = 1;
};

struct ReshapeParams {
  std::vector<int64_t> target;  // ONNX semantics: 0 copies the input dim (unless allowzero), -1 inferred
  bool allowzero = false;
};

struct SoftmaxParams {
  int axis = -1;
  bool coerce_2d = false;  // opset < 13: input flattened to 2-D at axis, softmax over the second dim
};

struct BatchNormParams {
  float epsilon = 1e-5f;
};

struct UnaryParams {  // Clip bounds and Pow's constant exponent
  float min = -3.402823466e38f;
  float max = 3.402823466e38f;
  float exponent = 1.0f;
};

using OpParams = std::variant<std::monostate, ConvParams, PoolParams, LrnParams, GemmParams,
                              AxisParams, ReshapeParams, SoftmaxParams, BatchNormParams, UnaryParams>;

// Sizes a conv kernel loops over. x is (N,C,H,W), w is (M, C/group, KH, KW), y is (N,M,OH,OW).
struct ConvGeometry {
  int N, C, H, W, M, OH, OW, KH, KW;
  int stride_h, stride_w, dil_h, dil_w, pad_t, pad_l, group;
};

// Sizes a pooling kernel loops over. x is (N,C,H,W), y is (N,C,OH,OW). pad_b/pad_r bound the padded
// extent that count_include_pad averages over.
struct PoolGeometry {
  int N, C, H, W, OH, OW, KH, KW;
  int stride_h, stride_w, dil_h, dil_w, pad_t, pad_l, pad_b, pad_r;
  bool count_include_pad;
};

// Throws Error naming the problem when the shapes do not fit the parameters.
ConvGeometry conv_geometry(const ConvParams& p, const Shape& x, const Shape& w);
PoolGeometry pool_geometry(const PoolParams& p, const Shape& x);

}  // namespace deepinside
