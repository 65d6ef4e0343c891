#pragma once
// The parity drivers' shared machinery (tests/test_parity.cpp: fast CPU vs reference;
// tests/test_parity_cuda.cpp: CUDA kernels vs reference): DESIGN.md Sec. 4 tolerances, guarded
// buffers that catch out-of-bounds writes, random inputs, one-node graphs.
#include <algorithm>
#include <array>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/backend.h"
#include "engine/graph.h"
#include "engine/op_params.h"

namespace deepinside::parity {

using Vec = std::vector<double>;
inline constexpr int kGuard = 37;
inline constexpr float kGuardValue = -7.25e11f;
inline const BackwardRule kRules[] = {BackwardRule::gradient, BackwardRule::deconvnet, BackwardRule::guided};

struct Tol {
  double rtol = 0, atol = 0;
};
inline Tol exact() { return {0, 0}; }
inline Tol gemm_tol(int64_t k) { return {1e-4, 2e-5 * std::sqrt(double(k))}; }

// A float buffer with kGuard sentinels on each side.
template <class T>
struct Guarded {
  std::vector<T> buf;
  explicit Guarded(size_t n, T fill = T(0)) : buf(n + 2 * kGuard, T(kGuardValue)) {
    std::fill(buf.begin() + kGuard, buf.end() - kGuard, fill);
  }
  T* data() { return buf.data() + kGuard; }
  size_t size() const { return buf.size() - 2 * kGuard; }
  void require_guards(const std::string& what) const {
    for (int i = 0; i < kGuard; ++i) {
      INFO(what << ": write outside the buffer (guard " << i << ")");
      REQUIRE(buf[i] == T(kGuardValue));
      REQUIRE(buf[buf.size() - 1 - i] == T(kGuardValue));
    }
  }
};

inline std::vector<float> random_floats(std::mt19937_64& rng, size_t n, double zero_fraction = 0.0) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_real_distribution<double> z(0.0, 1.0);
  std::vector<float> v(n);
  for (float& e : v) e = z(rng) < zero_fraction ? 0.0f : u(rng);
  return v;
}
inline Vec to_double(const std::vector<float>& v) { return Vec(v.begin(), v.end()); }
inline Vec to_double(const float* p, size_t n) { return Vec(p, p + n); }
inline Tensor to_tensor(const std::vector<float>& v, const Shape& shape) {
  Tensor t(shape);
  std::copy(v.begin(), v.end(), t.data());
  return t;
}

// got vs the double reference: every element finite, within rtol*|ref| + atol.
inline void require_close(const std::string& what, const float* got, const Vec& ref, Tol tol) {
  int64_t bad = 0, worst_at = -1, non_finite = 0, first_non_finite = -1;
  double worst = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double g = got[i];
    if (!std::isfinite(g)) {
      if (non_finite++ == 0) first_non_finite = int64_t(i);
      continue;
    }
    const double excess = std::fabs(g - ref[i]) - (tol.rtol * std::fabs(ref[i]) + tol.atol);
    if (excess > 0) {
      ++bad;
      if (excess > worst) {
        worst = excess;
        worst_at = int64_t(i);
      }
    }
  }
  INFO(what << ": " << non_finite << " NaN/Inf elements (first at " << first_non_finite << ")");
  REQUIRE(non_finite == 0);
  INFO(what << ": " << bad << " of " << ref.size() << " elements outside rtol " << tol.rtol << ", atol "
            << tol.atol << "; worst at " << worst_at << ": "
            << (worst_at >= 0 ? got[worst_at] : 0.0f) << " vs " << (worst_at >= 0 ? ref[size_t(worst_at)] : 0.0));
  REQUIRE(bad == 0);
}

inline double max_abs(const Vec& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

// A graph of one node: input x, constants c0, c1, ..., output y.
inline Graph one_node_graph(OpKind kind, OpParams params, const Shape& x_shape, std::vector<Tensor> constants) {
  Graph g;
  const int x = g.add_value("x", x_shape);
  std::vector<int> inputs{x};
  for (size_t i = 0; i < constants.size(); ++i)
    inputs.push_back(g.add_constant("c" + std::to_string(i), std::move(constants[i])));
  const int y = g.add_value("y");
  g.add_node(Node{"op", kind, std::move(params), inputs, {y}});
  g.finalize(x, {y});
  return g;
}

inline Window2d window(std::array<int, 2> stride, std::array<int, 4> pads, std::array<int, 2> dilation = {1, 1}) {
  Window2d w;
  w.stride = stride;
  w.pads = pads;
  w.dilation = dilation;
  return w;
}

}  // namespace deepinside::parity
