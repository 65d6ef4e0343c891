#pragma once
// Shared helpers of the test executables: where the data is, and tolerance checks that report
// the worst element when they fail.
#include <cmath>
#include <filesystem>
#include <string>

#include <catch2/catch.hpp>

#include "engine/tensor.h"

namespace deepinside::test {

inline std::string source_path(const std::string& relative) { return std::string(DEEPINSIDE_SOURCE_DIR) + "/" + relative; }
inline std::string shared_path(const std::string& relative) { return std::string(DEEPINSIDE_SHARED_DIR) + "/" + relative; }

// ../shared is absent in a user's fresh clone: tests that need it say so and skip.
inline bool have_shared(const std::string& relative) {
  if (std::filesystem::exists(shared_path(relative))) return true;
  WARN("skipped: " << shared_path(relative) << " is absent (../shared holds the real models and photos)");
  return false;
}

struct Mismatch {
  int64_t count = 0, worst_at = -1;
  double worst_excess = 0, worst_value = 0, worst_ref = 0;
};

// Counts elements with |x - ref| > rtol * |ref| + atol, remembering the worst.
template <class Ref>
Mismatch compare(const float* x, const Ref& ref, int64_t n, double rtol, double atol) {
  Mismatch m;
  for (int64_t i = 0; i < n; ++i) {
    const double r = double(ref[i]), v = double(x[i]);
    const double excess = std::fabs(v - r) - (rtol * std::fabs(r) + atol);
    if (!(excess <= 0)) {  // NaN counts as a mismatch
      ++m.count;
      if (!(excess <= m.worst_excess) || m.worst_at < 0) {
        m.worst_excess = excess;
        m.worst_at = i;
        m.worst_value = v;
        m.worst_ref = r;
      }
    }
  }
  return m;
}

#define REQUIRE_CLOSE(x, ref, n, rtol, atol)                                                              \
  do {                                                                                                    \
    const auto mismatch_ = ::deepinside::test::compare((x), (ref), (n), (rtol), (atol));                  \
    INFO(mismatch_.count << " of " << (n) << " elements outside tolerance; worst at " << mismatch_.worst_at \
                         << ": " << mismatch_.worst_value << " vs reference " << mismatch_.worst_ref);   \
    REQUIRE(mismatch_.count == 0);                                                                        \
  } while (0)

inline double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

}  // namespace deepinside::test
