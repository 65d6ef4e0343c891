#pragma once
// Broadcasting binary ops (Add, Sub, Mul, Div), unary elementwise ops and n-ary Max, the reference.
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/backend.h"
#include "engine/op_params.h"

namespace deepinside::cpu {

namespace detail {  // helpers of this header only

// Strides of `shape` aligned to the rank of `out`, 0 along broadcast axes.
inline std::vector<int64_t> broadcast_strides(const Shape& shape, const Shape& out) {
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
inline void for_each_broadcast(const Shape& a_shape, const Shape& b_shape, const Shape& y_shape, F f) {
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

}  // namespace detail

// y = a (op) b with numpy broadcasting to y_shape, op in Add/Sub/Mul/Div.
template <class T>
void binary_forward(T* y, const T* a, const T* b, const Shape& a_shape, const Shape& b_shape,
                    const Shape& y_shape, OpKind op) {
  detail::for_each_broadcast(a_shape, b_shape, y_shape, [&](int64_t o, int64_t i, int64_t j) {
    switch (op) {
      case OpKind::Add: y[o] = a[i] + b[j]; break;
      case OpKind::Sub: y[o] = a[i] - b[j]; break;
      case OpKind::Mul: y[o] = a[i] * b[j]; break;
      default: y[o] = a[i] / b[j]; break;
    }
  });
}

// da (a_shape) += reduce(dy * d op/da) over broadcast axes; likewise db. Either may be nullptr.
template <class T>
void binary_backward_input(T* da, T* db, const T* dy, const T* a, const T* b,
                           const Shape& a_shape, const Shape& b_shape, const Shape& y_shape, OpKind op) {
  detail::for_each_broadcast(a_shape, b_shape, y_shape, [&](int64_t o, int64_t i, int64_t j) {
    const T d = dy[o];
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

// Unary elementwise op (Sigmoid .. Pow) of n elements, and its backward from x and y.
template <class T>
void unary_forward(T* y, const T* x, int64_t n, OpKind op, const UnaryParams& p) {
  for (int64_t i = 0; i < n; ++i) {
    const T v = x[i];
    switch (op) {
      case OpKind::Sigmoid: y[i] = T(1.0) / (T(1.0) + std::exp(-v)); break;
      case OpKind::Tanh: y[i] = std::tanh(v); break;
      case OpKind::Abs: y[i] = std::fabs(v); break;
      case OpKind::Softplus: y[i] = v > T(20.0) ? v : std::log1p(std::exp(v)); break;
      case OpKind::Sqrt: y[i] = std::sqrt(v); break;
      case OpKind::Exp: y[i] = std::exp(v); break;
      case OpKind::Log: y[i] = std::log(v); break;
      case OpKind::Neg: y[i] = -v; break;
      case OpKind::Clip: y[i] = std::min(std::max(v, T(p.min)), T(p.max)); break;
      case OpKind::Pow: y[i] = std::pow(v, T(p.exponent)); break;
      default: y[i] = v; break;
    }
  }
}

template <class T>
void unary_backward_input(T* dx, const T* dy, const T* x, const T* y, int64_t n,
                          OpKind op, const UnaryParams& p) {
  for (int64_t i = 0; i < n; ++i) {
    const T v = x[i], out = y[i];
    T slope = T(1.0);
    switch (op) {
      case OpKind::Sigmoid: slope = out * (T(1.0) - out); break;
      case OpKind::Tanh: slope = T(1.0) - out * out; break;
      case OpKind::Abs: slope = v > T(0.0) ? T(1.0) : (v < T(0.0) ? -T(1.0) : T(0.0)); break;
      case OpKind::Softplus: slope = T(1.0) / (T(1.0) + std::exp(-v)); break;
      case OpKind::Sqrt: slope = T(0.5) / out; break;
      case OpKind::Exp: slope = out; break;
      case OpKind::Log: slope = T(1.0) / v; break;
      case OpKind::Neg: slope = -T(1.0); break;
      case OpKind::Clip: slope = (v >= T(p.min) && v <= T(p.max)) ? T(1.0) : T(0.0); break;
      case OpKind::Pow: slope = T(p.exponent) * std::pow(v, T(p.exponent) - T(1.0)); break;
      default: break;
    }
    dx[i] += dy[i] * slope;
  }
}

// Elementwise max of k equal-shaped inputs; backward routes to the first input holding the max.
template <class T>
void max_forward(T* y, const T* const* xs, int k, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    T best = xs[0][i];
    for (int t = 1; t < k; ++t)  // a NaN wins and stays, as in max-pool
      if (xs[t][i] > best || (xs[t][i] != xs[t][i] && best == best)) best = xs[t][i];
    y[i] = best;
  }
}

template <class T>
void max_backward_input(T* const* dxs, const T* dy, const T* const* xs, int k, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    int winner = 0;  // the first input holding the maximum, like max-pool's tie rule
    for (int t = 1; t < k; ++t)
      if (xs[t][i] > xs[winner][i] || (xs[t][i] != xs[t][i] && xs[winner][i] == xs[winner][i])) winner = t;
    if (dxs[winner]) dxs[winner][i] += dy[i];
  }
}

}  // namespace deepinside::cpu
