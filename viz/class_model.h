#pragma once
// Class model visualisation (Simonyan et al. 2013, Sec. 2) and activation maximisation of any unit or
// channel: thin users of the gradient ascent of viz/optimize.h. docs/class-models.md.
//
//   I* = arg max_I  S_c(I) - lambda ||I||^2
//
// I is the zero-centred image (the dataset mean subtracted), the ascent starts from I = 0 (the
// mean image) and the mean is added back for display.
#include <functional>
#include <string>
#include <vector>

#include "viz/optimize.h"

namespace deepinside::viz {

// The paper's settings as deepinside chose them (docs/class-models.md says why): plain gradient
// ascent with a fixed step from the zero image, lambda = 1e-5, no other regulariser.
AscentSettings class_model_defaults();
// Activation maximisation: from faint noise (a ReLU unit that is off at the mean image has no
// gradient there), 200 normalised steps of 1 grey level, lambda 1e-4 against the unit gradient.
AscentSettings neuron_defaults();

// How the result is classified by the whole network.
struct Classification {
  std::vector<float> score, prob;  // S_c and P_c of each image's own class
  std::vector<int> top1;
};
// Classifies images given in grey levels (N,C,H,W at the model's size).
Classification classify_levels(const Model& model, Backend& backend, const Tensor& levels, const std::vector<int>& classes);
// The same for the pictures as written to PNG (mean added, rounded and clamped to 0..255).
Classification classify_pictures(const Model& model, Backend& backend, const Tensor& levels,
                                 const std::vector<int>& classes);

struct ClassModelResult {
  std::vector<int> classes;
  AscentResult ascent;                       // ascent.levels: the class models, (N,C,H,W) grey levels
  std::vector<std::vector<float>> score_curve, prob_curve;  // S_c, P_c at every forward, [forward][n]
  Classification start, result, picture;     // at the zero image, the result, the 8-bit picture
};

// All classes optimised together, one image each, as one batch. Throws Error on a bad class.
ClassModelResult class_model_visualisation(const Model& model, Backend& backend, const std::vector<int>& classes,
                                           ClassObjectiveKind kind, const AscentSettings& settings,
                                           const std::function<void(const AscentProgress&)>& progress = {});

// Activation maximisation of channel channels[n] (its mean over positions) of the value `layer`,
// or of its single unit (y, x) when y, x >= 0; one image per channel, one batch. start_noise: std
// of the start image in grey levels (0: the mean image). Throws Error on a bad channel or unit.
AscentResult activation_maximisation(const Model& model, Backend& backend, int layer, const std::vector<int>& channels,
                                     int y, int x, float start_noise, const AscentSettings& settings,
                                     const std::function<void(const AscentProgress&)>& progress = {});

// Throws Error when a channel or the unit (y, x >= 0) is not in value `layer`, or a unit is combined
// with octaves.
void check_unit(const Model& model, int layer, const std::vector<int>& channels, int y, int x, int octaves);

// The shape of value `layer` for one image at the model's size; throws Error naming the value when
// it is the input or a constant.
Shape layer_shape(const Model& model, int layer);

}  // namespace deepinside::viz
