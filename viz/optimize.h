#pragma once
// One gradient-ascent engine on the input image, shared by class model visualisation (paper Sec. 2),
// activation maximisation, feature inversion and Deep Dream (docs/class-models.md,
// docs/inversion-dream.md).
//
// The variable is the paper's zero-centred image I, kept in grey levels: X = (pixel in 0..255) -
// (the dataset mean in the same levels), shape (N,C,H,W), one image per batch entry. The network's
// input is t = a_c * X per channel c, a_c = (range_hi - range_lo) / 255 * scale / std_c (the model
// card's preprocessing); so for a Caffe-style net (pixels minus mean, as the paper's) X is exactly
// the input, and for any other card the step, lambda, blur and jitter keep their meaning in pixels.
//
// Each step (per image n; images never interact):
//   1. jitter: X_j = X rolled by a random (dy, dx) in [-J, J]^2 (circularly)
//   2. forward t = a * X_j; the objective O_n and its seed d(sum O)/d(value) at its layer; one
//      backward_input; g = a * (the gradient rolled back): dO_n/dX exactly
//   3. G = g - 2 lambda X - w_tv dTV(X)/dX, where with normalised steps g is first divided by its
//      mean |g| over the image (as Deep Dream does), so lambda and w_tv weigh against a unit gradient
//   4. X += lr G            (fixed step: the paper's plain gradient ascent; lr in levels per unit
//                            of gradient, or levels per step with normalised steps)
//   5. every k-th step: X = gaussian_blur(X, sigma)
//   6. pixel-norm clipping: the q % of pixels with the smallest norm over channels are set to 0
//   7. optionally X is clamped to what a PNG can show (0..255 once the mean is added)
// Octaves: the image is optimised at K sizes, smallest first (size_k = full / s^(K-1-k)). The start
// image X0 gives a pyramid base_k = resize(X0, size_k); octave k starts from base_k + resize(X_{k-1}
// - base_{k-1}) (Deep Dream's detail transfer; from a zero start it is the plain upscaled image).
// The network runs on each octave's size, so octaves need a network that accepts those sizes up to
// the objective's layer (fully convolutional up to there).
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/image.h"
#include "engine/model.h"
#include "engine/session.h"

namespace deepinside::viz {

// Grey levels <-> network input, per channel (see the top of this file).
struct LevelSpace {
  std::vector<float> gain;  // a_c: input units per grey level
  Preprocessing pre;        // for the mean (per channel or per pixel) and the pixel range

  static LevelSpace from(const Preprocessing& p, int channels);
  // The dataset mean in grey levels at this size, (C,H,W): the value X = 0 shows as.
  Tensor mean_levels(int height, int width) const;
  // Input tensor (N,C,H,W) -> X, and back.
  Tensor to_levels(const Tensor& input) const;
  Tensor to_input(const Tensor& levels) const;
  // The picture X (C,H,W) shows: mean added, rounded and clamped to 0..255, RGB or grey.
  Image to_image(const float* chw, int height, int width) const;
};

// What is maximised. Sums over the batch; image n's objective depends on image n only.
class Objective {
 public:
  virtual ~Objective() = default;
  // The value (a layer) the objective reads.
  virtual int value() const = 0;
  // Called once per octave, before its first step, with a session planned for that octave's input
  // (N,C,H,W) and the level space; objectives that need a reference (feature inversion's target
  // activations) compute it here.
  virtual void start_octave(Session& session, const LevelSpace& levels, int height, int width) {}
  // After forward: writes d(sum_n O_n)/d(value) into seed (zeroed, the value's shape) and returns
  // O_n per image.
  virtual std::vector<double> seed(const Tensor& value, Tensor& seed) = 0;
  // A short name for progress lines ("score", "activation", "loss", ...).
  virtual std::string name() const = 0;
};

// Class model (paper Sec. 2). score: O = S_c, the unnormalised score (the paper's choice);
// logprob: O = log P_c = S_c - log sum_k exp S_k, seed e_c - P (what a Softmax + Log backward gives,
// computed in double from the scores); prob: O = P_c, seed P_c (e_c - P).
enum class ClassObjectiveKind { score, logprob, prob };
ClassObjectiveKind parse_class_objective(const std::string& name);  // score|logprob|prob, else Error
const char* class_objective_name(ClassObjectiveKind kind);

class ClassObjective : public Objective {
 public:
  ClassObjective(int scores_value, std::vector<int> classes, ClassObjectiveKind kind);
  int value() const override { return scores_value_; }
  std::vector<double> seed(const Tensor& scores, Tensor& seed) override;
  std::string name() const override { return class_objective_name(kind_); }
  // S_c and P_c of every image at every forward so far (the score curve), [forward][n].
  const std::vector<std::vector<float>>& score_curve() const { return scores_; }
  const std::vector<std::vector<float>>& prob_curve() const { return probs_; }

 private:
  int scores_value_;
  std::vector<int> classes_;
  ClassObjectiveKind kind_;
  std::vector<std::vector<float>> scores_, probs_;
};

// Activation maximisation: a channel of a layer, O = mean over positions of value[n, k_n, :, :]
// (or value[n, k_n] for a 2-D layer), or one unit O = value[n, k_n, y, x] when y, x >= 0.
class UnitObjective : public Objective {
 public:
  UnitObjective(int value, std::vector<int> channels, int y = -1, int x = -1);
  int value() const override { return value_; }
  std::vector<double> seed(const Tensor& layer, Tensor& seed) override;
  std::string name() const override { return "activation"; }

 private:
  int value_;
  std::vector<int> channels_;
  int y_, x_;
};

// Feature inversion (Mahendran & Vedaldi 2015): O = -1/2 ||phi(X) - phi(X_target)||^2 / ||phi(X_target)||^2
// per image, seed = -(phi - phi_target) / ||phi_target||^2. The target activations are computed at
// each octave from the target image (levels, (N,C,H,W) at the full size) resized to that octave.
class MatchObjective : public Objective {
 public:
  MatchObjective(int value, Tensor target_levels);
  int value() const override { return value_; }
  void start_octave(Session& session, const LevelSpace& levels, int height, int width) override;
  std::vector<double> seed(const Tensor& layer, Tensor& seed) override;
  std::string name() const override { return "-loss"; }

 private:
  int value_;
  Tensor target_levels_, phi_target_;
  std::vector<double> target_sq_;  // ||phi_target||^2 per image
};

// Deep Dream: O = 1/2 ||phi(X)||^2 per image, seed = phi.
class NormObjective : public Objective {
 public:
  explicit NormObjective(int value) : value_(value) {}
  int value() const override { return value_; }
  std::vector<double> seed(const Tensor& layer, Tensor& seed) override;
  std::string name() const override { return "energy"; }

 private:
  int value_;
};

struct AscentSettings {
  int steps = 200;             // per octave
  float lr = 500.0f;           // step size (grey levels per unit of gradient; with normalize_step, per step)
  bool normalize_step = false; // divide the objective's gradient by its mean |g| per image (Deep Dream)
  float l2 = 1e-5f;            // lambda of lambda ||X||^2 (X in grey levels, zero-centred)
  int jitter = 0;              // max random shift in pixels, per step and image (0: off)
  int blur_every = 0;          // blur X every k steps (0: off)
  float blur_sigma = 0.5f;     // in pixels
  float tv = 0.0f;             // weight of the total variation sum((dx^2 + dy^2)^(beta/2))
  float tv_beta = 2.0f;
  float clip_percentile = 0.0f;  // 0..100: that share of pixels with the smallest norm is zeroed each step
  bool clamp_range = false;    // keep X showable: 0 <= X + mean <= 255
  int octaves = 1;
  float octave_scale = 1.4f;
  uint64_t seed = 0;           // jitter's random generator
  BackwardRule rule = BackwardRule::gradient;
};

// Throws Error naming the setting when one is out of range.
void check_settings(const AscentSettings& s);
// The octaves' image sizes, smallest first; the last is (height, width).
std::vector<std::pair<int, int>> octave_sizes(int height, int width, const AscentSettings& s);
// check_settings, and that the network takes every octave's size up to `value`; throws Error naming
// the octave and size otherwise. gradient_ascent calls it first; tools call it before any output.
void check_octaves(const Model& model, int value, const AscentSettings& s, int height, int width);

struct AscentProgress {
  int octave = 0, octaves = 1, step = 0, steps = 0;  // step of this octave, 0-based
  int height = 0, width = 0;
  const std::vector<double>* objective = nullptr;   // O_n at this step's forward
};

struct AscentResult {
  Tensor levels;                          // X (N,C,H,W) after the last step, full size
  std::vector<std::vector<double>> curve; // O_n at every step's forward, [step][n] (all octaves)
  std::vector<double> final_objective;    // O_n of the result (one more forward, no jitter)
  std::vector<bool> zero_start_gradient;  // image n's objective had an all-zero gradient at step 0
};

// Runs the ascent. start: X0 (N,C,H,W) in levels at the model's full working size (zeros for the
// paper's class models). The graph is cut at the objective's value (engine/subgraph.h).
AscentResult gradient_ascent(const Model& model, Backend& backend, Objective& objective, const Tensor& start,
                             const AscentSettings& settings,
                             const std::function<void(const AscentProgress&)>& progress = {});

// The image operations of the regularisers and octaves, on (N,C,H,W) float tensors. Public for tests.
// Antialiased bilinear resize (PIL's BILINEAR filter = torch interpolate(bilinear, antialias=True)).
Tensor resize_bilinear(const Tensor& x, int height, int width);
// Gaussian blur, kernel radius ceil(3 sigma) (clipped to the image), borders mirrored (dcb|abcd|cba).
Tensor gaussian_blur(const Tensor& x, float sigma);
// Rolls each image n by (dy[n], dx[n]) circularly: out[.., (i+dy) mod H, (j+dx) mod W] = x[.., i, j].
Tensor roll(const Tensor& x, const std::vector<int>& dy, const std::vector<int>& dx);
// Total variation per image and its gradient added into grad (scaled by weight).
std::vector<double> total_variation(const Tensor& x, float beta, float weight, Tensor* grad);
// Sets to zero the floor(percentile/100 * H*W) pixels of each image with the smallest norm over channels
// (ties: lower index first).
void clip_small_pixels(Tensor& x, float percentile);

// Noise in grey levels: N(0, std^2), (N,C,H,W), from a fixed seed.
Tensor noise_levels(const Shape& shape, float std, uint64_t seed);

}  // namespace deepinside::viz
