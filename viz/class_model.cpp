#include "viz/class_model.h"

#include "engine/error.h"
#include "engine/preprocess.h"
#include "engine/shape_inference.h"
#include "viz/scores.h"

namespace deepinside::viz {

AscentSettings class_model_defaults() {
  AscentSettings s;
  s.steps = 200;
  s.lr = 500.0f;
  s.l2 = 1e-5f;
  return s;
}

AscentSettings neuron_defaults() {
  // A unit's gradient differs by orders of magnitude between layers and models, so the steps are
  // normalised (1 grey level per step on average) and lambda weighs against a unit gradient.
  AscentSettings s;
  s.steps = 200;
  s.normalize_step = true;
  s.lr = 1.0f;
  s.l2 = 1e-4f;
  return s;
}

Shape layer_shape(const Model& model, int layer) {
  require(layer >= 0 && layer < model.graph.value_count(), "no such layer");
  const Value& v = model.graph.value(layer);
  require(layer != model.graph.input(), "'" + v.name + "' is the input itself, not a layer");
  require(!v.is_constant(), "'" + v.name + "' is a constant (a weight), not a layer");
  const std::vector<Shape> shapes = infer_graph_shapes(model.graph, {1, model.channels, model.height, model.width});
  return shapes.at(layer);
}

Classification classify_levels(const Model& model, Backend& backend, const Tensor& levels,
                               const std::vector<int>& classes) {
  const LevelSpace ls = LevelSpace::from(model.preprocessing(), model.channels);
  Session session(model.graph, backend, levels.shape(), SessionOptions{true, {model.scores_value}});  // scores only
  session.forward(ls.to_input(levels));
  Classification c;
  for (size_t n = 0; n < classes.size(); ++n) {
    const std::vector<float> s = image_scores(session, model, int(n));
    const std::vector<float> p = softmax(s);
    c.score.push_back(s.at(classes[n]));
    c.prob.push_back(p.at(classes[n]));
    c.top1.push_back(top_classes(s, 1, model).at(0).cls);
  }
  return c;
}

Classification classify_pictures(const Model& model, Backend& backend, const Tensor& levels,
                                 const std::vector<int>& classes) {
  const LevelSpace ls = LevelSpace::from(model.preprocessing(), model.channels);
  const int64_t N = levels.dim(0), per = levels.numel() / N;
  const int H = int(levels.dim(2)), W = int(levels.dim(3));
  std::vector<Tensor> items;
  for (int64_t n = 0; n < N; ++n)
    items.push_back(pixels_to_tensor(ls.to_image(levels.data() + n * per, H, W), model.preprocessing()));
  return classify_levels(model, backend, ls.to_levels(stack_batch(items)), classes);
}

ClassModelResult class_model_visualisation(const Model& model, Backend& backend, const std::vector<int>& classes,
                                           ClassObjectiveKind kind, const AscentSettings& settings,
                                           const std::function<void(const AscentProgress&)>& progress) {
  require(!classes.empty(), "no class to visualise");
  for (int c : classes) check_class_index(c, model);
  check_settings(settings);
  ClassModelResult r;
  r.classes = classes;
  const Tensor zero(Shape{int64_t(classes.size()), model.channels, model.height, model.width});
  r.start = classify_levels(model, backend, zero, classes);
  ClassObjective objective(model.scores_value, classes, kind);
  r.ascent = gradient_ascent(model, backend, objective, zero, settings, progress);
  r.score_curve = objective.score_curve();
  r.prob_curve = objective.prob_curve();
  r.result = classify_levels(model, backend, r.ascent.levels, classes);
  r.picture = classify_pictures(model, backend, r.ascent.levels, classes);
  return r;
}

void check_unit(const Model& model, int layer, const std::vector<int>& channels, int y, int x, int octaves) {
  require(!channels.empty(), "no channel to visualise");
  const Shape shape = layer_shape(model, layer);
  const std::string name = model.graph.value(layer).name;
  require(shape.size() >= 2, "layer '" + name + "' has shape " + shape_to_string(shape) + ": no channel axis");
  for (int k : channels)
    require(k >= 0 && k < shape[1], "channel " + std::to_string(k) + " is out of range: layer '" + name + "' has " +
                                        std::to_string(shape[1]) + " channels (0.." + std::to_string(shape[1] - 1) + ")");
  if (y >= 0 || x >= 0) {
    require(shape.size() == 4, "layer '" + name + "' has shape " + shape_to_string(shape) +
                                   ": a single unit (--x, --y) needs a layer with positions (N,C,H,W)");
    require(y >= 0 && y < shape[2] && x >= 0 && x < shape[3],
            "unit (x " + std::to_string(x) + ", y " + std::to_string(y) + ") is outside layer '" + name + "' (" +
                std::to_string(shape[3]) + " wide, " + std::to_string(shape[2]) + " high)");
    require(octaves == 1, "a single unit (--x, --y) cannot be combined with --octaves: its position "
                                   "moves with the image size");
  }
}

AscentResult activation_maximisation(const Model& model, Backend& backend, int layer, const std::vector<int>& channels,
                                     int y, int x, float start_noise, const AscentSettings& settings,
                                     const std::function<void(const AscentProgress&)>& progress) {
  check_unit(model, layer, channels, y, x, settings.octaves);
  require(start_noise >= 0.0f, "--init-noise must be >= 0");
  const Shape image{int64_t(channels.size()), model.channels, model.height, model.width};
  const Tensor start = start_noise > 0.0f ? noise_levels(image, start_noise, settings.seed + 1) : Tensor(image);
  UnitObjective objective(layer, channels, y, x);
  return gradient_ascent(model, backend, objective, start, settings, progress);
}

}  // namespace deepinside::viz
