#include "viz/compare.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

namespace deepinside::viz {

namespace {

template <class T>
double pearson_of(const T* a, const T* b, int64_t n) {
  double ma = 0, mb = 0;
  for (int64_t i = 0; i < n; ++i) ma += a[i], mb += b[i];
  ma /= double(n);
  mb /= double(n);
  double sab = 0, saa = 0, sbb = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double da = a[i] - ma, db = b[i] - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  if (!(saa > 0 && sbb > 0)) return std::numeric_limits<double>::quiet_NaN();
  return sab / std::sqrt(saa * sbb);
}

// Ranks 1..n, ties get the mean of the ranks they span.
std::vector<double> ranks(const float* v, int64_t n) {
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [v](int64_t i, int64_t j) { return v[i] < v[j]; });
  std::vector<double> r(n);
  for (int64_t i = 0; i < n;) {
    int64_t j = i;
    while (j + 1 < n && v[order[j + 1]] == v[order[i]]) ++j;
    const double mean_rank = 0.5 * double(i + j) + 1.0;
    for (int64_t k = i; k <= j; ++k) r[order[k]] = mean_rank;
    i = j + 1;
  }
  return r;
}

}  // namespace

double pearson(const float* a, const float* b, int64_t n) { return pearson_of(a, b, n); }

double spearman(const float* a, const float* b, int64_t n) {
  const std::vector<double> ra = ranks(a, n), rb = ranks(b, n);
  return pearson_of(ra.data(), rb.data(), n);
}

double sign_agreement(const float* a, const float* b, int64_t n) {
  int64_t both = 0, same = 0;
  for (int64_t i = 0; i < n; ++i)
    if (a[i] != 0.0f && b[i] != 0.0f) {
      ++both;
      same += (a[i] > 0) == (b[i] > 0);
    }
  return both ? double(same) / double(both) : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace deepinside::viz
