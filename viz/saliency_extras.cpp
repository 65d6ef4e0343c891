#include "viz/saliency_extras.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>

#include "engine/error.h"
#include "viz/scores.h"

namespace deepinside::viz {

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A uniform double in (0, 1) from 53 random bits.
double open_unit(uint64_t bits) { return (double(bits >> 11) + 0.5) * 0x1.0p-53; }

int64_t image_numel(const Model& m) { return int64_t(m.channels) * m.height * m.width; }

void require_image(const Tensor& image, const Model& m, const char* what) {
  require(image.numel() == image_numel(m),
          std::string(what) + " has " + std::to_string(image.numel()) + " elements; the model's input is " +
              std::to_string(m.channels) + "x" + std::to_string(m.height) + "x" + std::to_string(m.width));
}

}  // namespace

void gaussian_fill(uint64_t seed, uint64_t stream, float* out, int64_t n) {
  // Counter-based: element pair j of (seed, stream) depends on nothing else, so any chunking or
  // order of generation gives the same numbers. Box-Muller on two 53-bit uniforms.
  const uint64_t key = splitmix64(splitmix64(seed) ^ (stream * 0xd1342543de82ef95ULL + 0x2545f4914f6cdd1dULL));
  for (int64_t j = 0; 2 * j < n; ++j) {
    const double u1 = open_unit(splitmix64(key + 2 * uint64_t(j)));
    const double u2 = open_unit(splitmix64(key + 2 * uint64_t(j) + 1));
    const double r = std::sqrt(-2.0 * std::log(u1)), t = 2.0 * std::numbers::pi * u2;
    out[2 * j] = float(r * std::cos(t));
    if (2 * j + 1 < n) out[2 * j + 1] = float(r * std::sin(t));
  }
}

int balanced_batch(int64_t count, int max_batch) {
  require(max_batch >= 1, "--batch-size must be at least 1");
  require(count >= 1, "nothing to compute (0 inputs)");
  const int64_t chunks = (count + max_batch - 1) / max_batch;
  return int((count + chunks - 1) / chunks);
}

BatchedGradients::BatchedGradients(const Model& model, Backend& backend, int batch, bool fuse)
    : model_(model),
      batch_(batch),
      session_(model.graph, backend, Shape{batch, model.channels, model.height, model.width},
               SessionOptions{fuse, {model.scores_value}}),
      inputs_(Shape{batch, model.channels, model.height, model.width}),
      seed_(session_.shape(model.scores_value)),
      image_size_(image_numel(model)) {
  require(batch >= 1, "--batch-size must be at least 1");
}

void BatchedGradients::scores(int64_t count, const Make& make, const ConsumeScores& consume) {
  for (int64_t first = 0; first < count; first += batch_) {
    const int n = int(std::min<int64_t>(batch_, count - first));
    for (int i = 0; i < n; ++i) make(first + i, inputs_.data() + i * image_size_);
    session_.forward(inputs_);
    for (int i = 0; i < n; ++i) consume(first + i, image_scores(session_, model_, i).data());
  }
}

void BatchedGradients::gradients(int64_t count, const Make& make, int cls, BackwardRule rule,
                                 const Consume& consume) {
  check_class_index(cls, model_);
  for (int64_t first = 0; first < count; first += batch_) {
    const int n = int(std::min<int64_t>(batch_, count - first));
    for (int i = 0; i < n; ++i) make(first + i, inputs_.data() + i * image_size_);
    session_.forward(inputs_);
    // Seed dL/dS one-hot at cls for the filled slots only: L = sum_i S_c(x_i), and the slots do not
    // interact, so slot i's input gradient is dS_c/dx_i; unused slots get a zero seed.
    seed_.fill(0.0f);
    for (int i = 0; i < n; ++i) seed_[int64_t(i) * model_.classes + cls] = 1.0f;
    const Tensor& g = session_.backward_input(model_.scores_value, seed_, rule);
    for (int i = 0; i < n; ++i) consume(first + i, g.data() + i * image_size_);
  }
}

Tensor max_abs_map(const float* a, int64_t C, int64_t H, int64_t W) {
  Tensor map(Shape{H, W});
  for (int64_t i = 0; i < H * W; ++i) {
    float best = 0.0f;
    for (int64_t c = 0; c < C; ++c) best = std::max(best, std::fabs(a[c * H * W + i]));
    map[i] = best;
  }
  return map;
}

Tensor abs_sum_map(const float* a, int64_t C, int64_t H, int64_t W) {
  Tensor map(Shape{H, W});
  for (int64_t i = 0; i < H * W; ++i) {
    double sum = 0.0;
    for (int64_t c = 0; c < C; ++c) sum += a[c * H * W + i];
    map[i] = float(std::fabs(sum));
  }
  return map;
}

std::pair<int, float> class_and_score(BatchedGradients& runner, const Tensor& image, int cls) {
  const Model& m = runner.model();
  require_image(image, m, "the image");
  if (cls >= 0) check_class_index(cls, m);
  float score = 0.0f;
  runner.scores(
      1, [&](int64_t, float* chw) { std::memcpy(chw, image.data(), sizeof(float) * image.numel()); },
      [&](int64_t, const float* s) {
        const std::vector<float> all(s, s + m.classes);
        cls = class_or_top1(all, cls, m);
        score = all[cls];
      });
  return {cls, score};
}

Attribution gradient_x_input(BatchedGradients& runner, const Tensor& image, int cls, BackwardRule rule) {
  const Model& m = runner.model();
  Attribution r;
  std::tie(r.cls, r.score) = class_and_score(runner, image, cls);
  r.attribution = Tensor(Shape{m.channels, m.height, m.width});
  runner.gradients(
      1, [&](int64_t, float* chw) { std::memcpy(chw, image.data(), sizeof(float) * image.numel()); }, r.cls, rule,
      [&](int64_t, const float* g) {
        for (int64_t i = 0; i < image.numel(); ++i) r.attribution[i] = image[i] * g[i];
      });
  r.map = abs_sum_map(r.attribution.data(), m.channels, m.height, m.width);
  return r;
}

Attribution smoothgrad(BatchedGradients& runner, const Tensor& image, int cls, const SmoothGradOptions& opt) {
  const Model& m = runner.model();
  require(opt.samples >= 1, "SmoothGrad needs at least 1 sample (--samples)");
  require(std::isfinite(opt.noise) && opt.noise >= 0.0f, "the noise level (--noise) must be >= 0");
  Attribution r;
  std::tie(r.cls, r.score) = class_and_score(runner, image, cls);
  const int64_t n = image.numel();
  const auto [lo, hi] = std::minmax_element(image.data(), image.data() + n);
  const float sigma = opt.noise * (*hi - *lo);
  std::vector<double> sum(n, 0.0);  // the only per-image accumulator: fixed size, whatever opt.samples
  runner.gradients(
      opt.samples,
      [&](int64_t i, float* chw) {
        if (opt.noise_source) {
          opt.noise_source(i, chw);
        } else {
          gaussian_fill(opt.seed, uint64_t(i), chw, n);
          for (int64_t j = 0; j < n; ++j) chw[j] *= sigma;
        }
        for (int64_t j = 0; j < n; ++j) chw[j] += image[j];
      },
      r.cls, opt.rule,
      [&](int64_t, const float* g) {
        for (int64_t j = 0; j < n; ++j) sum[j] += g[j];
      });
  r.attribution = Tensor(Shape{m.channels, m.height, m.width});
  for (int64_t j = 0; j < n; ++j) r.attribution[j] = float(sum[j] / opt.samples);
  r.map = max_abs_map(r.attribution.data(), m.channels, m.height, m.width);
  return r;
}

Attribution integrated_gradients(BatchedGradients& runner, const Tensor& image, const Tensor& baseline, int cls,
                                 const IntegratedGradientsOptions& opt) {
  const Model& m = runner.model();
  require(opt.steps >= 1, "Integrated Gradients needs at least 1 step (--steps)");
  require_image(image, m, "the image");
  require_image(baseline, m, "the baseline");
  if (cls >= 0) check_class_index(cls, m);
  const int64_t n = image.numel();
  Attribution r;
  // S(x) and S(x') in one forward (the completeness check), and the class from S(x).
  std::vector<float> s_image, s_base;
  runner.scores(
      2, [&](int64_t i, float* chw) { std::memcpy(chw, (i == 0 ? image : baseline).data(), sizeof(float) * n); },
      [&](int64_t i, const float* s) { (i == 0 ? s_image : s_base).assign(s, s + m.classes); });
  r.cls = cls >= 0 ? cls : top_classes(s_image, 1, m).at(0).cls;
  r.score = s_image[r.cls];
  r.score_difference = double(s_image[r.cls]) - double(s_base[r.cls]);

  std::vector<double> sum(n, 0.0);
  runner.gradients(
      opt.steps,
      [&](int64_t k, float* chw) {
        const float alpha = float((double(k) + 0.5) / opt.steps);
        for (int64_t j = 0; j < n; ++j) chw[j] = baseline[j] + alpha * (image[j] - baseline[j]);
      },
      r.cls, opt.rule,
      [&](int64_t, const float* g) {
        for (int64_t j = 0; j < n; ++j) sum[j] += g[j];
      });
  r.attribution = Tensor(Shape{m.channels, m.height, m.width});
  for (int64_t j = 0; j < n; ++j) {
    r.attribution[j] = float((double(image[j]) - double(baseline[j])) * sum[j] / opt.steps);
    r.attribution_sum += r.attribution[j];
  }
  r.map = abs_sum_map(r.attribution.data(), m.channels, m.height, m.width);
  return r;
}

std::vector<CropSpec> ten_crops(int FH, int FW, int H, int W) {
  require(FH >= H && FW >= W, "ten crops of " + std::to_string(H) + "x" + std::to_string(W) +
                                  " do not fit in a " + std::to_string(FH) + "x" + std::to_string(FW) + " image");
  const std::vector<std::pair<int, int>> corners = {
      {0, 0}, {FW - W, 0}, {0, FH - H}, {FW - W, FH - H}, {(FW - W) / 2, (FH - H) / 2}};
  std::vector<CropSpec> out;
  for (bool flip : {false, true})
    for (const auto& [x, y] : corners) out.push_back({x, y, flip});
  return out;
}

MakeCrop crops_of_tensor(const Tensor& full, int height, int width) {
  require(full.rank() == 3, "ten crops need a full image tensor (C,H,W)");
  require(full.dim(1) >= height && full.dim(2) >= width, "the full image is smaller than the crop");
  const int64_t C = full.dim(0), FH = full.dim(1), FW = full.dim(2);
  return [&full, C, FH, FW, height, width](const CropSpec& s, float* chw) {
    for (int64_t c = 0; c < C; ++c)
      for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x)
          chw[(c * height + y) * width + x] = full[(c * FH + s.y0 + y) * FW + s.x0 + (s.flip ? width - 1 - x : x)];
  };
}

TenCropResult ten_crop_saliency(BatchedGradients& runner, int FH, int FW, const MakeCrop& make, int cls,
                                BackwardRule rule) {
  const Model& m = runner.model();
  const int C = m.channels, H = m.height, W = m.width;
  const std::vector<CropSpec> crops = ten_crops(FH, FW, H, W);
  const int count = int(crops.size());
  const auto make_input = [&](int64_t i, float* chw) { make(crops[i], chw); };

  TenCropResult r;
  if (cls >= 0) check_class_index(cls, m);
  // The class: given, or the top-1 of the softmax averaged over the 10 crops (the 10-crop test).
  std::vector<double> mean_prob(m.classes, 0.0);
  runner.scores(count, make_input, [&](int64_t, const float* s) {
    const std::vector<float> p = softmax(std::vector<float>(s, s + m.classes));
    for (int c = 0; c < m.classes; ++c) mean_prob[c] += p[c] / count;
  });
  r.cls = cls >= 0 ? cls : int(std::max_element(mean_prob.begin(), mean_prob.end()) - mean_prob.begin());
  r.probability = float(mean_prob[r.cls]);

  std::vector<double> sum(size_t(FH) * FW, 0.0);
  r.coverage = Tensor(Shape{FH, FW});
  runner.gradients(count, make_input, r.cls, rule, [&](int64_t i, const float* g) {
    const CropSpec& s = crops[i];
    const Tensor map = max_abs_map(g, C, H, W);
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) {
        // A mirrored crop's column x shows the full image's column x0 + (W - 1 - x).
        const int fx = s.x0 + (s.flip ? W - 1 - x : x), fy = s.y0 + y;
        sum[size_t(fy) * FW + fx] += map[int64_t(y) * W + x];
        r.coverage[int64_t(fy) * FW + fx] += 1.0f;
      }
  });
  r.map = Tensor(Shape{FH, FW});
  for (int64_t i = 0; i < int64_t(FH) * FW; ++i)
    r.map[i] = r.coverage[i] > 0 ? float(sum[i] / r.coverage[i]) : 0.0f;
  return r;
}

}  // namespace deepinside::viz
