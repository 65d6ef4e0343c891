#include "viz/localize.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include <Eigen/Dense>
#include <maxflow/graph.h>

#include "engine/error.h"

namespace deepinside::viz {

namespace {

constexpr double kLog2Pi = 1.8378770664093453;  // log(2 pi)

double squared_distance(const double* a, const double* b, int dim) {
  double d = 0.0;
  for (int i = 0; i < dim; ++i) d += (a[i] - b[i]) * (a[i] - b[i]);
  return d;
}

// Deterministic k-means++ seeding (Arthur & Vassilvitskii) then Lloyd iterations. Returns the centres
// (k', dim) with k' <= k: seeding stops early when every point coincides with a centre.
std::vector<double> kmeans(const std::vector<double>& pts, int dim, int k, uint64_t seed, std::vector<int>& assign) {
  const int64_t n = int64_t(pts.size()) / dim;
  std::mt19937_64 rng(seed);
  std::vector<double> centres(pts.begin(), pts.begin() + dim);  // the first centre: a uniform pick
  {
    const int64_t first = int64_t(rng() % uint64_t(n));
    std::copy(pts.begin() + first * dim, pts.begin() + (first + 1) * dim, centres.begin());
  }
  std::vector<double> d2(n);
  for (int64_t i = 0; i < n; ++i) d2[i] = squared_distance(&pts[i * dim], centres.data(), dim);
  while (int(centres.size()) / dim < k) {
    const double total = std::accumulate(d2.begin(), d2.end(), 0.0);
    if (!(total > 0.0)) break;  // every point is already a centre
    double r = std::uniform_real_distribution<double>(0.0, total)(rng);
    int64_t pick = n - 1;
    for (int64_t i = 0; i < n; ++i) {
      r -= d2[i];
      if (r < 0.0 && d2[i] > 0.0) {
        pick = i;
        break;
      }
    }
    if (!(d2[pick] > 0.0))  // rounding ran past the end: take the farthest point instead
      pick = std::max_element(d2.begin(), d2.end()) - d2.begin();
    const size_t at = centres.size();
    centres.insert(centres.end(), pts.begin() + pick * dim, pts.begin() + (pick + 1) * dim);
    for (int64_t i = 0; i < n; ++i) d2[i] = std::min(d2[i], squared_distance(&pts[i * dim], &centres[at], dim));
  }
  const int kk = int(centres.size()) / dim;
  assign.assign(n, 0);
  for (int iter = 0; iter < 10; ++iter) {
    bool changed = false;
    for (int64_t i = 0; i < n; ++i) {
      int best = 0;
      double bd = std::numeric_limits<double>::infinity();
      for (int c = 0; c < kk; ++c) {
        const double d = squared_distance(&pts[i * dim], &centres[size_t(c) * dim], dim);
        if (d < bd) bd = d, best = c;
      }
      changed |= assign[i] != best;
      assign[i] = best;
    }
    if (!changed && iter > 0) break;
    std::vector<double> sum(size_t(kk) * dim, 0.0);
    std::vector<int64_t> count(kk, 0);
    for (int64_t i = 0; i < n; ++i) {
      ++count[assign[i]];
      for (int j = 0; j < dim; ++j) sum[size_t(assign[i]) * dim + j] += pts[i * dim + j];
    }
    for (int c = 0; c < kk; ++c)
      if (count[c] > 0)
        for (int j = 0; j < dim; ++j) centres[size_t(c) * dim + j] = sum[size_t(c) * dim + j] / double(count[c]);
  }
  return centres;
}

// M-step from responsibilities resp (n, K): weights, means, covariances (+ reg I). Components whose
// total responsibility is below min_mass are dropped.
GaussianMixture m_step(const std::vector<double>& pts, int dim, const std::vector<double>& resp, int K, double reg) {
  const int64_t n = int64_t(pts.size()) / dim;
  GaussianMixture g;
  g.dim = dim;
  for (int k = 0; k < K; ++k) {
    double nk = 0.0;
    std::vector<double> mean(dim, 0.0), cov(size_t(dim) * dim, 0.0);
    for (int64_t i = 0; i < n; ++i) {
      const double r = resp[i * K + k];
      nk += r;
      for (int a = 0; a < dim; ++a) mean[a] += r * pts[i * dim + a];
    }
    if (!(nk > 1e-9 * double(n)) || nk < 1e-12) continue;
    for (double& m : mean) m /= nk;
    for (int64_t i = 0; i < n; ++i) {
      const double r = resp[i * K + k];
      if (r == 0.0) continue;
      for (int a = 0; a < dim; ++a) {
        const double da = pts[i * dim + a] - mean[a];
        for (int b = 0; b <= a; ++b) cov[size_t(a) * dim + b] += r * da * (pts[i * dim + b] - mean[b]);
      }
    }
    for (int a = 0; a < dim; ++a)
      for (int b = 0; b <= a; ++b) {
        const double v = cov[size_t(a) * dim + b] / nk + (a == b ? reg : 0.0);
        cov[size_t(a) * dim + b] = cov[size_t(b) * dim + a] = v;
      }
    g.weights.push_back(nk / double(n));
    g.means.insert(g.means.end(), mean.begin(), mean.end());
    g.covariances.insert(g.covariances.end(), cov.begin(), cov.end());
  }
  const double total = std::accumulate(g.weights.begin(), g.weights.end(), 0.0);
  for (double& w : g.weights) w /= total;
  g.prepare();
  return g;
}

// E-step: responsibilities (n, K) and the mean log-likelihood.
double e_step(const GaussianMixture& g, const std::vector<double>& pts, std::vector<double>& resp) {
  const int dim = g.dim, K = g.components();
  const int64_t n = int64_t(pts.size()) / dim;
  resp.assign(size_t(n) * K, 0.0);
  std::vector<double> lp(K);
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double* x = &pts[i * dim];
    double peak = -std::numeric_limits<double>::infinity();
    for (int k = 0; k < K; ++k) {
      const double* mu = &g.means[size_t(k) * dim];
      const double* inv = &g.inverses[size_t(k) * dim * dim];
      double q = 0.0;
      for (int a = 0; a < dim; ++a)
        for (int b = 0; b < dim; ++b) q += (x[a] - mu[a]) * inv[a * dim + b] * (x[b] - mu[b]);
      lp[k] = g.log_norms[k] - 0.5 * q;
      peak = std::max(peak, lp[k]);
    }
    double s = 0.0;
    for (int k = 0; k < K; ++k) s += std::exp(lp[k] - peak);
    const double log_sum = peak + std::log(s);
    total += log_sum;
    for (int k = 0; k < K; ++k) resp[i * K + k] = std::exp(lp[k] - log_sum);
  }
  return total / double(n);
}

// Pixel colours in [0,1]: (width*height, dim), dim = 3 (RGB) or 1 (grey).
std::vector<double> pixel_colours(const Image& image, int& dim) {
  std::string note;
  const Image img = image.channels == 1 || image.channels == 3 ? image
                    : convert_channels(image, image.channels == 2 ? 1 : 3, &note);
  dim = img.channels;
  std::vector<double> z(img.pixels.size());
  for (size_t i = 0; i < z.size(); ++i) z[i] = img.pixels[i] / 255.0;
  return z;
}

void throw_maxflow_error(const char* message) { throw Error(std::string("max-flow: ") + message); }

}  // namespace

// ---- Gaussian mixtures --------------------------------------------------------------------------

void GaussianMixture::prepare() {
  const int K = components();
  require(dim >= 1 && int(means.size()) == K * dim && int(covariances.size()) == K * dim * dim,
          "a Gaussian mixture's means and covariances do not match its dimension and component count");
  inverses.assign(covariances.size(), 0.0);
  log_norms.assign(K, 0.0);
  for (int k = 0; k < K; ++k) {
    Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> cov(
        &covariances[size_t(k) * dim * dim], dim, dim);
    const Eigen::LLT<Eigen::MatrixXd> llt(cov);
    require(llt.info() == Eigen::Success, "a Gaussian mixture covariance is not positive definite");
    const Eigen::MatrixXd inv = llt.solve(Eigen::MatrixXd::Identity(dim, dim));
    double log_det = 0.0;
    for (int i = 0; i < dim; ++i) log_det += 2.0 * std::log(llt.matrixL()(i, i));
    for (int a = 0; a < dim; ++a)
      for (int b = 0; b < dim; ++b) inverses[size_t(k) * dim * dim + a * dim + b] = inv(a, b);
    log_norms[k] = std::log(weights[k]) - 0.5 * log_det - 0.5 * dim * kLog2Pi;
  }
}

double GaussianMixture::log_density(const double* x) const {
  const int K = components();
  double lp[16], peak = -std::numeric_limits<double>::infinity();
  std::vector<double> big;
  double* l = lp;
  if (K > 16) {
    big.resize(K);
    l = big.data();
  }
  for (int k = 0; k < K; ++k) {
    const double* mu = &means[size_t(k) * dim];
    const double* inv = &inverses[size_t(k) * dim * dim];
    double q = 0.0;
    for (int a = 0; a < dim; ++a) {
      double row = 0.0;
      for (int b = 0; b < dim; ++b) row += inv[a * dim + b] * (x[b] - mu[b]);
      q += (x[a] - mu[a]) * row;
    }
    l[k] = log_norms[k] - 0.5 * q;
    peak = std::max(peak, l[k]);
  }
  double s = 0.0;
  for (int k = 0; k < K; ++k) s += std::exp(l[k] - peak);
  return peak + std::log(s);
}

GaussianMixture fit_gmm(const std::vector<double>& points, int dim, const GmmOptions& o) {
  require(dim >= 1, "a Gaussian mixture needs a dimension >= 1");
  require(o.components >= 1 && o.components <= 64, "the number of mixture components must be between 1 and 64");
  require(!points.empty() && points.size() % size_t(dim) == 0,
          "a Gaussian mixture needs at least one point and (n, dim) values");
  require(o.regularization > 0.0 && std::isfinite(o.regularization), "the covariance regularisation must be > 0");
  require(o.max_iterations >= 1, "a Gaussian mixture needs at least one EM iteration");
  require(o.tolerance >= 0.0 && std::isfinite(o.tolerance), "the EM tolerance must be a number >= 0");
  for (double v : points) require(std::isfinite(v), "a Gaussian mixture cannot be fitted to NaN or infinite values");
  std::vector<int> assign;
  const std::vector<double> centres = kmeans(points, dim, o.components, o.seed, assign);
  const int K = int(centres.size()) / dim;
  const int64_t n = int64_t(points.size()) / dim;
  std::vector<double> resp(size_t(n) * K, 0.0);
  for (int64_t i = 0; i < n; ++i) resp[i * K + assign[i]] = 1.0;
  GaussianMixture g = m_step(points, dim, resp, K, o.regularization);
  double previous = -std::numeric_limits<double>::infinity();
  for (int iter = 0; iter < o.max_iterations; ++iter) {
    const double ll = e_step(g, points, resp);
    if (ll - previous < o.tolerance) break;
    previous = ll;
    g = m_step(points, dim, resp, g.components(), o.regularization);
  }
  return g;
}

// ---- Masks and boxes ----------------------------------------------------------------------------

double iou(const Box& a, const Box& b) {
  const Box inter{std::max(a.x0, b.x0), std::max(a.y0, b.y0), std::min(a.x1, b.x1), std::min(a.y1, b.y1)};
  const double i = double(inter.area());
  const double u = double(a.area()) + double(b.area()) - i;
  return u > 0.0 ? i / u : 0.0;
}

std::vector<uint8_t> largest_component(const std::vector<uint8_t>& mask, int width, int height, int connectivity) {
  require(connectivity == 4 || connectivity == 8, "connectivity must be 4 or 8");
  require(int64_t(mask.size()) == int64_t(width) * height, "mask size does not match width x height");
  std::vector<int> label(mask.size(), -1);
  std::vector<int64_t> stack;
  int best = -1, current = 0;
  int64_t best_size = 0;
  for (int64_t start = 0; start < int64_t(mask.size()); ++start) {
    if (!mask[start] || label[start] >= 0) continue;
    int64_t size = 0;
    stack.assign(1, start);
    label[start] = current;
    while (!stack.empty()) {
      const int64_t p = stack.back();
      stack.pop_back();
      ++size;
      const int x = int(p % width), y = int(p / width);
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          if ((dx == 0 && dy == 0) || (connectivity == 4 && dx != 0 && dy != 0)) continue;
          const int nx = x + dx, ny = y + dy;
          if (nx < 0 || ny < 0 || nx >= width || ny >= height) continue;
          const int64_t q = int64_t(ny) * width + nx;
          if (mask[q] && label[q] < 0) {
            label[q] = current;
            stack.push_back(q);
          }
        }
    }
    if (size > best_size) best_size = size, best = current;
    ++current;
  }
  std::vector<uint8_t> out(mask.size(), 0);
  for (size_t i = 0; i < out.size(); ++i) out[i] = best >= 0 && label[i] == best;
  return out;
}

Box bounding_box(const std::vector<uint8_t>& mask, int width, int height) {
  require(int64_t(mask.size()) == int64_t(width) * height, "mask size does not match width x height");
  Box b{width, height, 0, 0};
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      if (mask[size_t(y) * width + x]) {
        b.x0 = std::min(b.x0, x);
        b.y0 = std::min(b.y0, y);
        b.x1 = std::max(b.x1, x + 1);
        b.y1 = std::max(b.y1, y + 1);
      }
  return b.x1 > b.x0 ? b : Box{};
}

double quantile(const float* values, int64_t n, double q) {
  require(n >= 1, "the quantile of no values");
  require(q >= 0.0 && q <= 1.0, "a quantile must be between 0 and 1");
  std::vector<float> v(values, values + n);
  const double pos = q * double(n - 1);
  const int64_t lo = int64_t(std::floor(pos)), hi = std::min(lo + 1, n - 1);
  std::nth_element(v.begin(), v.begin() + lo, v.end());
  const double a = v[lo];
  if (hi == lo) return a;
  const double b = *std::min_element(v.begin() + lo + 1, v.end());  // the next order statistic
  return a + (b - a) * (pos - double(lo));
}

// ---- GraphCut segmentation ----------------------------------------------------------------------

void check_graphcut_options(const GraphCutOptions& o) {
  require(o.fg_quantile > 0.0 && o.fg_quantile < 1.0, "the foreground quantile must be between 0 and 1 (exclusive)");
  require(o.bg_quantile > 0.0 && o.bg_quantile < 1.0, "the background quantile must be between 0 and 1 (exclusive)");
  require(o.bg_quantile < o.fg_quantile, "the background quantile must be below the foreground quantile");
  require(o.components >= 1 && o.components <= 64, "the number of mixture components must be between 1 and 64");
  require(o.gamma >= 0.0 && std::isfinite(o.gamma), "the pairwise weight gamma must be a number >= 0");
  require(o.neighbours == 4 || o.neighbours == 8, "the neighbourhood must be 4 or 8");
  require(o.iterations >= 1 && o.iterations <= 100, "the GraphCut iterations must be between 1 and 100");
  require(o.em_iterations >= 1 && o.em_iterations <= 10000, "the EM iterations must be between 1 and 10000");
  require(o.em_tolerance >= 0.0 && std::isfinite(o.em_tolerance), "the EM tolerance must be a number >= 0");
}

namespace {

// Neighbour offsets: right, down, and for 8-neighbours down-right and down-left (each pair once).
struct Step {
  int dx, dy;
  double inv_dist;
};
std::vector<Step> neighbour_steps(int neighbours) {
  require(neighbours == 4 || neighbours == 8, "the neighbourhood must be 4 or 8");
  std::vector<Step> steps = {{1, 0, 1.0}, {0, 1, 1.0}};
  if (neighbours == 8) steps.push_back({1, 1, 1.0 / std::sqrt(2.0)}), steps.push_back({-1, 1, 1.0 / std::sqrt(2.0)});
  return steps;
}

// Calls f(p, q, inv_dist) for every neighbouring pair once.
template <class F>
void for_each_pair(int W, int H, const std::vector<Step>& steps, F&& f) {
  for (const Step& s : steps)
    for (int y = 0; y + s.dy < H; ++y)
      for (int x = std::max(0, -s.dx); x < W && x + s.dx < W; ++x)
        f(int64_t(y) * W + x, int64_t(y + s.dy) * W + x + s.dx, s.inv_dist);
}

// GrabCut's beta = 1 / (2 <|z_p - z_q|^2>) over all neighbouring pairs (0 for a flat image).
double contrast_beta(const std::vector<double>& z, int dim, int W, int H, const std::vector<Step>& steps) {
  double sum = 0.0;
  int64_t pairs = 0;
  for_each_pair(W, H, steps, [&](int64_t p, int64_t q, double) {
    sum += squared_distance(&z[p * dim], &z[q * dim], dim);
    ++pairs;
  });
  return sum > 0.0 ? double(pairs) / (2.0 * sum) : 0.0;
}

void check_models(const GaussianMixture& fg, const GaussianMixture& bg, int dim) {
  require(fg.dim == dim && bg.dim == dim, "the colour models' dimension does not match the image's channels");
  require(fg.components() > 0 && bg.components() > 0, "a colour model has no components");
}

}  // namespace

std::vector<uint8_t> graphcut_segment(const Image& image, const GaussianMixture& fg, const GaussianMixture& bg,
                                      double gamma, int neighbours, double* beta_out) {
  int dim = 0;
  const std::vector<double> z = pixel_colours(image, dim);
  check_models(fg, bg, dim);
  const int W = image.width, H = image.height;
  const int64_t N = int64_t(W) * H;
  const std::vector<Step> steps = neighbour_steps(neighbours);
  const double beta = contrast_beta(z, dim, W, H, steps);
  if (beta_out) *beta_out = beta;

  using Graph = maxflow::Graph<double, double, double>;
  Graph g(int(N), int(N * int64_t(steps.size())), throw_maxflow_error);
  g.add_node(int(N));
  // Source = foreground: a pixel left on the source side pays its sink capacity, -log p(z | fg); one on
  // the sink side pays its source capacity, -log p(z | bg).
  for (int64_t p = 0; p < N; ++p) g.add_tweights(int(p), -bg.log_density(&z[p * dim]), -fg.log_density(&z[p * dim]));
  if (gamma > 0.0)
    for_each_pair(W, H, steps, [&](int64_t p, int64_t q, double inv_dist) {
      const double w = gamma * inv_dist * std::exp(-beta * squared_distance(&z[p * dim], &z[q * dim], dim));
      g.add_edge(int(p), int(q), w, w);
    });
  g.maxflow();
  std::vector<uint8_t> labels(N);
  for (int64_t p = 0; p < N; ++p) labels[p] = g.what_segment(int(p)) == Graph::SOURCE;
  return labels;
}

double graphcut_energy(const Image& image, const GaussianMixture& fg, const GaussianMixture& bg, double gamma,
                       int neighbours, const std::vector<uint8_t>& labels) {
  int dim = 0;
  const std::vector<double> z = pixel_colours(image, dim);
  check_models(fg, bg, dim);
  const int W = image.width, H = image.height;
  require(int64_t(labels.size()) == int64_t(W) * H, "one label per pixel is needed");
  const std::vector<Step> steps = neighbour_steps(neighbours);
  const double beta = contrast_beta(z, dim, W, H, steps);
  double e = 0.0;
  for (size_t p = 0; p < labels.size(); ++p) e -= (labels[p] ? fg : bg).log_density(&z[p * dim]);
  for_each_pair(W, H, steps, [&](int64_t p, int64_t q, double inv_dist) {
    if (labels[p] != labels[q])
      e += gamma * inv_dist * std::exp(-beta * squared_distance(&z[p * dim], &z[q * dim], dim));
  });
  return e;
}

Localization localize_graphcut(const Image& image, const float* saliency, const GraphCutOptions& o) {
  check_graphcut_options(o);
  const int W = image.width, H = image.height;
  const int64_t N = int64_t(W) * H;
  require(N > 0, "an empty image cannot be segmented");
  for (int64_t i = 0; i < N; ++i) require(std::isfinite(saliency[i]), "the saliency map holds NaN or infinite values");
  Localization r;
  r.box = Box{0, 0, W, H};
  r.segmentation.assign(N, 0);
  r.mask.assign(N, 0);
  const double hi = quantile(saliency, N, o.fg_quantile), lo = quantile(saliency, N, o.bg_quantile);
  if (!(hi > lo)) {  // a (nearly) constant map: no pixel stands out, nothing to seed the models from
    r.degenerate = true;
    return r;
  }
  int dim = 0;
  const std::vector<double> z = pixel_colours(image, dim);
  std::vector<uint8_t> fg_set(N), bg_set(N);
  for (int64_t i = 0; i < N; ++i) fg_set[i] = saliency[i] >= hi, bg_set[i] = saliency[i] <= lo;
  GmmOptions gmm;
  gmm.components = o.components;
  gmm.seed = o.seed;
  gmm.max_iterations = o.em_iterations;
  gmm.tolerance = o.em_tolerance;
  for (int round = 0; round < o.iterations; ++round) {
    std::vector<double> fg_pts, bg_pts;
    for (int64_t i = 0; i < N; ++i) {
      if (fg_set[i]) fg_pts.insert(fg_pts.end(), &z[i * dim], &z[i * dim] + dim);
      if (bg_set[i]) bg_pts.insert(bg_pts.end(), &z[i * dim], &z[i * dim] + dim);
    }
    if (fg_pts.empty() || bg_pts.empty()) break;  // a later round whose cut took everything or nothing
    if (round == 0) r.fg_seeds = int64_t(fg_pts.size()) / dim, r.bg_seeds = int64_t(bg_pts.size()) / dim;
    const GaussianMixture fg = fit_gmm(fg_pts, dim, gmm), bg = fit_gmm(bg_pts, dim, gmm);
    r.segmentation = graphcut_segment(image, fg, bg, o.gamma, o.neighbours, &r.beta);
    for (int64_t i = 0; i < N; ++i) fg_set[i] = r.segmentation[i], bg_set[i] = !r.segmentation[i];
  }
  r.mask = largest_component(r.segmentation, W, H, o.neighbours);
  r.mask_area = std::count(r.mask.begin(), r.mask.end(), uint8_t(1));
  if (r.mask_area == 0) {
    r.degenerate = true;
    return r;
  }
  r.box = bounding_box(r.mask, W, H);
  return r;
}

// ---- The baselines' boxes ------------------------------------------------------------------------

std::vector<float> gaussian_blur(const float* map, int width, int height, double sigma) {
  std::vector<float> out(map, map + int64_t(width) * height);
  if (!(sigma > 0.0)) return out;
  const int radius = std::max(1, int(std::ceil(3.0 * sigma)));
  std::vector<double> k(2 * radius + 1);
  double total = 0.0;
  for (int i = -radius; i <= radius; ++i) total += k[i + radius] = std::exp(-0.5 * i * i / (sigma * sigma));
  for (double& v : k) v /= total;
  std::vector<float> tmp(out.size());
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      double s = 0.0;
      for (int i = -radius; i <= radius; ++i) s += k[i + radius] * out[size_t(y) * width + std::clamp(x + i, 0, width - 1)];
      tmp[size_t(y) * width + x] = float(s);
    }
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      double s = 0.0;
      for (int i = -radius; i <= radius; ++i) s += k[i + radius] * tmp[size_t(std::clamp(y + i, 0, height - 1)) * width + x];
      out[size_t(y) * width + x] = float(s);
    }
  return out;
}

Box threshold_box(const float* map, int width, int height, const ThresholdBoxOptions& o) {
  require(o.threshold >= 0.0 && o.threshold <= 1.0, "the box threshold must be between 0 and 1");
  require(o.blur_sigma >= 0.0 && std::isfinite(o.blur_sigma), "the blur sigma must be >= 0");
  const std::vector<float> m = gaussian_blur(map, width, height, o.blur_sigma);
  const float peak = *std::max_element(m.begin(), m.end());
  if (!(peak > 0.0f)) return Box{0, 0, width, height};
  std::vector<uint8_t> mask(m.size());
  for (size_t i = 0; i < m.size(); ++i) mask[i] = m[i] >= float(o.threshold) * peak;
  return bounding_box(largest_component(mask, width, height, 8), width, height);
}

// ---- Pictures ----------------------------------------------------------------------------------

Image draw_boxes(const Image& image, const std::vector<DrawnBox>& boxes, int thickness) {
  std::string note;
  Image out = image.channels == 3 ? image : convert_channels(image, 3, &note);
  const int W = out.width, H = out.height;
  const auto put = [&](int x, int y, const DrawnBox& d) {
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    uint8_t* p = &out.pixels[(size_t(y) * W + x) * 3];
    p[0] = d.r, p[1] = d.g, p[2] = d.b;
  };
  for (const DrawnBox& d : boxes) {
    if (d.box.empty()) continue;
    for (int t = 0; t < thickness; ++t) {
      const int x0 = d.box.x0 + t, y0 = d.box.y0 + t, x1 = d.box.x1 - 1 - t, y1 = d.box.y1 - 1 - t;
      if (x1 < x0 || y1 < y0) break;
      for (int x = x0; x <= x1; ++x) put(x, y0, d), put(x, y1, d);
      for (int y = y0; y <= y1; ++y) put(x0, y, d), put(x1, y, d);
    }
  }
  return out;
}

Image mask_image(const std::vector<uint8_t>& mask, int width, int height) {
  require(int64_t(mask.size()) == int64_t(width) * height, "mask size does not match width x height");
  Image out{width, height, 1, std::vector<uint8_t>(mask.size())};
  for (size_t i = 0; i < mask.size(); ++i) out.pixels[i] = mask[i] ? 255 : 0;
  return out;
}

DrawnBox box_colour(const Box& box, int k) {
  static const uint8_t palette[][3] = {{255, 40, 40}, {40, 220, 40}, {40, 120, 255}, {255, 200, 0}, {220, 60, 255},
                                       {0, 230, 230}, {255, 128, 0}, {255, 255, 255}};
  const auto& c = palette[size_t(k) % (sizeof(palette) / sizeof(palette[0]))];
  return DrawnBox{box, c[0], c[1], c[2]};
}

}  // namespace deepinside::viz
