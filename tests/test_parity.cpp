// The parity driver (DESIGN.md Sec. 7.3, after ggml's test-backend-ops): every op the fast CPU path
// accelerates x a sweep of shapes, forward and backward_input, against the CPU reference run in
// double (the templates of kernels/cpu/*.h), with DESIGN.md Sec. 4's tolerances:
//   exact                                   ReLU (values, three rules), max-pool (values, switches)
//   |x - ref| <= 1e-5 |ref| (+ 1e-6 max|ref| where a backward sum cancels)   LRN
//   |x - ref| <= 1e-4 |ref| + 2e-5 sqrt(K)  conv and FC, K = the reduction length
// Each case runs twice: the fast kernel itself on buffers with guard values around every output
// and workspace (out-of-bounds writes), with dx pre-filled so that backward must ADD; and both
// backends ("cpu" and "cpu-reference") through a Session on a one-node graph, under the three
// rectifier rules. Every output must be finite. Ops the fast backend does not accelerate run the
// reference code and must be bit-identical; whole zoo nets at small inputs close the file.
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/backend.h"
#include "engine/session.h"
#include "engine/zoo.h"
#include "parity_support.h"
#include "kernels/cpu/reference.h"
#include "kernels/cpu_fast/ops.h"
#include "kernels/cpu_fast/winograd.h"

using namespace deepinside;
namespace cpu = deepinside::cpu;
namespace fast = deepinside::cpu_fast;

namespace {

using namespace deepinside::parity;

// Runs the graph on both backends: y against ref_y, and for each rule backward_input(seed) against
// ref_dx(rule). check_saved (may be empty) inspects the node's saved state on each backend.
void check_backends(const std::string& what, const Graph& g, const Tensor& x, const Tensor& seed, const Vec& ref_y,
                    Tol tol_y, const std::function<Vec(BackwardRule)>& ref_dx, Tol tol_dx,
                    const std::function<void(const Session&, const std::string&)>& check_saved = {}) {
  for (const char* name : {"cpu", "cpu-reference"}) {
    auto backend = make_backend(name);
    Session s(g, *backend, x.shape());
    s.forward(x);
    const int y = g.outputs()[0];
    require_close(what + " forward on " + name, s.value(y).data(), ref_y, tol_y);
    if (check_saved) check_saved(s, name);
    for (BackwardRule rule : kRules) {
      const Tensor& dx = s.backward_input(y, seed, rule);
      require_close(what + " backward (" + rule_name(rule) + ") on " + name, dx.data(), ref_dx(rule), tol_dx);
    }
  }
}

// ---- convolution ----------------------------------------------------------------------------------

struct ConvCase {
  const char* name;
  Shape x;  // (N,C,H,W)
  int M, KH, KW;
  Window2d win;
  int group;
  // Zero whole output-gradient planes: every third channel, or all but one (a one-hot class seed on
  // a class-score convolution) - the fast backward then reduces over the active channels only.
  enum { dense, some_planes_zero, one_plane_active } dy_pattern = some_planes_zero;
};


void check_conv(const ConvCase& c, std::mt19937_64& rng) {
  INFO("conv case " << c.name);
  ConvParams p;
  p.window = c.win;
  p.group = c.group;
  const Shape w_shape{c.M, c.x[1] / c.group, c.KH, c.KW};
  const ConvGeometry g = conv_geometry(p, c.x, w_shape);
  // The case names say which path runs; hold them to it.
  if (fast::winograd_enabled()) REQUIRE(fast::winograd_applies(g) == (std::string(c.name).rfind("winograd", 0) == 0));
  const size_t nx = size_t(shape_numel(c.x)), nw = size_t(shape_numel(w_shape));
  const size_t ny = size_t(g.N) * g.M * g.OH * g.OW;
  const auto x = random_floats(rng, nx), w = random_floats(rng, nw), b = random_floats(rng, size_t(g.M));
  auto dy = random_floats(rng, ny, 0.3);
  const auto dx0 = random_floats(rng, nx);
  const int64_t plane = int64_t(g.OH) * g.OW;
  for (int64_t i = 0; i < int64_t(ny); ++i) {
    const int64_t m = (i / plane) % g.M;
    if ((c.dy_pattern == ConvCase::some_planes_zero && m % 3 == 1) ||
        (c.dy_pattern == ConvCase::one_plane_active && m != g.M / 2))
      dy[size_t(i)] = 0.0f;
  }
  const int64_t k_fwd = int64_t(g.C / g.group) * g.KH * g.KW, k_bwd = int64_t(g.M / g.group) * g.KH * g.KW;

  // The reference in double.
  Vec ref_y(ny), ref_dx = to_double(dx0), ref_dx_plain(nx, 0.0);
  const Vec xd = to_double(x), wd = to_double(w), bd = to_double(b), dyd = to_double(dy);
  cpu::conv2d_forward(ref_y.data(), xd.data(), wd.data(), bd.data(), g);
  cpu::conv2d_backward_input(ref_dx.data(), dyd.data(), wd.data(), g);
  cpu::conv2d_backward_input(ref_dx_plain.data(), dyd.data(), wd.data(), g);

  // The fast kernels on guarded buffers.
  Guarded<float> ws(size_t(fast::conv_workspace_floats(g)));
  Guarded<float> y(ny);
  fast::conv2d_forward(y.data(), x.data(), w.data(), b.data(), g, ws.data());
  y.require_guards("conv forward y");
  ws.require_guards("conv forward workspace");
  require_close("conv forward", y.data(), ref_y, gemm_tol(k_fwd));
  Guarded<float> dx(nx);
  std::copy(dx0.begin(), dx0.end(), dx.data());
  fast::conv2d_backward_input(dx.data(), dy.data(), w.data(), g, ws.data());
  dx.require_guards("conv backward dx");
  ws.require_guards("conv backward workspace");
  require_close("conv backward (adds into dx)", dx.data(), ref_dx, gemm_tol(k_bwd));

  if (fast::winograd_applies(g)) {
    // With the weights transformed beforehand (as the backend does at plan time): w is all NaN
    // here, so any read of w instead of u would show.
    Guarded<float> u(size_t(fast::winograd_weight_floats(g)));
    fast::winograd_transform_weights(u.data(), w.data(), g);
    u.require_guards("winograd transformed weights");
    const std::vector<float> w_nan(nw, std::numeric_limits<float>::quiet_NaN());
    Guarded<float> y_u(ny);
    fast::conv2d_forward(y_u.data(), x.data(), w_nan.data(), b.data(), g, ws.data(), u.data());
    y_u.require_guards("conv forward y (prepared weights)");
    require_close("conv forward (prepared weights)", y_u.data(), ref_y, gemm_tol(k_fwd));
    Guarded<float> dx_u(nx);
    std::copy(dx0.begin(), dx0.end(), dx_u.data());
    fast::conv2d_backward_input(dx_u.data(), dy.data(), w_nan.data(), g, ws.data(), u.data());
    dx_u.require_guards("conv backward dx (prepared weights)");
    ws.require_guards("conv workspace (prepared weights)");
    require_close("conv backward (prepared weights)", dx_u.data(), ref_dx, gemm_tol(k_bwd));
  }

  std::vector<Tensor> consts;
  consts.push_back(to_tensor(w, w_shape));
  consts.push_back(to_tensor(b, Shape{c.M}));
  const Graph graph = one_node_graph(OpKind::Conv, p, c.x, std::move(consts));
  check_backends(std::string("conv ") + c.name, graph, to_tensor(x, c.x), to_tensor(dy, Shape{g.N, g.M, g.OH, g.OW}),
                 ref_y, gemm_tol(k_fwd), [&](BackwardRule) { return ref_dx_plain; }, gemm_tol(k_bwd));
}

// ---- fully connected (Gemm) -----------------------------------------------------------------------

struct GemmCase {
  const char* name;
  int M, N, K;
  bool trans_b;
  Shape c_shape;  // {} for no bias
  float alpha, beta;
};

void check_gemm(const GemmCase& c, std::mt19937_64& rng) {
  INFO("gemm case " << c.name);
  GemmParams p;
  p.trans_b = c.trans_b;
  p.alpha = c.alpha;
  p.beta = c.beta;
  const Shape a_shape{c.M, c.K}, b_shape = c.trans_b ? Shape{c.N, c.K} : Shape{c.K, c.N};
  const bool has_c = !c.c_shape.empty();
  REQUIRE(fast::fc_supported(p, a_shape, b_shape, has_c ? &c.c_shape : nullptr));
  const size_t na = size_t(c.M) * c.K, ny = size_t(c.M) * c.N;
  // Activations behind a rectifier: a third of them zero (the GEMVs skip those).
  const auto a = random_floats(rng, na, 0.3), b = random_floats(rng, size_t(c.N) * c.K);
  const auto bias = random_floats(rng, has_c ? size_t(shape_numel(c.c_shape)) : 0);
  const auto dy = random_floats(rng, ny, 0.5), da0 = random_floats(rng, na);

  Vec ref_y(ny), ref_da = to_double(da0), ref_da_plain(na, 0.0);
  const Vec ad = to_double(a), bd = to_double(b), cd = to_double(bias), dyd = to_double(dy);
  cpu::gemm_forward(ref_y.data(), ad.data(), bd.data(), has_c ? cd.data() : nullptr, c.c_shape, c.M, c.N, c.K, p);
  cpu::gemm_backward_input(ref_da.data(), static_cast<double*>(nullptr), dyd.data(), ad.data(), bd.data(), c.M, c.N,
                           c.K, p);
  cpu::gemm_backward_input(ref_da_plain.data(), static_cast<double*>(nullptr), dyd.data(), ad.data(), bd.data(), c.M,
                           c.N, c.K, p);

  Guarded<float> ws(size_t(fast::fc_workspace_floats(c.M, c.N, c.K)));
  Guarded<float> y(ny);
  fast::fc_forward(y.data(), a.data(), b.data(), has_c ? bias.data() : nullptr, c.c_shape, c.M, c.N, c.K, p, ws.data());
  y.require_guards("gemm forward y");
  ws.require_guards("gemm forward workspace");
  require_close("gemm forward", y.data(), ref_y, gemm_tol(c.K));
  Guarded<float> da(na);
  std::copy(da0.begin(), da0.end(), da.data());
  fast::fc_backward_input(da.data(), dy.data(), b.data(), c.M, c.N, c.K, p, ws.data());
  da.require_guards("gemm backward da");
  ws.require_guards("gemm backward workspace");
  require_close("gemm backward (adds into da)", da.data(), ref_da, gemm_tol(c.N));

  std::vector<Tensor> consts;
  consts.push_back(to_tensor(b, b_shape));
  if (has_c) consts.push_back(to_tensor(bias, c.c_shape));
  const Graph graph = one_node_graph(OpKind::Gemm, p, a_shape, std::move(consts));
  check_backends(std::string("gemm ") + c.name, graph, to_tensor(a, a_shape), to_tensor(dy, Shape{c.M, c.N}), ref_y,
                 gemm_tol(c.K), [&](BackwardRule) { return ref_da_plain; }, gemm_tol(c.N));
}

// ---- max-pooling --------------------------------------------------------------------------------

struct PoolCase {
  const char* name;
  Shape x;
  int KH, KW;
  Window2d win;
  bool ceil_mode;
  bool ties;  // inputs from a handful of values, so that windows hold equal maxima
};

void check_maxpool(const PoolCase& c, std::mt19937_64& rng) {
  INFO("maxpool case " << c.name);
  PoolParams p;
  p.window = c.win;
  p.window.kernel = {c.KH, c.KW};
  p.ceil_mode = c.ceil_mode;
  const PoolGeometry g = pool_geometry(p, c.x);
  const size_t nx = size_t(shape_numel(c.x)), ny = size_t(g.N) * g.C * g.OH * g.OW;
  auto x = random_floats(rng, nx);
  if (c.ties)
    for (float& v : x) v = std::round(v * 2.0f);  // -2 .. 2
  const auto dy = random_floats(rng, ny), dx0 = random_floats(rng, nx);

  Vec ref_y(ny), ref_dx = to_double(dx0), ref_dx_plain(nx, 0.0);
  std::vector<int32_t> ref_sw(ny);
  const Vec xd = to_double(x), dyd = to_double(dy);
  cpu::maxpool2d_forward(ref_y.data(), ref_sw.data(), xd.data(), g);
  cpu::maxpool2d_backward_input(ref_dx.data(), dyd.data(), ref_sw.data(), g);
  cpu::maxpool2d_backward_input(ref_dx_plain.data(), dyd.data(), ref_sw.data(), g);

  Guarded<float> y(ny);
  Guarded<int32_t> sw(ny);
  fast::maxpool2d_forward(y.data(), sw.data(), x.data(), g);
  y.require_guards("maxpool y");
  sw.require_guards("maxpool switches");
  require_close("maxpool forward", y.data(), ref_y, exact());
  int64_t switch_mismatches = 0;
  for (size_t i = 0; i < ny; ++i) switch_mismatches += sw.data()[i] != ref_sw[i];
  REQUIRE(switch_mismatches == 0);
  Guarded<float> dx(nx);
  std::copy(dx0.begin(), dx0.end(), dx.data());
  fast::maxpool2d_backward_input(dx.data(), dy.data(), sw.data(), g);
  dx.require_guards("maxpool dx");
  // Float additions of the routed gradients, as in the reference: within their rounding of double.
  require_close("maxpool backward (adds into dx)", dx.data(), ref_dx, {1e-6, 1e-7});

  const Graph graph = one_node_graph(OpKind::MaxPool, p, c.x, {});
  check_backends(std::string("maxpool ") + c.name, graph, to_tensor(x, c.x), to_tensor(dy, Shape{g.N, g.C, g.OH, g.OW}),
                 ref_y, exact(), [&](BackwardRule) { return ref_dx_plain; }, {1e-6, 1e-7},
                 [&](const Session& s, const std::string& backend) {
                   const IndexTensor& got = s.saved(0).switches;
                   int64_t mismatches = 0;
                   for (size_t i = 0; i < ny; ++i) mismatches += got[int64_t(i)] != ref_sw[i];
                   INFO("switches on " << backend);
                   REQUIRE(mismatches == 0);
                 });
}

// ---- LRN ------------------------------------------------------------------------------------------

struct LrnCase {
  const char* name;
  Shape x;
  LrnParams p;
};

void check_lrn(const LrnCase& c, std::mt19937_64& rng) {
  INFO("lrn case " << c.name);
  const int N = int(c.x[0]), C = int(c.x[1]);
  const int64_t S = shape_numel(c.x) / (N * C);
  const size_t n = size_t(shape_numel(c.x));
  auto x = random_floats(rng, n);
  for (float& v : x) v *= 3.0f;  // values where the normalisation matters
  const auto dy = random_floats(rng, n), dx0 = random_floats(rng, n);
  Vec ref_y(n), ref_scale(n), ref_dx = to_double(dx0), ref_dx_plain(n, 0.0);
  const Vec xd = to_double(x), dyd = to_double(dy);
  cpu::lrn_forward(ref_y.data(), ref_scale.data(), xd.data(), N, C, S, c.p);
  cpu::lrn_backward_input(ref_dx.data(), dyd.data(), xd.data(), ref_y.data(), ref_scale.data(), N, C, S, c.p);
  cpu::lrn_backward_input(ref_dx_plain.data(), dyd.data(), xd.data(), ref_y.data(), ref_scale.data(), N, C, S, c.p);
  const Tol tol_y{1e-5, 0}, tol_dx{1e-5, 1e-6 * max_abs(ref_dx_plain)};

  Guarded<float> y(n), scale(n);
  fast::lrn_forward(y.data(), scale.data(), x.data(), N, C, S, c.p);
  y.require_guards("lrn y");
  scale.require_guards("lrn scale");
  require_close("lrn forward", y.data(), ref_y, tol_y);
  require_close("lrn scale", scale.data(), ref_scale, tol_y);
  Guarded<float> dx(n);
  std::copy(dx0.begin(), dx0.end(), dx.data());
  fast::lrn_backward_input(dx.data(), dy.data(), x.data(), y.data(), scale.data(), N, C, S, c.p);
  dx.require_guards("lrn dx");
  require_close("lrn backward (adds into dx)", dx.data(), ref_dx, {1e-5, 1e-6 * max_abs(ref_dx)});

  const Graph graph = one_node_graph(OpKind::LRN, c.p, c.x, {});
  check_backends(std::string("lrn ") + c.name, graph, to_tensor(x, c.x), to_tensor(dy, c.x), ref_y, tol_y,
                 [&](BackwardRule) { return ref_dx_plain; }, tol_dx);
}

// ---- ReLU -------------------------------------------------------------------------------------------

void check_relu(int64_t n, std::mt19937_64& rng) {
  INFO("relu of " << n << " elements");
  const auto x = random_floats(rng, size_t(n), 0.1), dy = random_floats(rng, size_t(n), 0.1);
  const auto dx0 = random_floats(rng, size_t(n));
  Vec ref_y(static_cast<size_t>(n));
  cpu::relu_forward(ref_y.data(), to_double(x).data(), n);
  Guarded<float> y(static_cast<size_t>(n));
  fast::relu_forward(y.data(), x.data(), n);
  y.require_guards("relu y");
  require_close("relu forward", y.data(), ref_y, exact());
  auto ref_dx_for = [&](BackwardRule rule, const std::vector<float>& start) {
    std::vector<float> d = start;  // in float: the rule adds dy or 0, exactly as the fast path must
    cpu::relu_backward_input(d.data(), dy.data(), x.data(), n, rule);
    return to_double(d);
  };
  for (BackwardRule rule : kRules) {
    Guarded<float> dx(static_cast<size_t>(n));
    std::copy(dx0.begin(), dx0.end(), dx.data());
    fast::relu_backward_input(dx.data(), dy.data(), x.data(), n, rule);
    dx.require_guards("relu dx");
    require_close(std::string("relu backward ") + rule_name(rule), dx.data(), ref_dx_for(rule, dx0), exact());
  }
  const Shape shape{1, n};
  const Graph graph = one_node_graph(OpKind::Relu, std::monostate{}, shape, {});
  const std::vector<float> zeros(size_t(n), 0.0f);
  check_backends("relu", graph, to_tensor(x, shape), to_tensor(dy, shape), ref_y, exact(),
                 [&](BackwardRule rule) { return ref_dx_for(rule, zeros); }, exact());
}

}  // namespace

TEST_CASE("parity: Conv, fast path vs reference, over a sweep of geometries", "[parity][conv]") {
  std::mt19937_64 rng(41);
  const ConvCase cases[] = {
      {"3x3 pad 1", {1, 3, 7, 9}, 8, 3, 3, window({1, 1}, {1, 1, 1, 1}), 1},
      {"odd sizes, stride 2", {2, 5, 11, 13}, 7, 3, 3, window({2, 2}, {0, 0, 0, 0}), 1},
      {"stride > kernel", {1, 4, 10, 11}, 6, 2, 2, window({3, 3}, {1, 1, 1, 1}), 1},
      {"asymmetric pads", {1, 3, 9, 8}, 5, 3, 2, window({1, 2}, {0, 1, 2, 1}), 1},
      {"dilation 2", {1, 4, 12, 10}, 6, 3, 3, window({1, 1}, {2, 2, 2, 2}, {2, 2}), 1},
      {"groups 2", {2, 6, 8, 8}, 4, 3, 3, window({1, 1}, {1, 1, 1, 1}), 2},
      {"depthwise", {1, 8, 9, 9}, 8, 3, 3, window({2, 2}, {1, 1, 1, 1}), 8},
      {"1x1 pointwise, batch 2", {2, 70, 9, 10}, 50, 1, 1, window({1, 1}, {0, 0, 0, 0}), 1},
      {"1x1 with pad 1", {1, 16, 6, 7}, 12, 1, 1, window({1, 1}, {1, 1, 1, 1}), 1},
      // A pointwise backward over <= 64 input channels reads a dense dY in place, unpacked; pixel
      // counts off the 48-column panels, so that the last panel is partial.
      {"1x1 pointwise, 48 inputs: dense dY read in place", {1, 48, 13, 17}, 16, 1, 1, window({1, 1}, {0, 0, 0, 0}),
       1, ConvCase::dense},
      {"1x1 pointwise, 100 outputs, batch 2: dense dY read in place", {2, 20, 7, 11}, 100, 1, 1,
       window({1, 1}, {0, 0, 0, 0}), 1, ConvCase::dense},
      {"1x1 stride 2", {1, 9, 9, 9}, 10, 1, 1, window({2, 2}, {0, 0, 0, 0}), 1},
      {"5x5 stride 2 pad 1, batch 3", {3, 6, 17, 15}, 9, 5, 5, window({2, 2}, {1, 1, 1, 1}), 1},
      {"7x7 stride 2", {1, 3, 37, 37}, 16, 7, 7, window({2, 2}, {0, 0, 0, 0}), 1},
      {"many rows: M > one packed block", {1, 8, 6, 6}, 200, 3, 3, window({1, 1}, {1, 1, 1, 1}), 1},
      {"deep: K > one depth block, pixels in two chunks", {1, 512, 24, 24}, 16, 3, 3, window({1, 1}, {1, 1, 1, 1}), 1},
      {"wide: many panels split by columns", {1, 8, 40, 41}, 24, 3, 3, window({1, 1}, {1, 1, 1, 1}), 1},
      {"dense output gradient", {2, 5, 9, 9}, 12, 3, 3, window({1, 1}, {1, 1, 1, 1}), 1, ConvCase::dense},
      // 3x3 stride 1, >= 32 input channels, >= 150 output tiles: the Winograd F(2x2,3x3) path, odd
      // and even sizes, every pad; with 16 input channels (SqueezeNet's first expands), im2col.
      {"3x3 on a large plane, 16 input channels: im2col", {1, 16, 28, 28}, 24, 3, 3, window({1, 1}, {1, 1, 1, 1}),
       1},
      {"winograd: 3x3 pad 1, odd sizes, batch 2", {2, 32, 27, 25}, 20, 3, 3, window({1, 1}, {1, 1, 1, 1}), 1,
       ConvCase::dense},
      {"winograd: 3x3 no padding", {1, 36, 30, 29}, 24, 3, 3, window({1, 1}, {0, 0, 0, 0}), 1},
      {"winograd: 3x3 asymmetric pads", {1, 32, 26, 25}, 17, 3, 3, window({1, 1}, {0, 1, 2, 1}), 1},
      {"winograd: 3x3 pad 2", {1, 34, 24, 24}, 16, 3, 3, window({1, 1}, {2, 2, 2, 2}), 1},
      {"winograd: many tiles in several chunks", {1, 64, 60, 58}, 64, 3, 3, window({1, 1}, {1, 1, 1, 1}), 1,
       ConvCase::dense},
      {"class-score 1x1 pad 1, one-hot gradient", {2, 64, 6, 6}, 100, 1, 1, window({1, 1}, {1, 1, 1, 1}), 1,
       ConvCase::one_plane_active},
      // 1x1 stride 1 with padding: the bias ring + an interior GEMM over the input pixels.
      {"1x1 asymmetric pads, > one packed block of rows", {1, 24, 9, 11}, 200, 1, 1, window({1, 1}, {0, 1, 2, 3}),
       1, ConvCase::dense},
      {"1x1 pad 2, dilation 2, groups 2, batch 2", {2, 12, 7, 5}, 10, 1, 1, window({1, 1}, {2, 2, 2, 2}, {2, 2}), 2},
      {"1x1 pad 1, interior in several panels", {1, 8, 14, 15}, 33, 1, 1, window({1, 1}, {1, 1, 1, 1}), 1},
      {"pointwise, one-hot gradient", {1, 32, 5, 5}, 40, 1, 1, window({1, 1}, {0, 0, 0, 0}), 1,
       ConvCase::one_plane_active},
  };
  for (const ConvCase& c : cases) check_conv(c, rng);
  // Again with chunks of one GEMM panel, so that every chunk loop (im2col, col2im, Winograd tiles)
  // runs many times and meets its short last chunk.
  const int64_t saved = fast::conv_chunk_floats();
  fast::set_conv_chunk_floats(1);
  for (const ConvCase& c : cases) check_conv(c, rng);
  fast::set_conv_chunk_floats(saved);
}

TEST_CASE("parity: Winograd weights prepared at plan time follow the weights the node is run with",
          "[parity][conv][winograd]") {
  std::mt19937_64 rng(48);
  ConvParams p;
  p.window = window({1, 1}, {1, 1, 1, 1});
  const Shape x_shape{1, 24, 29, 30}, w_shape{20, 24, 3, 3};
  const ConvGeometry geo = conv_geometry(p, x_shape, w_shape);
  if (!fast::winograd_applies(geo)) {
    WARN("SKIPPED: DEEPINSIDE_WINOGRAD=0 turns the Winograd path off");
    return;
  }
  std::vector<Tensor> consts;
  consts.push_back(to_tensor(random_floats(rng, size_t(shape_numel(w_shape))), w_shape));
  consts.push_back(to_tensor(random_floats(rng, 20), Shape{20}));
  Graph g = one_node_graph(OpKind::Conv, p, x_shape, std::move(consts));
  const int w_id = g.nodes()[0].inputs[1], y_id = g.outputs()[0];
  const Tensor x = to_tensor(random_floats(rng, size_t(shape_numel(x_shape))), x_shape);
  const Tensor seed = to_tensor(random_floats(rng, size_t(20) * geo.OH * geo.OW), {1, 20, geo.OH, geo.OW});
  auto fast_backend = make_backend("cpu"), ref_backend = make_backend("cpu-reference");
  const int64_t k = 24 * 9;

  // y and dx of the reference on the graph's current weights.
  auto reference = [&](Vec& y, Vec& dx) {
    Session r(g, *ref_backend, x_shape);
    r.forward(x);
    y = to_double(r.value(y_id).data(), size_t(r.value(y_id).numel()));
    const Tensor& d = r.backward_input(y_id, seed, BackwardRule::gradient);
    dx = to_double(d.data(), size_t(d.numel()));
  };
  Session s(g, *fast_backend, x_shape);
  REQUIRE(s.saved(0).prepared.numel() == 16 * 20 * 24);  // made at plan time
  Vec ref_y, ref_dx;
  reference(ref_y, ref_dx);
  s.forward(x);
  require_close("prepared weights: forward", s.value(y_id).data(), ref_y, gemm_tol(k));
  require_close("prepared weights: backward", s.backward_input(y_id, seed, BackwardRule::gradient).data(), ref_dx,
                gemm_tol(k));

  // Weights redrawn in place after planning (against the Session's contract, but what a careless
  // caller does): the fingerprint no longer matches, so the node transforms the new weights per call.
  Tensor& w = *g.value(w_id).constant;
  const auto redrawn = random_floats(rng, size_t(w.numel()));
  std::copy(redrawn.begin(), redrawn.end(), w.data());
  reference(ref_y, ref_dx);
  s.forward(x);
  require_close("weights changed in place: forward", s.value(y_id).data(), ref_y, gemm_tol(k));
  require_close("weights changed in place: backward", s.backward_input(y_id, seed, BackwardRule::gradient).data(),
                ref_dx, gemm_tol(k));

  // Other weights passed to the node with its saved state (viz/lrp's z+ variants): they are used.
  Session s2(g, *fast_backend, x_shape);
  s2.forward(x);
  const Tensor other = to_tensor(random_floats(rng, size_t(w.numel())), w_shape);
  const std::vector<const Tensor*> in{&x, &other, &*g.value(g.nodes()[0].inputs[2]).constant};
  Tensor dx_other(x_shape);
  const std::vector<Tensor*> grad_in{&dx_other, nullptr, nullptr};
  fast_backend->backward_input(g.nodes()[0], BackwardRule::gradient, in, s2.value(y_id), seed, grad_in, s2.saved(0));
  std::copy(other.data(), other.data() + other.numel(), w.data());
  reference(ref_y, ref_dx);
  require_close("other weights than the prepared ones", dx_other.data(), ref_dx, gemm_tol(k));
}

TEST_CASE("parity: Gemm (fully connected), batch 1 GEMV and batch > 1 GEMM", "[parity][gemm]") {
  std::mt19937_64 rng(42);
  const GemmCase cases[] = {
      {"batch 1, transB, bias row", 1, 37, 50, true, {37}, 1.0f, 1.0f},
      {"batch 1, B not transposed, bias (1,N)", 1, 33, 4100, false, {1, 33}, 1.0f, 1.0f},
      {"batch 1, no bias, alpha 0.5", 1, 1000, 300, true, {}, 0.5f, 1.0f},
      {"batch 5, scalar bias, alpha and beta", 5, 70, 300, true, {1}, 0.5f, 2.0f},
      {"batch 64, two B panels", 64, 100, 520, true, {100}, 1.0f, 1.0f},
      {"batch 16, B not transposed", 16, 45, 77, false, {45}, 1.0f, 1.0f},
      {"batch 3, tiny", 3, 10, 7, true, {}, 1.0f, 1.0f},
      // More batch sizes with transB (nn.Linear's layout): K off any vector width, odd N, each bias kind.
      {"batch 16, transB, K with a tail", 16, 33, 1031, true, {33}, 1.0f, 1.0f},
      {"batch 17, transB, last group of 1", 17, 29, 64, true, {29}, 0.5f, 1.0f},
      {"batch 23, transB, scalar bias", 23, 50, 300, true, {1}, 1.0f, 2.0f},
      {"batch 32, transB, no bias", 32, 64, 200, true, {}, 1.0f, 1.0f},
      {"batch 33, transB: the GEMM path again", 33, 40, 100, true, {40}, 1.0f, 1.0f},
  };
  for (const GemmCase& c : cases) check_gemm(c, rng);
}

TEST_CASE("parity: MaxPool values and switches are exact", "[parity][maxpool]") {
  std::mt19937_64 rng(43);
  const PoolCase cases[] = {
      {"3/2 odd", {1, 3, 13, 13}, 3, 3, window({2, 2}, {0, 0, 0, 0}), false, false},
      {"3/2 ceil mode", {2, 4, 12, 12}, 3, 3, window({2, 2}, {0, 0, 0, 0}), true, false},
      {"pad 1", {1, 2, 9, 11}, 3, 3, window({2, 2}, {1, 1, 1, 1}), false, false},
      {"asymmetric pads, ceil", {1, 2, 10, 9}, 3, 2, window({2, 1}, {0, 1, 1, 0}), true, false},
      {"dilation 2", {1, 2, 12, 12}, 2, 2, window({1, 1}, {0, 0, 0, 0}, {2, 2}), false, false},
      {"stride > kernel", {1, 3, 11, 17}, 2, 2, window({3, 3}, {0, 0, 0, 0}), false, false},
      {"2/2 wide rows", {2, 3, 40, 37}, 2, 2, window({2, 2}, {0, 0, 0, 0}), true, false},
      {"ties: first maximum in scan order", {2, 5, 15, 21}, 3, 3, window({2, 2}, {1, 1, 1, 1}), true, true},
      {"ties, stride 1", {1, 4, 9, 33}, 3, 3, window({1, 1}, {0, 0, 0, 0}), false, true},
  };
  for (const PoolCase& c : cases) check_maxpool(c, rng);
}

TEST_CASE("parity: LRN within 1e-5 relative", "[parity][lrn]") {
  std::mt19937_64 rng(44);
  const LrnCase cases[] = {
      {"size 5, beta 0.75, k 2 (the paper's)", {1, 16, 7, 9}, {5, 1e-2f, 0.75f, 2.0f}},
      {"size 3, beta 0.6, k 1", {2, 7, 5, 5}, {3, 5e-2f, 0.6f, 1.0f}},
      {"even size 4", {1, 9, 3, 11}, {4, 1e-1f, 0.75f, 1.0f}},
      {"positions across task blocks", {2, 6, 20, 21}, {5, 1e-3f, 0.75f, 2.0f}},
  };
  for (const LrnCase& c : cases) check_lrn(c, rng);
}

TEST_CASE("parity: ReLU forward and the three backward rules are exact", "[parity][relu]") {
  std::mt19937_64 rng(45);
  for (int64_t n : {1, 17, 1000, 100003}) check_relu(n, rng);
}

TEST_CASE("parity: GlobalAveragePool, forward to float rounding of the double sum, backward exact",
          "[parity][gap]") {
  std::mt19937_64 rng(47);
  // (N, C, H, W): tiny (one thread), SqueezeNet's conv10 output (threaded), odd plane sizes.
  for (const Shape& shape : {Shape{2, 3, 5, 7}, Shape{1, 1000, 16, 16}, Shape{3, 70, 13, 11}}) {
    INFO("global average pool of " << shape[0] << "x" << shape[1] << "x" << shape[2] << "x" << shape[3]);
    const int64_t planes = shape[0] * shape[1], plane_size = shape[2] * shape[3];
    auto x = random_floats(rng, size_t(planes * plane_size));
    x[5] = std::numeric_limits<float>::quiet_NaN();  // propagates to its plane's mean
    const auto dy = random_floats(rng, size_t(planes), 0.3), dx0 = random_floats(rng, size_t(planes * plane_size));
    std::vector<float> ref_yf(static_cast<size_t>(planes));  // the "cpu-reference" backend's own arithmetic
    cpu::global_avgpool_forward(ref_yf.data(), x.data(), planes, plane_size);
    Vec ref_y = to_double(ref_yf);
    Guarded<float> y(static_cast<size_t>(planes));
    fast::global_avgpool_forward(y.data(), x.data(), planes, plane_size);
    y.require_guards("global average pool y");
    REQUIRE(std::isnan(y.data()[0]));
    y.data()[0] = 0.0f;
    ref_y[0] = 0.0;
    require_close("global average pool forward", y.data(), ref_y, {1e-6, 1e-12});
    auto ref_dx_from = [&](const std::vector<float>& start) {
      std::vector<float> d = start;  // in float, as the fast path must do exactly
      cpu::global_avgpool_backward_input(d.data(), dy.data(), planes, plane_size);
      return to_double(d);
    };
    Guarded<float> dx(static_cast<size_t>(planes * plane_size));
    std::copy(dx0.begin(), dx0.end(), dx.data());
    fast::global_avgpool_backward_input(dx.data(), dy.data(), planes, plane_size);
    dx.require_guards("global average pool dx");
    require_close("global average pool backward (adds into dx)", dx.data(), ref_dx_from(dx0), exact());

    x[5] = 0.5f;
    cpu::global_avgpool_forward(ref_yf.data(), x.data(), planes, plane_size);
    const Vec ref_y_finite = to_double(ref_yf);
    const Graph graph = one_node_graph(OpKind::GlobalAveragePool, std::monostate{}, shape, {});
    const std::vector<float> zeros(size_t(planes * plane_size), 0.0f);
    check_backends("global average pool", graph, to_tensor(x, shape), to_tensor(dy, Shape{shape[0], shape[1], 1, 1}),
                   ref_y_finite, {1e-6, 1e-12}, [&](BackwardRule) { return ref_dx_from(zeros); }, exact());
  }
}

TEST_CASE("parity: copies and the ops the fast backend does not accelerate are bit-identical to the reference",
          "[parity][delegated]") {
  std::mt19937_64 rng(46);
  const Shape s{2, 6, 7, 9};
  auto rand_tensor = [&](const Shape& shape) { return to_tensor(random_floats(rng, size_t(shape_numel(shape))), shape); };
  struct Case {
    const char* name;
    OpKind kind;
    OpParams params;
    std::vector<Shape> constants;
  };
  PoolParams avg;
  avg.window.kernel = {3, 3};
  avg.window.stride = {2, 2};
  avg.window.pads = {1, 1, 1, 1};
  avg.ceil_mode = true;
  const Case cases[] = {
      {"AveragePool", OpKind::AveragePool, avg, {}},
      {"Softmax", OpKind::Softmax, SoftmaxParams{1, false}, {}},
      {"Concat (fast: threaded copies)", OpKind::Concat, AxisParams{1}, {{2, 3, 7, 9}}},
      {"Concat on the last axis", OpKind::Concat, AxisParams{-1}, {{2, 6, 7, 4}}},
      {"Add", OpKind::Add, std::monostate{}, {{6, 1, 1}}},
      {"Flatten", OpKind::Flatten, AxisParams{1}, {}},
      {"Sigmoid", OpKind::Sigmoid, UnaryParams{}, {}},
  };
  for (const Case& c : cases) {
    INFO("op " << c.name);
    std::vector<Tensor> consts;
    for (const Shape& cs : c.constants) consts.push_back(rand_tensor(cs));
    const Graph g = one_node_graph(c.kind, c.params, s, std::move(consts));
    auto fast_backend = make_backend("cpu"), ref_backend = make_backend("cpu-reference");
    Session a(g, *fast_backend, s), b(g, *ref_backend, s);
    const Tensor x = rand_tensor(s);
    a.forward(x);
    b.forward(x);
    const int y = g.outputs()[0];
    const Tensor& ya = a.value(y);
    REQUIRE(ya.numel() == b.value(y).numel());
    REQUIRE(std::memcmp(ya.data(), b.value(y).data(), sizeof(float) * ya.numel()) == 0);
    const Tensor seed = rand_tensor(ya.shape());
    for (BackwardRule rule : kRules) {
      const Tensor& da = a.backward_input(y, seed, rule);
      const Tensor& db = b.backward_input(y, seed, rule);
      REQUIRE(std::memcmp(da.data(), db.data(), sizeof(float) * da.numel()) == 0);
    }
  }
}

TEST_CASE("parity: whole zoo nets at small inputs, cpu vs cpu-reference, three rules", "[parity][zoo]") {
  struct NetCase {
    const char* name;
    int size;
  };
  // The smallest inputs each architecture accepts with every layer intact (the first FC layer
  // follows the input size).
  const NetCase nets[] = {{"simonyan13", 67}, {"alexnet", 63}, {"vgg16", 32}};
  for (const NetCase& n : nets) {
    INFO("net " << n.name);
    ZooOptions o;
    o.height = o.width = n.size;
    o.classes = 50;
    const Graph g = zoo_graph(n.name, o);
    const Shape shape{2, 3, n.size, n.size};
    std::mt19937_64 rng(47);
    const Tensor x = to_tensor(random_floats(rng, size_t(shape_numel(shape))), shape);
    auto fast_backend = make_backend("cpu"), ref_backend = make_backend("cpu-reference");
    Session a(g, *fast_backend, shape), b(g, *ref_backend, shape);
    a.forward(x);
    b.forward(x);
    const int scores = g.default_scores_value();
    const Vec ref_scores = to_double(b.value(scores).data(), size_t(b.value(scores).numel()));
    // Float against float through a whole net: relative 1e-4 of the largest magnitude.
    require_close(std::string(n.name) + " scores", a.value(scores).data(), ref_scores, {1e-4, 1e-4 * max_abs(ref_scores)});
    Tensor seed(a.shape(scores));
    for (int i = 0; i < 2; ++i) seed[int64_t(i) * o.classes + (i * 17) % o.classes] = 1.0f;
    for (BackwardRule rule : kRules) {
      const Tensor& gb = b.backward_input(scores, seed, rule);
      const Vec ref = to_double(gb.data(), size_t(gb.numel()));
      REQUIRE(max_abs(ref) > 0);
      const Tensor& ga = a.backward_input(scores, seed, rule);
      require_close(std::string(n.name) + " input gradient (" + rule_name(rule) + ")", ga.data(), ref,
                    {1e-4, 1e-4 * max_abs(ref)});
    }
  }
}
