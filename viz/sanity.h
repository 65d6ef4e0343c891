#pragma once
// Sanity checks for saliency methods (Adebayo et al. 2018, "Sanity Checks for Saliency Maps";
// docs/sanity.md): cascading randomisation of the weights from the top layer down, and the Spearman rank
// correlation of each method's map with its map on the trained weights. A method whose map barely
// changes when the weights that make the class score are destroyed does not explain the model.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/model.h"
#include "viz/saliency_extras.h"

namespace deepinside::viz {

// Every map the sanity check can compare, each (H,W) at the input's resolution:
// gradient, deconvnet, guided (one backward pass; max_c |.|), smoothgrad, gradxinput, ig (zero
// baseline), gradcam, guided-gradcam.
const std::vector<std::string>& sanity_method_names();

struct SanityOptions {
  std::vector<std::string> methods = {"gradient", "guided", "smoothgrad", "gradxinput", "gradcam", "guided-gradcam"};
  int depth = -1;        // how many layers to randomise, top first; -1: all
  uint64_t seed = 0;     // of the random weights (and SmoothGrad's noise)
  int batch = 16;        // SmoothGrad's and IG's batch bound
  int gradcam_layer = -1;  // -1: default_gradcam_layer
  SmoothGradOptions smoothgrad;
  IntegratedGradientsOptions ig;
};

struct SanityStep {
  std::string layer;        // the node randomised at this step, on top of the earlier ones ("" = trained)
  std::vector<double> rho;  // per method (SanityReport::methods order): Spearman with the trained map
};

struct SanityReport {
  int cls = -1;
  std::vector<std::string> methods;
  std::vector<SanityStep> steps;  // steps[0] = the trained weights (rho 1)
};

// The layers with learned weights (Conv, Gemm, MatMul with a constant operand) between the input and the
// scores, from the top (nearest the scores) down: the order of cascading randomisation.
std::vector<int> layers_top_down(const Model& model);

// Replaces every constant input of the node (weights, bias) by draws from a zero-mean normal truncated
// at two standard deviations, the standard deviation being that of the tensor's own values, from (seed,
// node index): a fresh initialisation at the layer's trained scale (docs/sanity.md).
void randomize_layer(Graph& graph, int node_index, uint64_t seed);

// One map per method on the model's current weights. image (C,H,W); cls >= 0.
std::vector<Tensor> sanity_maps(const Model& model, Backend& backend, const Tensor& image, int cls,
                                const SanityOptions& options);

// Cascading randomisation: maps on the trained weights, then after randomising layers_top_down()[0],
// then [0] and [1], ... (depth steps). cls = -1 explains the trained model's top-1 at every step. The
// model's weights are changed during the call and restored before it returns (also on an exception).
// on_maps(step, maps) sees every step's maps (for pictures) without the report keeping them.
SanityReport cascading_randomization(Model& model, Backend& backend, const Tensor& image, int cls,
                                     const SanityOptions& options,
                                     const std::function<void(int step, const std::vector<Tensor>& maps)>& on_maps = {});

}  // namespace deepinside::viz
