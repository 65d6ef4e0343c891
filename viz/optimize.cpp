#include "viz/optimize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "engine/error.h"
#include "engine/shape_inference.h"
#include "engine/subgraph.h"

namespace deepinside::viz {

namespace {

int64_t plane(const Tensor& x) { return x.dim(2) * x.dim(3); }

void require_images(const Tensor& x, const char* what) {
  require(x.rank() == 4, std::string(what) + " needs images (N,C,H,W), got " + shape_to_string(x.shape()));
}

// One axis of the antialiased bilinear resize: output i reads inputs start[i] .. start[i]+count[i]-1.
struct Taps {
  std::vector<int> start, count;
  std::vector<std::vector<double>> weight;
};

Taps resample_taps(int in, int out) {
  // PIL's ImagingResample with the triangle filter; torch's _upsample_bilinear2d_aa computes the same.
  const double scale = double(in) / out;
  const double support = scale >= 1.0 ? scale : 1.0;
  const double inv = scale >= 1.0 ? 1.0 / scale : 1.0;
  Taps t;
  for (int i = 0; i < out; ++i) {
    const double center = scale * (i + 0.5);
    const int lo = std::max(int64_t(center - support + 0.5), int64_t(0));
    const int hi = int(std::min(int64_t(center + support + 0.5), int64_t(in)));
    std::vector<double> w;
    double total = 0.0;
    for (int j = lo; j < hi; ++j) {
      const double v = std::max(0.0, 1.0 - std::fabs((j - center + 0.5) * inv));
      w.push_back(v);
      total += v;
    }
    if (total > 0.0)
      for (double& v : w) v /= total;
    t.start.push_back(lo);
    t.count.push_back(hi - lo);
    t.weight.push_back(std::move(w));
  }
  return t;
}

// Mirror index without repeating the edge (dcb|abcd|cba); |i| < 2n - 1 is all callers need.
int mirror(int i, int n) {
  if (n == 1) return 0;
  if (i < 0) i = -i;
  if (i >= n) i = 2 * n - 2 - i;
  return i;
}

std::vector<double> gaussian_taps(float sigma, int n, int* radius) {
  int r = std::max(1, int(std::ceil(3.0 * sigma)));
  r = std::min(r, n - 1);
  std::vector<double> w(2 * r + 1);
  double total = 0.0;
  for (int k = -r; k <= r; ++k) total += w[k + r] = std::exp(-double(k) * k / (2.0 * sigma * sigma));
  for (double& v : w) v /= total;
  *radius = r;
  return w;
}

double softmax_in_place(const float* s, int K, std::vector<double>& p) {
  // Returns log sum exp; p = softmax(s) in double.
  p.assign(K, 0.0);
  double peak = s[0];
  for (int k = 1; k < K; ++k) peak = std::max(peak, double(s[k]));
  double total = 0.0;
  for (int k = 0; k < K; ++k) total += p[k] = std::exp(double(s[k]) - peak);
  for (double& v : p) v /= total;
  return peak + std::log(total);
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// Levels

LevelSpace LevelSpace::from(const Preprocessing& p, int channels) {
  LevelSpace ls;
  ls.pre.height = p.height;
  ls.pre.width = p.width;
  ls.pre.channel_order = p.channel_order;
  ls.pre.range_lo = p.range_lo;
  ls.pre.range_hi = p.range_hi;
  ls.pre.mean = p.mean;
  ls.pre.std = p.std;
  ls.pre.scale = p.scale;
  ls.pre.resize_shorter = p.resize_shorter;
  if (p.mean_image) ls.pre.mean_image = p.mean_image->clone();
  const float step = (p.range_hi - p.range_lo) / 255.0f;
  for (int c = 0; c < channels; ++c) ls.gain.push_back(step * p.scale / (p.std.empty() ? 1.0f : p.std[c]));
  return ls;
}

Tensor LevelSpace::mean_levels(int height, int width) const {
  const int C = int(gain.size());
  const float step = (pre.range_hi - pre.range_lo) / 255.0f;
  Tensor m(Shape{C, height, width});
  if (pre.mean_image) {
    Tensor img = pre.mean_image->clone();
    img.reshape({1, img.dim(0), img.dim(1), img.dim(2)});
    if (img.dim(2) != height || img.dim(3) != width) img = resize_bilinear(img, height, width);
    for (int64_t i = 0; i < m.numel(); ++i) m[i] = (img[i] - pre.range_lo) / step;
    return m;
  }
  const int64_t hw = int64_t(height) * width;
  for (int c = 0; c < C; ++c) {
    const float v = ((pre.mean.empty() ? 0.0f : pre.mean[c]) - pre.range_lo) / step;
    std::fill(m.data() + c * hw, m.data() + (c + 1) * hw, v);
  }
  return m;
}

Tensor LevelSpace::to_levels(const Tensor& input) const {
  require_images(input, "to_levels");
  Tensor x = input.clone();
  const int64_t N = x.dim(0), C = x.dim(1), hw = plane(x);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < hw; ++i) x[(n * C + c) * hw + i] /= gain[c];
  return x;
}

Tensor LevelSpace::to_input(const Tensor& levels) const {
  require_images(levels, "to_input");
  Tensor t(levels.shape());
  const int64_t N = t.dim(0), C = t.dim(1), hw = plane(t);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < hw; ++i) t[(n * C + c) * hw + i] = levels[(n * C + c) * hw + i] * gain[c];
  return t;
}

Image LevelSpace::to_image(const float* chw, int height, int width) const {
  const int C = int(gain.size());
  const Tensor mean = mean_levels(height, width);
  const int64_t hw = int64_t(height) * width;
  Image img{width, height, C, std::vector<uint8_t>(size_t(hw) * C)};
  for (int c = 0; c < C; ++c) {
    const int dst = (C == 3 && pre.channel_order == ChannelOrder::bgr) ? 2 - c : c;
    for (int64_t i = 0; i < hw; ++i) {
      const float v = chw[c * hw + i] + mean[c * hw + i];
      img.pixels[size_t(i) * C + dst] = uint8_t(std::clamp(std::lround(v), 0L, 255L));
    }
  }
  return img;
}

// ------------------------------------------------------------------------------------------------
// Objectives

ClassObjectiveKind parse_class_objective(const std::string& name) {
  if (name == "score") return ClassObjectiveKind::score;
  if (name == "logprob") return ClassObjectiveKind::logprob;
  if (name == "prob") return ClassObjectiveKind::prob;
  throw Error("unknown objective '" + name + "' (use score, logprob or prob)");
}

const char* class_objective_name(ClassObjectiveKind kind) {
  switch (kind) {
    case ClassObjectiveKind::score: return "score";
    case ClassObjectiveKind::logprob: return "logprob";
    case ClassObjectiveKind::prob: return "prob";
  }
  return "?";
}

ClassObjective::ClassObjective(int scores_value, std::vector<int> classes, ClassObjectiveKind kind)
    : scores_value_(scores_value), classes_(std::move(classes)), kind_(kind) {}

std::vector<double> ClassObjective::seed(const Tensor& scores, Tensor& seed) {
  const int N = int(scores.dim(0));
  require(N == int(classes_.size()), "one class per image is needed");
  const int K = int(scores.numel() / N);
  std::vector<double> objective(N), p;
  std::vector<float> s_row(N), p_row(N);
  for (int n = 0; n < N; ++n) {
    const int c = classes_[n];
    require(c >= 0 && c < K, "class " + std::to_string(c) + " is out of range: the model has " + std::to_string(K) +
                                 " classes (0.." + std::to_string(K - 1) + ")");
    const float* s = scores.data() + int64_t(n) * K;
    for (int k = 0; k < K; ++k)
      require(std::isfinite(s[k]), "the class scores became NaN or infinite; lower the step size (--lr)");
    const double lse = softmax_in_place(s, K, p);
    float* g = seed.data() + int64_t(n) * K;
    switch (kind_) {
      case ClassObjectiveKind::score:
        objective[n] = s[c];
        g[c] = 1.0f;
        break;
      case ClassObjectiveKind::logprob:  // d log P_c / dS_k = [k == c] - P_k
        objective[n] = double(s[c]) - lse;
        for (int k = 0; k < K; ++k) g[k] = float((k == c ? 1.0 : 0.0) - p[k]);
        break;
      case ClassObjectiveKind::prob:  // d P_c / dS_k = P_c ([k == c] - P_k)
        objective[n] = p[c];
        for (int k = 0; k < K; ++k) g[k] = float(p[c] * ((k == c ? 1.0 : 0.0) - p[k]));
        break;
    }
    s_row[n] = s[c];
    p_row[n] = float(p[c]);
  }
  scores_.push_back(std::move(s_row));
  probs_.push_back(std::move(p_row));
  return objective;
}

UnitObjective::UnitObjective(int value, std::vector<int> channels, int y, int x)
    : value_(value), channels_(std::move(channels)), y_(y), x_(x) {}

std::vector<double> UnitObjective::seed(const Tensor& layer, Tensor& seed) {
  const int N = int(layer.dim(0));
  require(N == int(channels_.size()), "one channel per image is needed");
  require(layer.rank() >= 2, "the layer must have a channel axis, its shape is " + shape_to_string(layer.shape()));
  const int64_t K = layer.dim(1), hw = layer.numel() / (N * K);
  std::vector<double> objective(N);
  for (int n = 0; n < N; ++n) {
    const int k = channels_[n];
    require(k >= 0 && k < K, "channel " + std::to_string(k) + " is out of range: the layer has " + std::to_string(K) +
                                 " channels (0.." + std::to_string(K - 1) + ")");
    const int64_t base = (int64_t(n) * K + k) * hw;
    if (y_ >= 0 || x_ >= 0) {
      require(layer.rank() == 4, "a single unit (--x, --y) needs a layer (N,C,H,W)");
      const int64_t H = layer.dim(2), W = layer.dim(3);
      require(y_ >= 0 && y_ < H && x_ >= 0 && x_ < W,
              "unit (y " + std::to_string(y_) + ", x " + std::to_string(x_) + ") is outside the layer's " +
                  std::to_string(H) + "x" + std::to_string(W) + " positions");
      objective[n] = layer[base + y_ * W + x_];
      seed[base + y_ * W + x_] = 1.0f;
    } else {
      double total = 0.0;
      for (int64_t i = 0; i < hw; ++i) {
        total += layer[base + i];
        seed[base + i] = float(1.0 / double(hw));
      }
      objective[n] = total / double(hw);
    }
  }
  return objective;
}

MatchObjective::MatchObjective(int value, Tensor target_levels) : value_(value), target_levels_(std::move(target_levels)) {
  require_images(target_levels_, "feature inversion");
}

void MatchObjective::start_octave(Session& session, const LevelSpace& levels, int height, int width) {
  const Tensor sized = (target_levels_.dim(2) == height && target_levels_.dim(3) == width)
                           ? target_levels_.clone()
                           : resize_bilinear(target_levels_, height, width);
  session.forward(levels.to_input(sized));
  phi_target_ = session.value(value_).clone();
  const int64_t N = phi_target_.dim(0), per = phi_target_.numel() / N;
  target_sq_.assign(N, 0.0);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t i = 0; i < per; ++i) target_sq_[n] += double(phi_target_[n * per + i]) * phi_target_[n * per + i];
    require(target_sq_[n] > 0.0, "the target image's activations at '" + session.graph().value(value_).name +
                                     "' are all zero: there is nothing to invert at that layer");
  }
}

std::vector<double> MatchObjective::seed(const Tensor& layer, Tensor& seed) {
  require(layer.shape() == phi_target_.shape(), "feature inversion: the layer's shape changed");
  const int64_t N = layer.dim(0), per = layer.numel() / N;
  std::vector<double> objective(N);
  for (int64_t n = 0; n < N; ++n) {
    double sq = 0.0;
    for (int64_t i = 0; i < per; ++i) {
      const double d = double(layer[n * per + i]) - phi_target_[n * per + i];
      sq += d * d;
      seed[n * per + i] = float(-d / target_sq_[n]);
    }
    objective[n] = -0.5 * sq / target_sq_[n];
  }
  return objective;
}

std::vector<double> NormObjective::seed(const Tensor& layer, Tensor& seed) {
  const int64_t N = layer.dim(0), per = layer.numel() / N;
  std::vector<double> objective(N, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < per; ++i) {
      const float v = layer[n * per + i];
      objective[n] += 0.5 * double(v) * v;
      seed[n * per + i] = v;
    }
  return objective;
}

// ------------------------------------------------------------------------------------------------
// Image operations

Tensor resize_bilinear(const Tensor& x, int height, int width) {
  require_images(x, "resize");
  require(height > 0 && width > 0, "resize to an empty size");
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const Taps tx = resample_taps(int(W), width), ty = resample_taps(int(H), height);
  Tensor mid(Shape{N, C, H, width}), out(Shape{N, C, height, width});
  for (int64_t p = 0; p < N * C; ++p) {
    const float* in = x.data() + p * H * W;
    float* m = mid.data() + p * H * width;
    for (int64_t i = 0; i < H; ++i)
      for (int j = 0; j < width; ++j) {
        double acc = 0.0;
        for (int k = 0; k < tx.count[j]; ++k) acc += tx.weight[j][k] * in[i * W + tx.start[j] + k];
        m[i * width + j] = float(acc);
      }
    float* o = out.data() + p * height * width;
    for (int i = 0; i < height; ++i)
      for (int j = 0; j < width; ++j) {
        double acc = 0.0;
        for (int k = 0; k < ty.count[i]; ++k) acc += ty.weight[i][k] * m[(ty.start[i] + k) * width + j];
        o[i * width + j] = float(acc);
      }
  }
  return out;
}

Tensor gaussian_blur(const Tensor& x, float sigma) {
  require_images(x, "blur");
  require(sigma > 0.0f, "the blur's sigma must be positive");
  const int64_t N = x.dim(0), C = x.dim(1);
  const int H = int(x.dim(2)), W = int(x.dim(3));
  int rx = 0, ry = 0;
  const std::vector<double> wx = W > 1 ? gaussian_taps(sigma, W, &rx) : std::vector<double>{1.0};
  const std::vector<double> wy = H > 1 ? gaussian_taps(sigma, H, &ry) : std::vector<double>{1.0};
  Tensor mid(x.shape()), out(x.shape());
  for (int64_t p = 0; p < N * C; ++p) {
    const float* in = x.data() + p * H * W;
    float* m = mid.data() + p * H * W;
    for (int i = 0; i < H; ++i)
      for (int j = 0; j < W; ++j) {
        double acc = 0.0;
        for (int k = -rx; k <= rx; ++k) acc += wx[k + rx] * in[i * W + mirror(j + k, W)];
        m[i * W + j] = float(acc);
      }
    float* o = out.data() + p * H * W;
    for (int i = 0; i < H; ++i)
      for (int j = 0; j < W; ++j) {
        double acc = 0.0;
        for (int k = -ry; k <= ry; ++k) acc += wy[k + ry] * m[mirror(i + k, H) * W + j];
        o[i * W + j] = float(acc);
      }
  }
  return out;
}

Tensor roll(const Tensor& x, const std::vector<int>& dy, const std::vector<int>& dx) {
  require_images(x, "roll");
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  require(int64_t(dy.size()) == N && int64_t(dx.size()) == N, "one shift per image is needed");
  Tensor out(x.shape());
  for (int64_t n = 0; n < N; ++n) {
    const int64_t sy = ((dy[n] % H) + H) % H, sx = ((dx[n] % W) + W) % W;
    for (int64_t c = 0; c < C; ++c) {
      const float* in = x.data() + (n * C + c) * H * W;
      float* o = out.data() + (n * C + c) * H * W;
      for (int64_t i = 0; i < H; ++i) {
        const int64_t oi = (i + sy) % H;
        for (int64_t j = 0; j < W; ++j) o[oi * W + (j + sx) % W] = in[i * W + j];
      }
    }
  }
  return out;
}

std::vector<double> total_variation(const Tensor& x, float beta, float weight, Tensor* grad) {
  require_images(x, "total variation");
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const double eps = beta == 2.0f ? 0.0 : 1e-6;  // keeps beta < 2 differentiable where the image is flat
  std::vector<double> tv(N, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const float* p = x.data() + (n * C + c) * H * W;
      float* g = grad ? grad->data() + (n * C + c) * H * W : nullptr;
      for (int64_t i = 0; i < H; ++i)
        for (int64_t j = 0; j < W; ++j) {
          const double dx = j + 1 < W ? double(p[i * W + j + 1]) - p[i * W + j] : 0.0;
          const double dy = i + 1 < H ? double(p[(i + 1) * W + j]) - p[i * W + j] : 0.0;
          const double v = dx * dx + dy * dy + eps;
          tv[n] += std::pow(v, 0.5 * beta);
          if (!g) continue;
          // d/d(dx) of v^(beta/2) = beta v^(beta/2 - 1) dx
          const double f = beta == 2.0f ? 2.0 : beta * std::pow(v, 0.5 * beta - 1.0);
          const double gx = weight * f * dx, gy = weight * f * dy;
          g[i * W + j] -= float(gx + gy);
          if (j + 1 < W) g[i * W + j + 1] += float(gx);
          if (i + 1 < H) g[(i + 1) * W + j] += float(gy);
        }
    }
  return tv;
}

void clip_small_pixels(Tensor& x, float percentile) {
  require_images(x, "pixel-norm clipping");
  const int64_t N = x.dim(0), C = x.dim(1), hw = plane(x);
  const int64_t k = int64_t(std::floor(double(percentile) / 100.0 * double(hw)));
  if (k <= 0) return;
  std::vector<double> norm(hw);
  std::vector<int64_t> order(hw);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t i = 0; i < hw; ++i) {
      double s = 0.0;
      for (int64_t c = 0; c < C; ++c) s += double(x[(n * C + c) * hw + i]) * x[(n * C + c) * hw + i];
      norm[i] = std::sqrt(s);
    }
    std::iota(order.begin(), order.end(), int64_t(0));
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return norm[a] < norm[b]; });
    for (int64_t r = 0; r < std::min(k, hw); ++r)
      for (int64_t c = 0; c < C; ++c) x[(n * C + c) * hw + order[r]] = 0.0f;
  }
}

Tensor noise_levels(const Shape& shape, float std, uint64_t seed) {
  Tensor t(shape);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, std);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = dist(rng);
  return t;
}

// ------------------------------------------------------------------------------------------------
// The ascent

void check_settings(const AscentSettings& s) {
  require(s.steps >= 1 && s.steps <= 100000, "--steps must be between 1 and 100000");
  require(std::isfinite(s.lr) && s.lr > 0.0f, "--lr must be positive");
  require(std::isfinite(s.l2) && s.l2 >= 0.0f, "--lambda must be >= 0");
  require(s.jitter >= 0 && s.jitter <= 1000, "--jitter must be between 0 and 1000 pixels");
  require(s.blur_every >= 0, "--blur-every must be >= 0");
  require(s.blur_every == 0 || (std::isfinite(s.blur_sigma) && s.blur_sigma > 0.0f), "--blur-sigma must be positive");
  require(std::isfinite(s.tv) && s.tv >= 0.0f, "--tv must be >= 0");
  require(std::isfinite(s.tv_beta) && s.tv_beta >= 1.0f && s.tv_beta <= 4.0f, "--tv-beta must be between 1 and 4");
  require(s.clip_percentile >= 0.0f && s.clip_percentile < 100.0f, "--clip-norm must be a percentile in [0, 100)");
  require(s.octaves >= 1 && s.octaves <= 10, "--octaves must be between 1 and 10");
  require(std::isfinite(s.octave_scale) && s.octave_scale > 1.0f && s.octave_scale <= 4.0f,
          "--octave-scale must be in (1, 4]");
}

std::vector<std::pair<int, int>> octave_sizes(int height, int width, const AscentSettings& s) {
  std::vector<std::pair<int, int>> sizes;
  for (int k = 0; k < s.octaves; ++k) {
    const double f = std::pow(double(s.octave_scale), s.octaves - 1 - k);
    sizes.emplace_back(std::max(1, int(std::lround(height / f))), std::max(1, int(std::lround(width / f))));
  }
  return sizes;
}

void check_octaves(const Model& model, int value, const AscentSettings& s, int height, int width) {
  check_settings(s);
  const Graph part = graph_up_to(model.graph, value);
  const auto sizes = octave_sizes(height, width, s);
  for (int k = 0; k < s.octaves; ++k) {
    const auto [h, w] = sizes[k];
    try {
      infer_graph_shapes(part, {1, model.channels, h, w});
    } catch (const Error& e) {
      if (s.octaves == 1) throw;
      throw Error("octave " + std::to_string(k + 1) + " of " + std::to_string(s.octaves) + " runs the network on " +
                  std::to_string(h) + "x" + std::to_string(w) + " images, which it cannot take up to '" +
                  model.graph.value(value).name + "' (" + e.what() + "); use fewer octaves or a smaller --octave-scale");
    }
  }
}

AscentResult gradient_ascent(const Model& model, Backend& backend, Objective& objective, const Tensor& start,
                             const AscentSettings& s, const std::function<void(const AscentProgress&)>& progress) {
  check_settings(s);
  require_images(start, "gradient ascent");
  require(start.dim(1) == model.channels, "the start image has " + std::to_string(start.dim(1)) +
                                              " channels, the model reads " + std::to_string(model.channels));
  check_octaves(model, objective.value(), s, int(start.dim(2)), int(start.dim(3)));
  const Graph part = graph_up_to(model.graph, objective.value());
  const auto sizes = octave_sizes(int(start.dim(2)), int(start.dim(3)), s);
  const LevelSpace levels = LevelSpace::from(model.preprocessing(), model.channels);
  const int N = int(start.dim(0)), C = int(start.dim(1)), H = int(start.dim(2)), W = int(start.dim(3));

  AscentResult r;
  r.zero_start_gradient.assign(N, false);
  std::mt19937_64 rng(s.seed);
  std::uniform_int_distribution<int> shift(-s.jitter, s.jitter);
  Tensor x, prev_base;

  for (int k = 0; k < s.octaves; ++k) {
    const auto [h, w] = sizes[k];
    Tensor base = (h == H && w == W) ? start.clone() : resize_bilinear(start, h, w);
    if (k == 0) {
      x = base.clone();
    } else {  // base_k + resize(X_{k-1} - base_{k-1})
      Tensor detail = x.clone();
      for (int64_t i = 0; i < detail.numel(); ++i) detail[i] -= prev_base[i];
      detail = resize_bilinear(detail, h, w);
      x = base.clone();
      for (int64_t i = 0; i < x.numel(); ++i) x[i] += detail[i];
    }
    prev_base = std::move(base);

    // Only the objective's value and the input gradient are read: the session may fuse (docs/fusion.md).
    auto session = std::make_unique<Session>(part, backend, Shape{N, C, h, w},
                                             SessionOptions{true, {objective.value()}});
    objective.start_octave(*session, levels, h, w);
    const int value = objective.value();
    Tensor seed(session->shape(value));
    Tensor lo, hi;
    if (s.clamp_range) {
      lo = levels.mean_levels(h, w);
      hi = Tensor(lo.shape());
      for (int64_t i = 0; i < lo.numel(); ++i) {
        hi[i] = 255.0f - lo[i];
        lo[i] = -lo[i];
      }
    }
    const int64_t hw = int64_t(h) * w, per = int64_t(C) * hw;
    std::vector<int> dy(N, 0), dx(N, 0), undo_y(N), undo_x(N);

    for (int step = 0; step < s.steps; ++step) {
      const bool jitter = s.jitter > 0;
      if (jitter)
        for (int n = 0; n < N; ++n) {
          dy[n] = shift(rng);
          dx[n] = shift(rng);
          undo_y[n] = -dy[n];
          undo_x[n] = -dx[n];
        }
      session->forward(jitter ? levels.to_input(roll(x, dy, dx)) : levels.to_input(x));
      seed.fill(0.0f);
      std::vector<double> obj = objective.seed(session->value(value), seed);
      for (double o : obj)
        require(std::isfinite(o), "the objective became NaN or infinite at octave " + std::to_string(k + 1) +
                                      ", step " + std::to_string(step + 1) + "; lower the step size (--lr)");
      r.curve.push_back(obj);
      if (progress) {
        AscentProgress p{k, s.octaves, step, s.steps, h, w, &r.curve.back()};
        progress(p);
      }
      const Tensor& g_input = session->backward_input(value, seed, s.rule);
      Tensor g = jitter ? roll(g_input, undo_y, undo_x) : g_input.clone();
      // dO/dX = a_c * dO/dt
      for (int n = 0; n < N; ++n)
        for (int c = 0; c < C; ++c) {
          float* p = g.data() + n * per + c * hw;
          for (int64_t i = 0; i < hw; ++i) p[i] *= levels.gain[c];
        }
      if (k == 0 && step == 0)
        for (int n = 0; n < N; ++n)
          r.zero_start_gradient[n] =
              std::all_of(g.data() + n * per, g.data() + (n + 1) * per, [](float v) { return v == 0.0f; });

      // Normalised steps: the objective's gradient is scaled to mean |g| = 1 per image first, so
      // lambda and the TV weight are relative to it. Then G = g - 2 lambda X - w_tv dTV/dX.
      if (s.normalize_step)
        for (int n = 0; n < N; ++n) {
          float* gn = g.data() + n * per;
          double mean_abs = 0.0;
          for (int64_t i = 0; i < per; ++i) mean_abs += std::fabs(gn[i]);
          mean_abs /= double(per);
          const double scale = mean_abs > 0.0 ? 1.0 / mean_abs : 0.0;
          for (int64_t i = 0; i < per; ++i) gn[i] = float(gn[i] * scale);
        }
      for (int64_t i = 0; i < g.numel(); ++i) g[i] -= 2.0f * s.l2 * x[i];
      if (s.tv > 0.0f) total_variation(x, s.tv_beta, -s.tv, &g);
      for (int64_t i = 0; i < x.numel(); ++i) x[i] += s.lr * g[i];
      if (s.blur_every > 0 && (step + 1) % s.blur_every == 0) x = gaussian_blur(x, s.blur_sigma);
      if (s.clip_percentile > 0.0f) clip_small_pixels(x, s.clip_percentile);
      if (s.clamp_range)
        for (int n = 0; n < N; ++n)
          for (int64_t i = 0; i < per; ++i) x[n * per + i] = std::clamp(x[n * per + i], lo[i], hi[i]);
    }
    if (k == s.octaves - 1) {  // the result's own objective, without jitter
      session->forward(levels.to_input(x));
      seed.fill(0.0f);
      r.final_objective = objective.seed(session->value(value), seed);
    }
  }
  r.levels = std::move(x);
  return r;
}

}  // namespace deepinside::viz
