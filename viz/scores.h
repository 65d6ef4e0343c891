#pragma once
// Class scores after a forward pass: the unnormalised S_c per image, softmax probabilities, top-k.
#include <string>
#include <vector>

#include "engine/model.h"
#include "engine/session.h"

namespace deepinside::viz {

struct ClassScore {
  int cls = 0;
  std::string label;
  float score = 0.0f;  // unnormalised S_c
  float prob = 0.0f;   // softmax over all S
};

// S (classes) of image n after forward; throws Error when a score is NaN or infinite.
std::vector<float> image_scores(const Session& session, const Model& model, int n);
std::vector<float> softmax(const std::vector<float>& scores);
// The k best classes, best first (ties: lower class index first).
std::vector<ClassScore> top_classes(const std::vector<float>& scores, int k, const Model& model);
// Throws Error when c is not a class index of the model.
void check_class_index(int c, const Model& model);
// The class a method explains: requested when it is >= 0 (checked), else the top-1 of scores.
int class_or_top1(const std::vector<float>& scores, int requested, const Model& model);

}  // namespace deepinside::viz
