#include "viz/dream.h"

#include "viz/class_model.h"

namespace deepinside::viz {

AscentSettings dream_defaults() {
  AscentSettings s;
  s.steps = 10;
  s.normalize_step = true;
  s.lr = 1.5f;
  s.l2 = 0.0f;
  s.jitter = 32;
  s.octaves = 4;
  s.octave_scale = 1.4f;
  s.clamp_range = true;
  return s;
}

AscentResult deep_dream(const Model& model, Backend& backend, int layer, const Tensor& photo,
                        const AscentSettings& settings, const std::function<void(const AscentProgress&)>& progress) {
  layer_shape(model, layer);  // a layer of the model, or a clear error
  NormObjective objective(layer);
  return gradient_ascent(model, backend, objective, photo, settings, progress);
}

}  // namespace deepinside::viz
