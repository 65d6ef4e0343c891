#include "viz/invert.h"

#include "engine/error.h"
#include "viz/class_model.h"

namespace deepinside::viz {

AscentSettings invert_defaults() {
  AscentSettings s;
  s.steps = 200;
  s.normalize_step = true;
  s.lr = 1.0f;
  s.l2 = 1e-3f;
  s.tv = 5e-3f;
  s.jitter = 0;
  s.clamp_range = true;
  return s;
}

AscentResult invert_features(const Model& model, Backend& backend, int layer, const Tensor& target, float start_noise,
                             const AscentSettings& settings,
                             const std::function<void(const AscentProgress&)>& progress) {
  layer_shape(model, layer);  // a layer of the model, or a clear error
  require(start_noise >= 0.0f, "--init-noise must be >= 0");
  MatchObjective objective(layer, target.clone());
  const Tensor start = start_noise > 0.0f ? noise_levels(target.shape(), start_noise, settings.seed + 1)
                                          : Tensor(target.shape());
  return gradient_ascent(model, backend, objective, start, settings, progress);
}

}  // namespace deepinside::viz
