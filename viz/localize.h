#pragma once
// Weakly supervised object localisation from a class saliency map (Simonyan et al. 2013, Sec. 3.2;
// docs/localisation.md). The saliency map seeds two colour models, Gaussian mixtures fitted by EM: the
// foreground from the pixels whose saliency is at or above its 95% quantile, the background from those
// at or below its 30% quantile. A GraphCut (Boykov-Kolmogorov max-flow, libmaxflow) labels every pixel
// with unary terms -log p(colour | model) and GrabCut's contrast-sensitive pairwise term; the largest
// connected component of the foreground is the object, and its bounding box the answer.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/image.h"

namespace deepinside::viz {

// ---- Gaussian mixtures --------------------------------------------------------------------------

// p(x) = sum_k weights[k] N(x; means[k], covariances[k]) over dim-dimensional points.
struct GaussianMixture {
  int dim = 0;
  std::vector<double> weights;      // (K), sum 1
  std::vector<double> means;        // (K, dim)
  std::vector<double> covariances;  // (K, dim, dim), symmetric positive definite
  // Derived by prepare() for log_density: the inverse covariances (K,dim,dim) and per component
  // log(weight) - log det(cov) / 2 - dim/2 log(2 pi).
  std::vector<double> inverses, log_norms;

  int components() const { return int(weights.size()); }
  void prepare();                           // after changing weights, means or covariances
  double log_density(const double* x) const;  // log p(x); prepare() first
};

struct GmmOptions {
  int components = 5;
  int max_iterations = 30;     // EM iterations at most
  double tolerance = 1e-5;     // stop when the mean log-likelihood gains less than this
  double regularization = 1e-4;  // added to every covariance diagonal (data units squared)
  uint64_t seed = 0;           // k-means++ initialisation
};

// EM from a k-means++ / k-means start (deterministic for a seed). points: (n, dim) row-major, n >= 1.
// With fewer distinct points than components, the duplicates' components are dropped, so the result
// may have fewer components than asked for.
GaussianMixture fit_gmm(const std::vector<double>& points, int dim, const GmmOptions& options);

// ---- Masks and boxes ----------------------------------------------------------------------------

// [x0, x1) x [y0, y1) in pixels; empty when x1 <= x0 or y1 <= y0.
struct Box {
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  int64_t area() const { return x1 > x0 && y1 > y0 ? int64_t(x1 - x0) * (y1 - y0) : 0; }
  bool empty() const { return area() == 0; }
  bool operator==(const Box&) const = default;
};

// Intersection over union; 0 when both are empty.
double iou(const Box& a, const Box& b);

// mask (height, width), non-zero = set. The largest 4- or 8-connected component (ties: the one whose
// first pixel in scan order comes first) as a 0/1 mask; all zeros when the mask is empty.
std::vector<uint8_t> largest_component(const std::vector<uint8_t>& mask, int width, int height, int connectivity);
// The smallest box holding every set pixel; empty when none is set.
Box bounding_box(const std::vector<uint8_t>& mask, int width, int height);

// The q-quantile (0 <= q <= 1) of values, linearly interpolated between order statistics (numpy's
// default): q = 0 is the minimum, q = 1 the maximum.
double quantile(const float* values, int64_t n, double q);

// ---- GraphCut segmentation ----------------------------------------------------------------------

struct GraphCutOptions {
  double fg_quantile = 0.95;  // foreground model from pixels with saliency >= this quantile (paper)
  double bg_quantile = 0.30;  // background model from pixels with saliency <= this quantile (paper)
  int components = 5;         // Gaussians per colour model
  double gamma = 50.0;        // pairwise weight (GrabCut's value): gamma / dist(p,q) exp(-beta |z_p - z_q|^2)
  int neighbours = 8;         // 4 or 8 (also the connectivity of the largest component)
  int iterations = 1;         // colour-model re-estimations from the cut (GrabCut); 1 = the paper's one cut
  uint64_t seed = 0;          // the GMMs' k-means++ initialisation
  int em_iterations = 30;     // EM iterations per colour model at most (GmmOptions::max_iterations)
  double em_tolerance = 1e-5; // EM stops when the mean log-likelihood gains less (GmmOptions::tolerance)
};

// Throws Error naming the option when one is out of range.
void check_graphcut_options(const GraphCutOptions& options);

struct Localization {
  std::vector<uint8_t> segmentation;  // (height, width) 0/1: the GraphCut's foreground
  std::vector<uint8_t> mask;          // (height, width) 0/1: its largest connected component
  Box box;                            // the mask's bounding box (the whole image when degenerate)
  int64_t mask_area = 0;              // pixels in mask
  int64_t fg_seeds = 0, bg_seeds = 0; // pixels the two colour models were fitted to
  double beta = 0.0;                  // 1 / (2 <|z_p - z_q|^2>) over neighbouring pairs
  bool degenerate = false;            // the saliency map is constant (nothing to seed from), or the cut is empty
};

// image: RGB or grey pixels (width x height) the saliency map lies on; saliency: (height, width).
Localization localize_graphcut(const Image& image, const float* saliency, const GraphCutOptions& options);

// The GraphCut alone, for given colour models (unit-tested on synthetic images): 0/1 labels, 1 = foreground.
// Colours are the pixels in [0,1] (3 or 1 per pixel, as the models' dim). beta_out receives beta.
std::vector<uint8_t> graphcut_segment(const Image& image, const GaussianMixture& fg, const GaussianMixture& bg,
                                      double gamma, int neighbours, double* beta_out = nullptr);
// The energy the cut minimises, for checking it: sum_p -log p(z_p | model of L_p) + sum over neighbouring
// pairs with L_p != L_q of gamma / dist(p,q) exp(-beta |z_p - z_q|^2).
double graphcut_energy(const Image& image, const GaussianMixture& fg, const GaussianMixture& bg, double gamma,
                       int neighbours, const std::vector<uint8_t>& labels);

// ---- The baselines' boxes ------------------------------------------------------------------------

// Zhou et al.'s (2016) recipe for CAM, also used for their backprop-saliency baseline: smooth the map by a
// Gaussian of blur_sigma pixels (0: none), keep the pixels >= threshold * its maximum, return the box of
// the largest connected component (8-connected). The whole image when the map is all zero.
struct ThresholdBoxOptions {
  double threshold = 0.2;
  double blur_sigma = 0.0;
};
Box threshold_box(const float* map, int width, int height, const ThresholdBoxOptions& options);

// Gaussian blur of a (height, width) map, edges clamped; sigma 0 returns the map.
std::vector<float> gaussian_blur(const float* map, int width, int height, double sigma);

// ---- Pictures ----------------------------------------------------------------------------------

// A copy of image (as RGB) with each box's outline drawn `thickness` pixels wide in its colour.
struct DrawnBox {
  Box box;
  uint8_t r = 255, g = 0, b = 0;
};
Image draw_boxes(const Image& image, const std::vector<DrawnBox>& boxes, int thickness = 1);
// The mask as an 8-bit grey PNG picture: 255 inside, 0 outside.
Image mask_image(const std::vector<uint8_t>& mask, int width, int height);
// A distinct colour for the k-th box (k = 0: red, 1: green, ...).
DrawnBox box_colour(const Box& box, int k);

}  // namespace deepinside::viz
