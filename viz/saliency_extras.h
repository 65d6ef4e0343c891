#pragma once
// Saliency beyond the single gradient (docs/methods.md): the paper's ten crops and flips, SmoothGrad,
// gradient x input and Integrated Gradients. Every method that evaluates many inputs goes through a
// BatchedGradients: one Session planned once for (B,C,H,W) and reused chunk after chunk, inputs made
// chunk by chunk, results accumulated in place, so memory is fixed by B however many inputs are asked.
#include <cstdint>
#include <functional>
#include <vector>

#include "engine/backend.h"
#include "engine/model.h"
#include "engine/session.h"

namespace deepinside::viz {

// ---- deterministic noise ---------------------------------------------------------------------------
// n standard normal draws for (seed, stream): the same numbers on every platform and whatever the
// chunking, so that SmoothGrad's sample i sees the same noise at any --batch-size.
void gaussian_fill(uint64_t seed, uint64_t stream, float* out, int64_t n);

// ---- batched passes --------------------------------------------------------------------------------

// The batch size that splits `count` inputs into the fewest chunks of at most max_batch, as evenly as
// possible (50 inputs, max 16 -> 4 chunks of 13): the shape to plan a BatchedGradients for.
int balanced_batch(int64_t count, int max_batch);

class BatchedGradients {
 public:
  // Writes input `index` (C,H,W) into chw.
  using Make = std::function<void(int64_t index, float* chw)>;
  // Receives d S_cls / d input for input `index`, (C,H,W).
  using Consume = std::function<void(int64_t index, const float* grad_chw)>;
  // Receives the class scores (model.classes) of input `index`.
  using ConsumeScores = std::function<void(int64_t index, const float* scores)>;

  // Plans one Session for (batch, C, H, W); nothing is allocated per call afterwards except the
  // Session's own cached backward plan. fuse: the session may fuse (SessionOptions), for callers
  // that read nothing but the scores and the input gradient.
  BatchedGradients(const Model& model, Backend& backend, int batch, bool fuse = false);

  int batch() const { return batch_; }
  const Model& model() const { return model_; }
  // The planned Session, for single passes of its own (CAM with a batch of 1).
  Session& session() { return session_; }

  // Forward only, chunk by chunk.
  void scores(int64_t count, const Make& make, const ConsumeScores& consume);
  // Forward + backward with seed one-hot at cls for every input, chunk by chunk. A last partial chunk
  // runs on the full planned batch with zero seeds in the unused slots.
  void gradients(int64_t count, const Make& make, int cls, BackwardRule rule, const Consume& consume);

 private:
  const Model& model_;
  int batch_;
  Session session_;
  Tensor inputs_;  // (B,C,H,W)
  Tensor seed_;    // shape of the scores value
  int64_t image_size_;
};

// ---- results ---------------------------------------------------------------------------------------

struct Attribution {
  int cls = -1;        // the class explained
  float score = 0.0f;  // S_c at the image
  Tensor attribution;  // (C,H,W), see each method
  Tensor map;          // (H,W), see each method
  // Integrated Gradients only: sum of the attribution and S_c(x) - S_c(baseline) (completeness).
  double attribution_sum = 0.0, score_difference = 0.0;
};

// M (H,W) = max over c of |a (C,H,W)|: the paper's map, for gradients.
Tensor max_abs_map(const float* chw, int64_t C, int64_t H, int64_t W);
// M (H,W) = |sum over c of a (C,H,W)|: a pixel's net contribution, for signed attributions whose sum
// means something (gradient x input, Integrated Gradients).
Tensor abs_sum_map(const float* chw, int64_t C, int64_t H, int64_t W);

// S_c for the image (C,H,W), and the class: cls itself when >= 0 (checked), else the top-1.
std::pair<int, float> class_and_score(BatchedGradients& runner, const Tensor& image, int cls);

// ---- methods ---------------------------------------------------------------------------------------

// Gradient x input (Shrikumar et al. 2016; Captum InputXGradient): a = x * dS_c/dx.
// map = |sum_c a|.
Attribution gradient_x_input(BatchedGradients& runner, const Tensor& image, int cls, BackwardRule rule);

struct SmoothGradOptions {
  int samples = 50;        // n
  float noise = 0.15f;     // sigma = noise * (max x - min x) over the image tensor
  uint64_t seed = 0;       // sample i adds sigma * gaussian_fill(seed, i)
  BackwardRule rule = BackwardRule::gradient;
  // When set, replaces the default noise: writes epsilon_i (C,H,W, absolute, already scaled) for
  // sample i (tests feed the golden generator's noise through it).
  std::function<void(int64_t sample, float* eps)> noise_source;
};
// SmoothGrad (Smilkov et al. 2017; Captum NoiseTunnel(Saliency(abs=False)), nt_type "smoothgrad"):
// a = 1/n sum_i dS_c/dx (x + eps_i), eps_i ~ N(0, sigma^2). map = max_c |a|.
Attribution smoothgrad(BatchedGradients& runner, const Tensor& image, int cls, const SmoothGradOptions& opt);

struct IntegratedGradientsOptions {
  int steps = 50;  // m
  BackwardRule rule = BackwardRule::gradient;
};
// Integrated Gradients (Sundararajan et al. 2017; Captum IntegratedGradients, method "riemann_middle"):
// a = (x - x') * 1/m sum_{k=0}^{m-1} dS_c/dx (x' + alpha_k (x - x')), alpha_k = (k + 1/2) / m.
// map = |sum_c a|. baseline x' has the image's shape (C,H,W).
Attribution integrated_gradients(BatchedGradients& runner, const Tensor& image, const Tensor& baseline, int cls,
                                 const IntegratedGradientsOptions& opt);

// ---- ten crops and flips (paper Sec. 3.2, the localisation experiments) ------------------------------

struct CropSpec {
  int x0 = 0, y0 = 0;  // top-left corner in the full image
  bool flip = false;   // mirrored left-right
};
// The 10 sub-images of an FH x FW image for an H x W network: top-left, top-right, bottom-left,
// bottom-right, centre, then the same five mirrored. Throws Error when the crop does not fit.
std::vector<CropSpec> ten_crops(int full_height, int full_width, int height, int width);

struct TenCropResult {
  int cls = -1;
  float probability = 0.0f;       // the class's softmax probability averaged over the 10 crops
  Tensor map;                     // (FH,FW): per pixel, the mean of the crops' maps that cover it
  Tensor coverage;                // (FH,FW): how many crops cover each pixel
};
// Writes the network input (C,H,W) of one crop (already mirrored when spec.flip).
using MakeCrop = std::function<void(const CropSpec& spec, float* chw)>;
// The crops' saliency maps M = max_c |dS_c/dI| (each crop's own gradient), each mirrored back when the
// crop was, placed at the crop's position and averaged over the crops covering each pixel. The class
// is cls when >= 0, else the top-1 of the softmax averaged over the 10 crops. runner's batch is any
// size (10 = one pass).
TenCropResult ten_crop_saliency(BatchedGradients& runner, int full_height, int full_width, const MakeCrop& make,
                                int cls, BackwardRule rule);
// A MakeCrop that cuts height x width crops out of a full tensor (C,FH,FW) already in the network's
// units (mirroring the columns for flipped crops). full must outlive the MakeCrop.
MakeCrop crops_of_tensor(const Tensor& full, int height, int width);

}  // namespace deepinside::viz
