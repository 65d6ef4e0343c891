#pragma once
// Numbers that compare two maps or reconstructions of the same shape (docs/reconstructions.md,
// docs/sanity.md). Each returns NaN where it is undefined (a constant map, no common support).
#include <cstdint>

namespace deepinside::viz {

// Pearson's correlation coefficient of a and b (n elements), accumulated in double.
double pearson(const float* a, const float* b, int64_t n);
// Spearman's rank correlation: Pearson's of the ranks, ties sharing their average rank.
double spearman(const float* a, const float* b, int64_t n);
// Among the elements where a and b are both nonzero, the fraction where their signs agree.
double sign_agreement(const float* a, const float* b, int64_t n);

}  // namespace deepinside::viz
