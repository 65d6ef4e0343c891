#include "viz/scores.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/error.h"

namespace deepinside::viz {

std::vector<float> image_scores(const Session& session, const Model& model, int n) {
  const Tensor& s = session.value(model.scores_value);
  const int64_t per_image = s.numel() / s.dim(0);
  require(per_image == model.classes, "scores value has " + std::to_string(per_image) + " entries per image, "
                                          "expected " + std::to_string(model.classes));
  std::vector<float> out(s.data() + n * per_image, s.data() + (n + 1) * per_image);
  for (float v : out)
    require(std::isfinite(v), "the model produced a NaN or infinite class score (value '" +
                                  model.graph.value(model.scores_value).name + "')");
  return out;
}

std::vector<float> softmax(const std::vector<float>& scores) {
  const float peak = *std::max_element(scores.begin(), scores.end());
  double total = 0.0;
  for (float s : scores) total += std::exp(double(s - peak));
  std::vector<float> p;
  for (float s : scores) p.push_back(float(std::exp(double(s - peak)) / total));
  return p;
}

std::vector<ClassScore> top_classes(const std::vector<float>& scores, int k, const Model& model) {
  std::vector<int> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  k = std::clamp(k, 0, int(scores.size()));
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int a, int b) {
    return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
  });
  const std::vector<float> probs = softmax(scores);
  std::vector<ClassScore> top;
  for (int i = 0; i < k; ++i) top.push_back({order[i], model.label(order[i]), scores[order[i]], probs[order[i]]});
  return top;
}

void check_class_index(int c, const Model& model) {
  require(c >= 0 && c < model.classes, "class " + std::to_string(c) + " is out of range: the model has " +
                                           std::to_string(model.classes) + " classes (0.." +
                                           std::to_string(model.classes - 1) + ")");
}

int class_or_top1(const std::vector<float>& scores, int requested, const Model& model) {
  if (requested < 0) return top_classes(scores, 1, model).at(0).cls;
  check_class_index(requested, model);
  return requested;
}

}  // namespace deepinside::viz
