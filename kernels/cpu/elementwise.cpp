// Broadcasting binary ops (Add, Sub, Mul, Div), unary elementwise ops and n-ary Max, the reference.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/reference.h"

namespace deepinside::cpu {

namespace {

// Strides of `shape` aligned to the rank of `out`, 0 along broadcast axes.
std::vector<int64_t> broadcast_strides(const Shape& shape, const Shape& out) {
  std::vector<int64_t> strides(out.size(), 0);
  int64_t stride = 1;
  for (int i = int(shape.size()) - 1, o = int(out.size()) - 1; i >= 0; --i, --o) {
    if (shape[i] != 1) strides[o] = stride;
    stride *= shape[i];
  }
  return strides;
}

// Calls f(out_index, a_index, b_index) for every output element, in row-major order.
template <class F>
void for_each_broadcast(const Shape& a_shape, const Shape& b_shape, const Shape& y_shape, F f) {
  const auto sa = broadcast_strides(a_shape, y_shape), sb = broadcast_strides(b_shape, y_shape);
  const int rank = int(y_shape.size());
  std::vector<int64_t> idx(rank, 0);
  const int64_t total = shape_numel(y_shape);
  int64_t ia = 0, ib = 0;
  for (int64_t o = 0; o < total; ++o) {
    f(o, ia, ib);
    for (int d = rank - 1; d >= 0; --d) {  // odometer increment
      ++idx[d];
      ia += sa[d];
      ib += sb[d];
      if (idx[d] < y_shape[d]) break;
      ia -= sa[d] * y_shape[d];
      ib -= sb[d] * y_shape[d];
      idx[d] = 0;
    }
  }
}

}  // namespace

void binary_forward(float* y, const float* a, const float* b, const Shape& a_shape, const Shape& b_shape,
                    const Shape& y_shape, OpKind op) {
  for_each_broadcast(a_shape, b_shape, y_shape, [&](int64_t o, int64_t i, int64_t j) {
    switch (op) {
      case OpKind::Add: y[o] = a[i] + b[j]; break;
      case OpKind::Sub: y[o] = a[i] - b[j]; break;
      case OpKind::Mul: y[o] = a[i] * b[j]; break;
      default: y[o] = a[i] / b[j]; break;
    }
  });
}

void binary_backward_input(float* da, float* db, const float* dy, const float* a, const float* b,
                           const Shape& a_shape, const Shape& b_shape, const Shape& y_shape, OpKind op) {
  for_each_broadcast(a_shape, b_shape, y_shape, [&](int64_t o, int64_t i, int64_t j) {
    const float d = dy[o];
    switch (op) {
      case OpKind::Add:
        if (da) da[i] += d;
        if (db) db[j] += d;
        break;
      case OpKind::Sub:
        if (da) da[i] += d;
        if (db) db[j] -= d;
        break;
      case OpKind::Mul:
        if (da) da[i] += d * b[j];
        if (db) db[j] += d * a[i];
        break;
      default:  // y = a / b: dy/da = 1/b, dy/db = -a/b^2
        if (da) da[i] += d / b[j];
        if (db) db[j] -= d * a[i] / (b[j] * b[j]);
        break;
    }
  });
}

void unary_forward(float* y, const float* x, int64_t n, OpKind op, const UnaryParams& p) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    switch (op) {
      case OpKind::Sigmoid: y[i] = 1.0f / (1.0f + std::exp(-v)); break;
      case OpKind::Tanh: y[i] = std::tanh(v); break;
      case OpKind::Abs: y[i] = std::fabs(v); break;
      case OpKind::Softplus: y[i] = v > 20.0f ? v : std::log1p(std::exp(v)); break;
      case OpKind::Sqrt: y[i] = std::sqrt(v); break;
      case OpKind::Exp: y[i] = std::exp(v); break;
      case OpKind::Log: y[i] = std::log(v); break;
      case OpKind::Neg: y[i] = -v; break;
      case OpKind::Clip: y[i] = std::min(std::max(v, p.min), p.max); break;
      case OpKind::Pow: y[i] = std::pow(v, p.exponent); break;
      default: y[i] = v; break;
    }
  }
}

void unary_backward_input(float* dx, const float* dy, const float* x, const float* y, int64_t n,
                          OpKind op, const UnaryParams& p) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i], out = y[i];
    float slope = 1.0f;
    switch (op) {
      case OpKind::Sigmoid: slope = out * (1.0f - out); break;
      case OpKind::Tanh: slope = 1.0f - out * out; break;
      case OpKind::Abs: slope = v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : 0.0f); break;
      case OpKind::Softplus: slope = 1.0f / (1.0f + std::exp(-v)); break;
      case OpKind::Sqrt: slope = 0.5f / out; break;
      case OpKind::Exp: slope = out; break;
      case OpKind::Log: slope = 1.0f / v; break;
      case OpKind::Neg: slope = -1.0f; break;
      case OpKind::Clip: slope = (v >= p.min && v <= p.max) ? 1.0f : 0.0f; break;
      case OpKind::Pow: slope = p.exponent * std::pow(v, p.exponent - 1.0f); break;
      default: break;
    }
    dx[i] += dy[i] * slope;
  }
}

void max_forward(float* y, const float* const* xs, int k, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float best = xs[0][i];
    for (int t = 1; t < k; ++t) best = xs[t][i] > best ? xs[t][i] : best;
    y[i] = best;
  }
}

void max_backward_input(float* const* dxs, const float* dy, const float* const* xs, int k, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    int winner = 0;  // the first input holding the maximum, like max-pool's tie rule
    for (int t = 1; t < k; ++t)
      if (xs[t][i] > xs[winner][i]) winner = t;
    if (dxs[winner]) dxs[winner][i] += dy[i];
  }
}

}  // namespace deepinside::cpu
