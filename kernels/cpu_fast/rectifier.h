#pragma once
// The rectifier's three backward rules (DESIGN.md Sec. 3, docs/derivations.md "ReLU rules") as one
// inline element function, shared by the Relu kernels (activation.cpp) and the packing of a fused
// Relu's gradient (conv.cpp), so the rules are written once in the fast path.
#include <type_traits>

#include "engine/backend.h"

namespace deepinside::cpu_fast {

// d(loss)/d(Relu input) for one element, given g = d(loss)/d(Relu output) and x the Relu's input
// (or its output: x > 0 and max(0, x) > 0 are the same test).
template <BackwardRule Rule>
inline float rectified_gradient(float g, float x) {
  if constexpr (Rule == BackwardRule::gradient)
    return x > 0.0f ? g : 0.0f;
  else if constexpr (Rule == BackwardRule::deconvnet)
    return g > 0.0f ? g : 0.0f;
  else
    return (x > 0.0f && g > 0.0f) ? g : 0.0f;
}

// Calls f(std::integral_constant<BackwardRule, rule>{}): one instantiation per rule, so the loops
// inside f are vectorised without a branch on the rule.
template <class F>
inline void with_rule(BackwardRule rule, F&& f) {
  switch (rule) {
    case BackwardRule::gradient: f(std::integral_constant<BackwardRule, BackwardRule::gradient>{}); return;
    case BackwardRule::deconvnet: f(std::integral_constant<BackwardRule, BackwardRule::deconvnet>{}); return;
    case BackwardRule::guided: f(std::integral_constant<BackwardRule, BackwardRule::guided>{}); return;
  }
}

}  // namespace deepinside::cpu_fast
