#include "viz/saliency.h"

#include <cmath>

#include "engine/error.h"
#include "viz/scores.h"

namespace deepinside::viz {

Tensor saliency_map(const Tensor& g) {
  require(g.rank() == 4, "a saliency map needs a gradient (N,C,H,W)");
  const int64_t N = g.dim(0), C = g.dim(1), HW = g.dim(2) * g.dim(3);
  Tensor map(Shape{N, g.dim(2), g.dim(3)});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < HW; ++i) {
      float best = 0.0f;
      for (int64_t c = 0; c < C; ++c) best = std::max(best, std::fabs(g[(n * C + c) * HW + i]));
      map[n * HW + i] = best;
    }
  return map;
}

SaliencyResult compute_saliency(Session& session, const Model& model, const Tensor& batch,
                                const std::vector<int>& classes, BackwardRule rule) {
  const int N = int(batch.dim(0));
  require(int(classes.size()) == N, "one class per image is needed");
  session.forward(batch);
  SaliencyResult r;
  // Seed dL/dS = one-hot at each image's class: L = sum_n S_{c_n}(I_n), and images do not interact,
  // so the batch gradient holds each image's own dS_c/dI.
  Tensor seed(session.shape(model.scores_value));
  for (int n = 0; n < N; ++n) {
    const std::vector<float> s = image_scores(session, model, n);
    const int c = class_or_top1(s, classes[n], model);
    r.classes.push_back(c);
    r.scores.push_back(s[c]);
    seed[int64_t(n) * model.classes + c] = 1.0f;
  }
  r.gradient = session.backward_input(model.scores_value, seed, rule).clone();
  r.map = saliency_map(r.gradient);
  return r;
}

}  // namespace deepinside::viz
