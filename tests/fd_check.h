#pragma once
// Finite-difference gradient checks in double, after Caffe's GradientChecker: central differences
// with step h = 1e-3, acceptance |analytic - numeric| <= tol * max(|analytic|, |numeric|, 1), and a
// kink guard (the caller's skip predicate) that leaves out coordinates where the function is not
// differentiable within the step (ReLU/Abs/Clip kinks, max-pool and Max near-ties).
// The central difference has truncation error h^2 |f'''| / 6 ~ 1.7e-7 |f'''|, so tests draw
// inputs where the third derivative is moderate (Log away from 0, divisors away from 0); a wrong
// formula misses by orders of magnitude more. Linear ops (conv, pooling, Gemm, Concat) agree to
// rounding, ~1e-12.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

namespace deepinside::fd {

using Vec = std::vector<double>;

constexpr double kStep = 1e-3;  // Caffe's step for doubles
constexpr double kTol = 1e-6;   // relative, floored at 1 (see check())

struct Report {
  int64_t checked = 0, skipped = 0, failed = 0;
  double worst = 0.0;  // largest |a - n| / max(|a|, |n|, 1) over the checked coordinates
  std::string first_failure;
};

inline Vec random_vec(std::mt19937_64& rng, size_t n, double lo = -1.0, double hi = 1.0) {
  std::uniform_real_distribution<double> u(lo, hi);
  Vec v(n);
  for (double& e : v) e = u(rng);
  return v;
}

inline double dot(const Vec& a, const Vec& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Compares analytic[i] with (L(x + h e_i) - L(x - h e_i)) / 2h for every i with !skip(i). x is
// perturbed in place (and restored exactly); loss() must read it. skip(i) sees the unperturbed x.
template <class Loss, class Skip>
Report check(Vec& x, const Vec& analytic, Loss&& loss, Skip&& skip, double step = kStep,
             double tol = kTol) {
  REQUIRE(analytic.size() == x.size());
  Report r;
  for (size_t i = 0; i < x.size(); ++i) {
    if (skip(i)) {
      ++r.skipped;
      continue;
    }
    const double x0 = x[i];
    x[i] = x0 + step;
    const double plus = loss();
    x[i] = x0 - step;
    const double minus = loss();
    x[i] = x0;
    const double numeric = (plus - minus) / (2.0 * step);
    const double err = std::fabs(analytic[i] - numeric) /
                       std::max({std::fabs(analytic[i]), std::fabs(numeric), 1.0});
    r.worst = std::max(r.worst, err);
    ++r.checked;
    if (err > tol && ++r.failed == 1)
      r.first_failure = "coordinate " + std::to_string(i) + ": analytic " + std::to_string(analytic[i]) +
                        ", numeric " + std::to_string(numeric) + ", x " + std::to_string(x0);
  }
  return r;
}

template <class Loss>
Report check(Vec& x, const Vec& analytic, Loss&& loss) {
  return check(x, analytic, loss, [](size_t) { return false; });
}

// Requires no failure and that at least min_checked of the coordinates were checked (the kink
// guard must not hollow the test out). Set DEEPINSIDE_FD_VERBOSE=1 to print the counts.
inline void require_ok(const Report& r, const std::string& what, double min_checked = 0.75) {
  if (std::getenv("DEEPINSIDE_FD_VERBOSE"))
    std::printf("fd %-60s checked %5lld skipped %4lld worst %.2e\n", what.c_str(),
                static_cast<long long>(r.checked), static_cast<long long>(r.skipped), r.worst);
  INFO(what << ": " << r.checked << " checked, " << r.skipped << " skipped, " << r.failed
            << " failed, worst relative error " << r.worst << "; first failure: " << r.first_failure);
  CHECK(r.failed == 0);
  CHECK(r.checked > 0);
  CHECK(double(r.checked) >= min_checked * double(r.checked + r.skipped));
}

// Every *_backward_input ADDS into its dx buffers. Runs backward(dxs) into zero-filled buffers and
// again into one-filled buffers, requires the second to be 1 + the first, and returns the first.
// backward receives std::vector<double*> with one pointer per entry of sizes.
template <class Backward>
std::vector<Vec> backward_adds(const std::vector<size_t>& sizes, Backward&& backward) {
  std::vector<Vec> zero, one;
  std::vector<double*> pz, po;
  for (size_t n : sizes) {
    zero.emplace_back(n, 0.0);
    one.emplace_back(n, 1.0);
  }
  for (size_t t = 0; t < sizes.size(); ++t) {
    pz.push_back(zero[t].data());
    po.push_back(one[t].data());
  }
  backward(pz);
  backward(po);
  for (size_t t = 0; t < sizes.size(); ++t) {
    size_t bad = sizes[t];
    for (size_t i = 0; i < sizes[t] && bad == sizes[t]; ++i)  // rounding differs when a coordinate
      if (std::fabs(one[t][i] - (1.0 + zero[t][i])) >        // receives several additions
          1e-12 * std::max(1.0, std::fabs(zero[t][i])))
        bad = i;
    INFO("backward must add into dx: input " << t << ", first mismatch at element " << bad);
    REQUIRE(bad == sizes[t]);
  }
  return zero;
}

template <class Backward>
Vec backward_adds(size_t n, Backward&& backward) {
  return backward_adds(std::vector<size_t>{n}, [&](std::vector<double*>& d) { backward(d[0]); })[0];
}

}  // namespace deepinside::fd
