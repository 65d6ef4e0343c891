#pragma once
// Image-specific class saliency (Simonyan et al. 2013, Sec. 3): w = dS_c/dI at the image, by one
// backward pass; the map is M_ij = max_c |w_h(i,j,c)|. A batch is one forward and one backward.
#include <vector>

#include "engine/backend.h"
#include "engine/model.h"
#include "engine/session.h"

namespace deepinside::viz {

struct SaliencyResult {
  std::vector<int> classes;  // the class explained for each image
  std::vector<float> scores; // its score S_c
  Tensor gradient;           // (N,C,H,W) dS_c/dI for each image's own class
  Tensor map;                // (N,H,W) max over channels of |gradient|
};

// classes[n] = -1 picks image n's top-1 class. session must be planned for batch.shape().
SaliencyResult compute_saliency(Session& session, const Model& model, const Tensor& batch,
                                const std::vector<int>& classes, BackwardRule rule);

// M (N,H,W) = max over c of |g (N,C,H,W)|.
Tensor saliency_map(const Tensor& gradient);

}  // namespace deepinside::viz
