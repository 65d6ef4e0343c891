// The CUDA parity driver (DESIGN.md Sec. 7.3; the machinery of tests/parity_support.h): every op of
// the CUDA kernels x a sweep of shapes, forward and backward_input under the three rectifier rules,
// against the CPU reference (double where DESIGN.md Sec. 4 says so), at two levels:
//   1. the launcher itself on device buffers with guard values on both sides (out-of-bounds writes),
//      backward outputs pre-filled so that they must ADD;
//   2. the backend(s) through a Session on a one-node graph (switches checked exactly), then whole
//      zoo nets and SqueezeNet v1.1 on the shared photos.
// This file is compiled twice (like the kernels, kernels/cuda/device_api.h):
//   cuda_emu_parity_tests (DEEPINSIDE_EMU): the kernels through kernels/emu, backend "cuda-emu" (CI);
//   cuda_device_parity_tests: the kernels on the GPU, backends "cuda" and "cudnn". Without a GPU every
//     test prints "SKIPPED: no CUDA device ..." and CTest reports it skipped, never passed.
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/image.h"
#include "engine/model.h"
#include "engine/preprocess.h"
#include "engine/session.h"
#include "engine/zoo.h"
#include "kernels/cpu/reference.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/runtime.h"
#include "parity_support.h"
#include "test_support.h"
#include "viz/scores.h"

using namespace deepinside;
using namespace deepinside::parity;
namespace cpu = deepinside::cpu;
namespace k = deepinside::DI_KERNEL_NS;

namespace {

const char* const kSqueezeNet = "models/squeezenet1.1/squeezenet1.1.onnx";

#ifdef DEEPINSIDE_EMU
const std::vector<std::string> kSessionBackends = {"cuda-emu"};
#else
const std::vector<std::string> kSessionBackends = {"cuda", "cudnn"};
#endif

// The device the launchers run on; nullptr where no CUDA device is present (the reason in why).
k::Runtime* device(std::string* why = nullptr) {
  static std::unique_ptr<k::Runtime> runtime;
  static std::string reason;
  static bool tried = false;
  if (!tried) {
    tried = true;
    try {
      runtime = std::make_unique<k::Runtime>();
    } catch (const Error& e) {
      reason = e.what();
    }
  }
  if (why) *why = reason;
  return runtime.get();
}

// Prints the skip (CTest's SKIP_REGULAR_EXPRESSION turns it into "skipped") and returns false where
// no device is present.
bool have_device() {
  std::string why;
  if (device(&why)) return true;
  std::cout << "SKIPPED: no CUDA device: " << why << std::endl;
  WARN("SKIPPED: no CUDA device: " << why);
  return false;
}

// A device buffer of n elements with kDeviceGuard guard values on each side; 40 floats keep the data
// 16-byte aligned, as cudaMalloc's are, so that the kernels' 16-byte load paths run here too.
constexpr int kDeviceGuard = 40;
template <class T>
struct DeviceGuarded {
  BasicTensor<T> storage;
  size_t n;
  DeviceGuarded(const std::vector<T>& init) : storage(Shape{int64_t(init.size() + 2 * kDeviceGuard)}, *device()), n(init.size()) {
    BasicTensor<T> host(Shape{int64_t(n + 2 * kDeviceGuard)});
    for (int64_t i = 0; i < host.numel(); ++i) host[i] = T(kGuardValue);
    std::copy(init.begin(), init.end(), host.data() + kDeviceGuard);
    storage.copy_from(host);
  }
  explicit DeviceGuarded(size_t size) : DeviceGuarded(std::vector<T>(size, T(0))) {}
  T* data() { return storage.data() + kDeviceGuard; }
  // Downloads, checks the guards, returns the n elements.
  std::vector<T> result(const std::string& what) {
    const BasicTensor<T> host = storage.to_host();
    for (int i = 0; i < kDeviceGuard; ++i) {
      INFO(what << ": write outside the buffer (guard " << i << ")");
      REQUIRE(host[i] == T(kGuardValue));
      REQUIRE(host[host.numel() - 1 - i] == T(kGuardValue));
    }
    return std::vector<T>(host.data() + kDeviceGuard, host.data() + kDeviceGuard + n);
  }
};

// Runs the one-node graph on every session backend of this build: y against ref_y, and for each rule
// backward_input(seed) against ref_dx(rule). check_saved inspects the node's saved state (host copy).
void check_sessions(const std::string& what, const Graph& g, const Tensor& x, const Tensor& seed, const Vec& ref_y,
                    Tol tol_y, const std::function<Vec(BackwardRule)>& ref_dx, Tol tol_dx,
                    const std::function<void(const Session&, const std::string&)>& check_saved = {}) {
  for (const std::string& name : kSessionBackends) {
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

// The same against the float CPU reference backend, for the ops whose tolerance is relative only
// (element-wise, softmax, concat, ...): forward and backward of cpu-reference are the reference.
void check_against_reference_backend(const std::string& what, const Graph& g, const Tensor& x, Tol tol,
                                     std::mt19937_64& rng) {
  auto reference = make_backend("cpu-reference");
  Session ref(g, *reference, x.shape());
  ref.forward(x);
  const int y = g.outputs()[0];
  const Tensor seed = to_tensor(random_floats(rng, size_t(ref.value(y).numel())), ref.value(y).shape());
  const Vec ref_y = to_double(ref.value(y).data(), size_t(ref.value(y).numel()));
  std::vector<Vec> ref_dx;
  for (BackwardRule rule : kRules) {
    const Tensor& dx = ref.backward_input(y, seed, rule);
    ref_dx.push_back(to_double(dx.data(), size_t(dx.numel())));
  }
  check_sessions(what, g, x, seed, ref_y, tol, [&](BackwardRule r) { return ref_dx[size_t(r)]; },
                 {tol.rtol, tol.atol + tol.rtol * 1e-2 * max_abs(ref_dx[0])});
}

// ---- convolution -----------------------------------------------------------------------------------

struct ConvCase {
  const char* name;
  Shape x;  // (N,C,H,W)
  int M, KH, KW;
  Window2d win;
  int group;
};

void check_conv(const ConvCase& c, std::mt19937_64& rng) {
  INFO("conv case " << c.name);
  ConvParams p;
  p.window = c.win;
  p.group = c.group;
  const Shape w_shape{c.M, c.x[1] / c.group, c.KH, c.KW};
  const ConvGeometry g = conv_geometry(p, c.x, w_shape);
  const size_t nx = size_t(shape_numel(c.x)), nw = size_t(shape_numel(w_shape)), ny = size_t(g.N) * g.M * g.OH * g.OW;
  const auto x = random_floats(rng, nx), w = random_floats(rng, nw), b = random_floats(rng, size_t(g.M));
  const auto dy = random_floats(rng, ny, 0.3), dx0 = random_floats(rng, nx);
  const int64_t k_fwd = int64_t(g.C / g.group) * g.KH * g.KW, k_bwd = int64_t(g.M / g.group) * g.KH * g.KW;
  Vec ref_y(ny), ref_dx = to_double(dx0), ref_dx_plain(nx, 0.0);
  const Vec xd = to_double(x), wd = to_double(w), bd = to_double(b), dyd = to_double(dy);
  cpu::conv2d_forward(ref_y.data(), xd.data(), wd.data(), bd.data(), g);
  cpu::conv2d_backward_input(ref_dx.data(), dyd.data(), wd.data(), g);
  cpu::conv2d_backward_input(ref_dx_plain.data(), dyd.data(), wd.data(), g);

  DeviceGuarded<float> dev_x(x), dev_w(w), dev_b(b), dev_dy(dy), dev_y(ny), dev_dx(dx0);
  k::conv2d_forward(dev_y.data(), dev_x.data(), dev_w.data(), dev_b.data(), g, device()->stream());
  require_close("conv forward", dev_y.result("conv y").data(), ref_y, gemm_tol(k_fwd));
  k::conv2d_backward_input(dev_dx.data(), dev_dy.data(), dev_w.data(), g, device()->stream());
  require_close("conv backward (adds into dx)", dev_dx.result("conv dx").data(), ref_dx, gemm_tol(k_bwd));

  std::vector<Tensor> consts;
  consts.push_back(to_tensor(w, w_shape));
  consts.push_back(to_tensor(b, Shape{c.M}));
  const Graph graph = one_node_graph(OpKind::Conv, p, c.x, std::move(consts));
  check_sessions(std::string("conv ") + c.name, graph, to_tensor(x, c.x), to_tensor(dy, Shape{g.N, g.M, g.OH, g.OW}),
                 ref_y, gemm_tol(k_fwd), [&](BackwardRule) { return ref_dx_plain; }, gemm_tol(k_bwd));
}

// ---- fully connected ---------------------------------------------------------------------------------

struct GemmCase {
  const char* name;
  int M, N, K;
  bool trans_a, trans_b;
  Shape c_shape;  // {} for no bias
  float alpha, beta;
};

void check_gemm(const GemmCase& c, std::mt19937_64& rng) {
  INFO("gemm case " << c.name);
  GemmParams p;
  p.trans_a = c.trans_a;
  p.trans_b = c.trans_b;
  p.alpha = c.alpha;
  p.beta = c.beta;
  const Shape a_shape = c.trans_a ? Shape{c.K, c.M} : Shape{c.M, c.K};
  const Shape b_shape = c.trans_b ? Shape{c.N, c.K} : Shape{c.K, c.N};
  const bool has_c = !c.c_shape.empty();
  const size_t na = size_t(c.M) * c.K, nb = size_t(c.N) * c.K, ny = size_t(c.M) * c.N;
  const auto a = random_floats(rng, na, 0.3), b = random_floats(rng, nb);
  const auto bias = random_floats(rng, has_c ? size_t(shape_numel(c.c_shape)) : 0);
  const auto dy = random_floats(rng, ny, 0.5), da0 = random_floats(rng, na), db0 = random_floats(rng, nb);
  Vec ref_y(ny), ref_da = to_double(da0), ref_db = to_double(db0), ref_da_plain(na, 0.0);
  const Vec ad = to_double(a), bd = to_double(b), cd = to_double(bias), dyd = to_double(dy);
  cpu::gemm_forward(ref_y.data(), ad.data(), bd.data(), has_c ? cd.data() : nullptr, c.c_shape, c.M, c.N, c.K, p);
  cpu::gemm_backward_input(ref_da.data(), ref_db.data(), dyd.data(), ad.data(), bd.data(), c.M, c.N, c.K, p);
  cpu::gemm_backward_input(ref_da_plain.data(), static_cast<double*>(nullptr), dyd.data(), ad.data(), bd.data(), c.M,
                           c.N, c.K, p);
  const Tol tol_y{1e-4, 2e-5 * std::sqrt(double(c.K)) * std::max(1.0, std::fabs(double(c.alpha)) + std::fabs(double(c.beta)))};
  const Tol tol_da = gemm_tol(c.N), tol_db = gemm_tol(c.M);

  const int c_rows = c.c_shape.size() == 2 ? int(c.c_shape[0]) : 1;
  const int c_cols = c.c_shape.empty() ? 1 : int(c.c_shape.back());
  DeviceGuarded<float> dev_a(a), dev_b(b), dev_c(bias.empty() ? std::vector<float>{0.0f} : bias), dev_dy(dy), dev_y(ny),
      dev_da(da0), dev_db(db0);
  k::gemm_forward(dev_y.data(), dev_a.data(), dev_b.data(), has_c ? dev_c.data() : nullptr, c_rows, c_cols, c.M, c.N,
                  c.K, p, device()->stream());
  require_close("gemm forward", dev_y.result("gemm y").data(), ref_y, tol_y);
  k::gemm_backward_input(dev_da.data(), dev_db.data(), dev_dy.data(), dev_a.data(), dev_b.data(), c.M, c.N, c.K, p,
                         device()->stream());
  require_close("gemm backward dA (adds)", dev_da.result("gemm da").data(), ref_da, tol_da);
  require_close("gemm backward dB (adds)", dev_db.result("gemm db").data(), ref_db, tol_db);

  if (c.trans_a) return;  // a Session's input is (batch, features): op(A) = A
  std::vector<Tensor> consts;
  consts.push_back(to_tensor(b, b_shape));
  if (has_c) consts.push_back(to_tensor(bias, c.c_shape));
  const Graph graph = one_node_graph(OpKind::Gemm, p, a_shape, std::move(consts));
  check_sessions(std::string("gemm ") + c.name, graph, to_tensor(a, a_shape), to_tensor(dy, Shape{c.M, c.N}), ref_y,
                 tol_y, [&](BackwardRule) { return ref_da_plain; }, tol_da);
}

// ---- pooling ----------------------------------------------------------------------------------------

struct PoolCase {
  const char* name;
  Shape x;
  int KH, KW;
  Window2d win;
  bool ceil_mode;
  bool ties;  // integer-valued inputs: many tied maxima
  bool count_include_pad = false;
};

PoolParams pool_params(const PoolCase& c) {
  PoolParams p;
  p.window = c.win;
  p.window.kernel = {c.KH, c.KW};
  p.ceil_mode = c.ceil_mode;
  p.count_include_pad = c.count_include_pad;
  return p;
}

void check_maxpool(const PoolCase& c, std::mt19937_64& rng) {
  INFO("maxpool case " << c.name);
  const PoolParams p = pool_params(c);
  const PoolGeometry g = pool_geometry(p, c.x);
  const size_t nx = size_t(shape_numel(c.x)), ny = size_t(g.N) * g.C * g.OH * g.OW;
  auto x = random_floats(rng, nx);
  if (c.ties)
    for (float& v : x) v = std::round(v * 2.0f);
  const auto dy = random_floats(rng, ny), dx0 = random_floats(rng, nx);
  Vec ref_y(ny), ref_dx = to_double(dx0), ref_dx_plain(nx, 0.0);
  std::vector<int32_t> ref_sw(ny);
  const Vec xd = to_double(x), dyd = to_double(dy);
  cpu::maxpool2d_forward(ref_y.data(), ref_sw.data(), xd.data(), g);
  cpu::maxpool2d_backward_input(ref_dx.data(), dyd.data(), ref_sw.data(), g);
  cpu::maxpool2d_backward_input(ref_dx_plain.data(), dyd.data(), ref_sw.data(), g);

  DeviceGuarded<float> dev_x(x), dev_y(ny), dev_dy(dy), dev_dx(dx0);
  DeviceGuarded<int32_t> dev_sw(ny);
  k::maxpool2d_forward(dev_y.data(), dev_sw.data(), dev_x.data(), g, device()->stream());
  require_close("maxpool forward", dev_y.result("maxpool y").data(), ref_y, exact());
  const std::vector<int32_t> sw = dev_sw.result("maxpool switches");
  int64_t mismatches = 0;
  for (size_t i = 0; i < ny; ++i) mismatches += sw[i] != ref_sw[i];
  REQUIRE(mismatches == 0);
  k::maxpool2d_backward_input(dev_dx.data(), dev_dy.data(), dev_sw.data(), g, device()->stream());
  require_close("maxpool backward (adds)", dev_dx.result("maxpool dx").data(), ref_dx, {1e-6, 1e-7});

  const Graph graph = one_node_graph(OpKind::MaxPool, p, c.x, {});
  check_sessions(std::string("maxpool ") + c.name, graph, to_tensor(x, c.x), to_tensor(dy, Shape{g.N, g.C, g.OH, g.OW}),
                 ref_y, exact(), [&](BackwardRule) { return ref_dx_plain; }, {1e-6, 1e-7},
                 [&](const Session& s, const std::string& backend) {
                   const IndexTensor got = s.saved(0).switches.to_host();
                   int64_t wrong = 0;
                   for (size_t i = 0; i < ny; ++i) wrong += got[int64_t(i)] != ref_sw[i];
                   INFO("switches on " << backend);
                   REQUIRE(wrong == 0);
                 });
}

void check_avgpool(const PoolCase& c, std::mt19937_64& rng) {
  INFO("avgpool case " << c.name);
  const PoolParams p = pool_params(c);
  const PoolGeometry g = pool_geometry(p, c.x);
  const size_t nx = size_t(shape_numel(c.x)), ny = size_t(g.N) * g.C * g.OH * g.OW;
  const auto x = random_floats(rng, nx), dy = random_floats(rng, ny), dx0 = random_floats(rng, nx);
  Vec ref_y(ny), ref_dx = to_double(dx0), ref_dx_plain(nx, 0.0);
  const Vec xd = to_double(x), dyd = to_double(dy);
  cpu::avgpool2d_forward(ref_y.data(), xd.data(), g);
  cpu::avgpool2d_backward_input(ref_dx.data(), dyd.data(), g);
  cpu::avgpool2d_backward_input(ref_dx_plain.data(), dyd.data(), g);
  const Tol tol = gemm_tol(int64_t(g.KH) * g.KW);

  DeviceGuarded<float> dev_x(x), dev_y(ny), dev_dy(dy), dev_dx(dx0);
  k::avgpool2d_forward(dev_y.data(), dev_x.data(), g, device()->stream());
  require_close("avgpool forward", dev_y.result("avgpool y").data(), ref_y, tol);
  k::avgpool2d_backward_input(dev_dx.data(), dev_dy.data(), g, device()->stream());
  require_close("avgpool backward (adds)", dev_dx.result("avgpool dx").data(), ref_dx, tol);

  const Graph graph = one_node_graph(OpKind::AveragePool, p, c.x, {});
  check_sessions(std::string("avgpool ") + c.name, graph, to_tensor(x, c.x), to_tensor(dy, Shape{g.N, g.C, g.OH, g.OW}),
                 ref_y, tol, [&](BackwardRule) { return ref_dx_plain; }, tol);
}

// ---- LRN, softmax, global average, ReLU ------------------------------------------------------------

void check_lrn(const Shape& shape, const LrnParams& lp, std::mt19937_64& rng) {
  INFO("lrn " << shape_to_string(shape) << " size " << lp.size);
  const int N = int(shape[0]), C = int(shape[1]);
  const int64_t S = shape_numel(shape) / (N * C);
  const size_t n = size_t(shape_numel(shape));
  auto x = random_floats(rng, n);
  for (float& v : x) v *= 3.0f;
  const auto dy = random_floats(rng, n), dx0 = random_floats(rng, n);
  Vec ref_y(n), ref_scale(n), ref_dx = to_double(dx0), ref_dx_plain(n, 0.0);
  const Vec xd = to_double(x), dyd = to_double(dy);
  cpu::lrn_forward(ref_y.data(), ref_scale.data(), xd.data(), N, C, S, lp);
  cpu::lrn_backward_input(ref_dx.data(), dyd.data(), xd.data(), ref_y.data(), ref_scale.data(), N, C, S, lp);
  cpu::lrn_backward_input(ref_dx_plain.data(), dyd.data(), xd.data(), ref_y.data(), ref_scale.data(), N, C, S, lp);
  const Tol tol_y{1e-5, 0};

  DeviceGuarded<float> dev_x(x), dev_y(n), dev_scale(n), dev_dy(dy), dev_dx(dx0);
  k::lrn_forward(dev_y.data(), dev_scale.data(), dev_x.data(), N, C, S, lp, device()->stream());
  const std::vector<float> y = dev_y.result("lrn y");
  require_close("lrn forward", y.data(), ref_y, tol_y);
  require_close("lrn scale", dev_scale.result("lrn scale").data(), ref_scale, tol_y);
  k::lrn_backward_input(dev_dx.data(), dev_dy.data(), dev_x.data(), dev_y.data(), dev_scale.data(), N, C, S, lp,
                        device()->stream());
  require_close("lrn backward (adds)", dev_dx.result("lrn dx").data(), ref_dx, {1e-5, 1e-6 * max_abs(ref_dx)});

  const Graph graph = one_node_graph(OpKind::LRN, lp, shape, {});
  check_sessions("lrn", graph, to_tensor(x, shape), to_tensor(dy, shape), ref_y, tol_y,
                 [&](BackwardRule) { return ref_dx_plain; }, {1e-5, 1e-6 * max_abs(ref_dx_plain)});
}

void check_softmax(int64_t outer, int64_t L, int64_t inner, std::mt19937_64& rng) {
  INFO("softmax (" << outer << ", " << L << ", " << inner << ")");
  const size_t n = size_t(outer * L * inner);
  auto x = random_floats(rng, n);
  for (float& v : x) v *= 8.0f;
  const auto dy = random_floats(rng, n), dx0 = random_floats(rng, n);
  Vec ref_y(n), ref_dx = to_double(dx0);
  const Vec xd = to_double(x), dyd = to_double(dy);
  cpu::softmax_forward(ref_y.data(), xd.data(), outer, L, inner);
  cpu::softmax_backward_input(ref_dx.data(), dyd.data(), ref_y.data(), outer, L, inner);
  DeviceGuarded<float> dev_x(x), dev_y(n), dev_dy(dy), dev_dx(dx0);
  k::softmax_forward(dev_y.data(), dev_x.data(), outer, L, inner, device()->stream());
  const std::vector<float> y = dev_y.result("softmax y");
  require_close("softmax forward", y.data(), ref_y, {1e-5, 1e-7});
  // Backward from the kernel's own y (the reference's in double would add y's rounding).
  Vec ref_dx_own = to_double(dx0);
  cpu::softmax_backward_input(ref_dx_own.data(), dyd.data(), to_double(y).data(), outer, L, inner);
  k::softmax_backward_input(dev_dx.data(), dev_dy.data(), dev_y.data(), outer, L, inner, device()->stream());
  require_close("softmax backward (adds)", dev_dx.result("softmax dx").data(), ref_dx_own, {1e-5, 1e-6});
}

void check_global_avgpool(const Shape& shape, std::mt19937_64& rng) {
  INFO("global average pool " << shape_to_string(shape));
  const int64_t planes = shape[0] * shape[1], size = shape_numel(shape) / planes;
  const auto x = random_floats(rng, size_t(planes * size)), dy = random_floats(rng, size_t(planes));
  const auto dx0 = random_floats(rng, size_t(planes * size));
  Vec ref_y(static_cast<size_t>(planes)), ref_dx = to_double(dx0);
  cpu::global_avgpool_forward(ref_y.data(), to_double(x).data(), planes, size);
  cpu::global_avgpool_backward_input(ref_dx.data(), to_double(dy).data(), planes, size);
  DeviceGuarded<float> dev_x(x), dev_y{static_cast<size_t>(planes)}, dev_dy(dy), dev_dx(dx0);
  k::global_avgpool_forward(dev_y.data(), dev_x.data(), planes, size, device()->stream());
  require_close("global avgpool forward", dev_y.result("gap y").data(), ref_y, gemm_tol(size));
  k::global_avgpool_backward_input(dev_dx.data(), dev_dy.data(), planes, size, device()->stream());
  require_close("global avgpool backward", dev_dx.result("gap dx").data(), ref_dx, {1e-6, 1e-7});
}

void check_relu(int64_t n, std::mt19937_64& rng) {
  INFO("relu of " << n);
  const auto x = random_floats(rng, size_t(n), 0.1), dy = random_floats(rng, size_t(n), 0.1);
  const auto dx0 = random_floats(rng, size_t(n));
  Vec ref_y(static_cast<size_t>(n));
  cpu::relu_forward(ref_y.data(), to_double(x).data(), n);
  DeviceGuarded<float> dev_x(x), dev_y{static_cast<size_t>(n)}, dev_dy(dy);
  k::relu_forward(dev_y.data(), dev_x.data(), n, device()->stream());
  require_close("relu forward", dev_y.result("relu y").data(), ref_y, exact());
  for (BackwardRule rule : kRules) {
    std::vector<float> expected = dx0;  // in float: the rule adds dy or 0, exactly
    cpu::relu_backward_input(expected.data(), dy.data(), x.data(), n, rule);
    DeviceGuarded<float> dev_dx(dx0);
    k::relu_backward_input(dev_dx.data(), dev_dy.data(), dev_x.data(), n, rule, device()->stream());
    require_close(std::string("relu backward ") + rule_name(rule), dev_dx.result("relu dx").data(), to_double(expected),
                  exact());
  }
  const Shape shape{1, n};
  const Graph graph = one_node_graph(OpKind::Relu, std::monostate{}, shape, {});
  std::vector<Vec> ref_dx;
  for (BackwardRule rule : kRules) {
    std::vector<float> d(size_t(n), 0.0f);
    cpu::relu_backward_input(d.data(), dy.data(), x.data(), n, rule);
    ref_dx.push_back(to_double(d));
  }
  check_sessions("relu", graph, to_tensor(x, shape), to_tensor(dy, shape), ref_y, exact(),
                 [&](BackwardRule r) { return ref_dx[size_t(r)]; }, exact());
}

}  // namespace

TEST_CASE("cuda parity: Conv (implicit GEMM) over a sweep of geometries", "[cuda-parity][conv]") {
  if (!have_device()) return;
  std::mt19937_64 rng(51);
  const ConvCase cases[] = {
      {"3x3 pad 1", {1, 3, 7, 9}, 8, 3, 3, window({1, 1}, {1, 1, 1, 1}), 1},
      {"odd sizes, stride 2, batch 2", {2, 5, 11, 13}, 7, 3, 3, window({2, 2}, {0, 0, 0, 0}), 1},
      {"stride > kernel", {1, 4, 10, 11}, 6, 2, 2, window({3, 3}, {1, 1, 1, 1}), 1},
      {"asymmetric pads", {1, 3, 9, 8}, 5, 3, 2, window({1, 2}, {0, 1, 2, 1}), 1},
      {"dilation 2", {1, 4, 12, 10}, 6, 3, 3, window({1, 1}, {2, 2, 2, 2}, {2, 2}), 1},
      {"groups 2, batch 2", {2, 6, 8, 8}, 4, 3, 3, window({1, 1}, {1, 1, 1, 1}), 2},
      {"depthwise stride 2", {1, 8, 9, 9}, 8, 3, 3, window({2, 2}, {1, 1, 1, 1}), 8},
      {"1x1 pointwise, batch 2, depth > one tile", {2, 70, 9, 10}, 50, 1, 1, window({1, 1}, {0, 0, 0, 0}), 1},
      {"1x1 with pad 1", {1, 16, 6, 7}, 12, 1, 1, window({1, 1}, {1, 1, 1, 1}), 1},
      {"1x1, plane a multiple of 4: 16-byte image loads", {2, 20, 6, 10}, 24, 1, 1, window({1, 1}, {0, 0, 0, 0}), 1},
      {"1x1 groups 2, 16-byte loads", {1, 8, 4, 8}, 6, 1, 1, window({1, 1}, {0, 0, 0, 0}), 2},
      {"1x1 stride 2", {1, 9, 9, 9}, 10, 1, 1, window({2, 2}, {0, 0, 0, 0}), 1},
      {"5x5 stride 2 pad 1, batch 3", {3, 6, 17, 15}, 9, 5, 5, window({2, 2}, {1, 1, 1, 1}), 1},
      {"7x7 stride 2", {1, 3, 37, 37}, 16, 7, 7, window({2, 2}, {0, 0, 0, 0}), 1},
      {"many rows: M > one 64-row tile", {1, 8, 6, 6}, 200, 3, 3, window({1, 1}, {1, 1, 1, 1}), 1},
      {"wide: many 64-column tiles", {1, 8, 40, 41}, 24, 3, 3, window({1, 1}, {1, 1, 1, 1}), 1},
      {"deep: 9 depth steps, groups 3", {1, 48, 7, 7}, 12, 3, 3, window({1, 1}, {1, 1, 1, 1}), 3},
  };
  for (const ConvCase& c : cases) check_conv(c, rng);
}

TEST_CASE("cuda parity: Gemm, batch-1 GEMV and batch > 1 tiled GEMM, both operand gradients", "[cuda-parity][gemm]") {
  if (!have_device()) return;
  std::mt19937_64 rng(52);
  const GemmCase cases[] = {
      {"batch 1, transB, bias row", 1, 37, 50, false, true, {37}, 1.0f, 1.0f},
      {"batch 1, B not transposed, bias (1,N), long K", 1, 33, 4100, false, false, {1, 33}, 1.0f, 1.0f},
      {"batch 1, aligned rows (float4 path), no bias, alpha 0.5", 1, 100, 300, false, true, {}, 0.5f, 1.0f},
      {"batch 5, scalar bias, alpha and beta", 5, 70, 300, false, true, {1}, 0.5f, 2.0f},
      {"batch 64, bias row, two row tiles", 64, 100, 130, false, true, {100}, 1.0f, 1.0f},
      {"batch 16, B not transposed", 16, 45, 77, false, false, {45}, 1.0f, 1.0f},
      {"batch 3, transA, full C", 3, 10, 7, true, true, {3, 10}, 1.0f, 0.5f},
      {"batch 4, column bias (M,1)", 4, 9, 20, false, false, {4, 1}, 1.0f, 1.0f},
      {"batch 8, B not transposed, N % 4 == 0: 16-byte loads", 8, 68, 33, false, false, {68}, 1.0f, 1.0f},
  };
  for (const GemmCase& c : cases) check_gemm(c, rng);
}

TEST_CASE("cuda parity: MaxPool values and switches are exact, NaN propagates", "[cuda-parity][maxpool]") {
  if (!have_device()) return;
  std::mt19937_64 rng(53);
  const PoolCase cases[] = {
      {"3/2 odd", {1, 3, 13, 13}, 3, 3, window({2, 2}, {0, 0, 0, 0}), false, false},
      {"3/2 ceil mode, batch 2", {2, 4, 12, 12}, 3, 3, window({2, 2}, {0, 0, 0, 0}), true, false},
      {"pad 1", {1, 2, 9, 11}, 3, 3, window({2, 2}, {1, 1, 1, 1}), false, false},
      {"asymmetric pads, ceil", {1, 2, 10, 9}, 3, 2, window({2, 1}, {0, 1, 1, 0}), true, false},
      {"dilation 2", {1, 2, 12, 12}, 2, 2, window({1, 1}, {0, 0, 0, 0}, {2, 2}), false, false},
      {"stride > kernel", {1, 3, 11, 17}, 2, 2, window({3, 3}, {0, 0, 0, 0}), false, false},
      {"ties: first maximum in scan order", {2, 5, 15, 21}, 3, 3, window({2, 2}, {1, 1, 1, 1}), true, true},
      {"ties, stride 1", {1, 4, 9, 33}, 3, 3, window({1, 1}, {0, 0, 0, 0}), false, true},
  };
  for (const PoolCase& c : cases) check_maxpool(c, rng);

  // A NaN in a window wins and its switch points at it (the CPU rule; PyTorch's behaviour).
  PoolParams p;
  p.window.kernel = {2, 2};
  p.window.stride = {2, 2};
  const Shape s{1, 1, 2, 4};
  const PoolGeometry g = pool_geometry(p, s);
  const std::vector<float> x = {1.0f, NAN, 5.0f, 2.0f, 3.0f, 0.0f, 7.0f, 1.0f};
  DeviceGuarded<float> dev_x(x), dev_y(2);
  DeviceGuarded<int32_t> dev_sw(2);
  k::maxpool2d_forward(dev_y.data(), dev_sw.data(), dev_x.data(), g, device()->stream());
  const auto y = dev_y.result("nan y");
  const auto sw = dev_sw.result("nan switches");
  REQUIRE(std::isnan(y[0]));
  REQUIRE(sw[0] == 1);
  REQUIRE(y[1] == 7.0f);
  REQUIRE(sw[1] == 6);
}

TEST_CASE("cuda parity: AveragePool (padding counted or not, ceil mode) and global average", "[cuda-parity][avgpool]") {
  if (!have_device()) return;
  std::mt19937_64 rng(54);
  const PoolCase cases[] = {
      {"3/2 pad 1 ceil, padding not counted", {2, 3, 12, 11}, 3, 3, window({2, 2}, {1, 1, 1, 1}), true, false, false},
      {"3/2 pad 1 ceil, padding counted", {1, 3, 12, 11}, 3, 3, window({2, 2}, {1, 1, 1, 1}), true, false, true},
      {"asymmetric pads", {1, 2, 9, 10}, 2, 3, window({1, 2}, {0, 1, 1, 2}), false, false, true},
      {"13x13 global-like window", {1, 4, 13, 13}, 13, 13, window({1, 1}, {0, 0, 0, 0}), false, false},
      {"stride > kernel", {1, 2, 11, 11}, 2, 2, window({3, 3}, {0, 0, 0, 0}), false, false},
  };
  for (const PoolCase& c : cases) check_avgpool(c, rng);
  for (const Shape& s : {Shape{1, 5, 13, 13}, Shape{2, 3, 1, 1}, Shape{1, 2, 40, 41}}) check_global_avgpool(s, rng);
}

TEST_CASE("cuda parity: LRN within 1e-5 relative", "[cuda-parity][lrn]") {
  if (!have_device()) return;
  std::mt19937_64 rng(55);
  check_lrn({1, 16, 7, 9}, {5, 1e-2f, 0.75f, 2.0f}, rng);
  check_lrn({2, 7, 5, 5}, {3, 5e-2f, 0.6f, 1.0f}, rng);
  check_lrn({1, 9, 3, 11}, {4, 1e-1f, 0.75f, 1.0f}, rng);
}

TEST_CASE("cuda parity: Softmax (block reductions by warp shuffles) and ReLU's three rules", "[cuda-parity][softmax][relu]") {
  if (!have_device()) return;
  std::mt19937_64 rng(56);
  check_softmax(2, 1000, 1, rng);
  check_softmax(3, 7, 5, rng);
  check_softmax(1, 300, 1, rng);
  check_softmax(4, 1, 3, rng);
  for (int64_t n : {1, 17, 1000, 100003}) check_relu(n, rng);
}

TEST_CASE("cuda parity: element-wise, broadcasting, n-ary, concat, batch norm, copies, MatMul through Sessions",
          "[cuda-parity][elementwise]") {
  if (!have_device()) return;
  std::mt19937_64 rng(57);
  const Shape s{2, 6, 7, 9};
  auto rand_tensor = [&](const Shape& shape, float lo = -1.0f) {
    Tensor t = to_tensor(random_floats(rng, size_t(shape_numel(shape))), shape);
    if (lo >= 0.0f)  // positive inputs (Sqrt, Log, Pow, Div's denominator, variances)
      for (int64_t i = 0; i < t.numel(); ++i) t[i] = 0.5f + std::fabs(t[i]);
    return t;
  };
  struct Case {
    const char* name;
    OpKind kind;
    OpParams params;
    std::vector<Shape> constants;
    bool positive = false;
  };
  UnaryParams clip;
  clip.min = -0.3f;
  clip.max = 0.4f;
  UnaryParams pow;
  pow.exponent = 1.7f;
  std::vector<Case> cases = {
      {"Add broadcast (6,1,1)", OpKind::Add, std::monostate{}, {{6, 1, 1}}},
      {"Sub broadcast (2,1,7,1)", OpKind::Sub, std::monostate{}, {{2, 1, 7, 1}}},
      {"Mul same shape", OpKind::Mul, std::monostate{}, {{2, 6, 7, 9}}},
      {"Div by a row (9)", OpKind::Div, std::monostate{}, {{9}}, true},
      {"Max of three", OpKind::Max, std::monostate{}, {{2, 6, 7, 9}, {2, 6, 7, 9}}},
      {"Sum of three", OpKind::Sum, std::monostate{}, {{2, 6, 7, 9}, {2, 6, 7, 9}}},
      {"Concat axis 1", OpKind::Concat, AxisParams{1}, {{2, 3, 7, 9}, {2, 1, 7, 9}}},
      {"Concat last axis", OpKind::Concat, AxisParams{-1}, {{2, 6, 7, 4}}},
      {"Flatten", OpKind::Flatten, AxisParams{1}, {}},
      {"Identity", OpKind::Identity, std::monostate{}, {}},
      {"Softmax axis 1 (inner 63)", OpKind::Softmax, SoftmaxParams{1, false}, {}},
      {"Softmax opset 11 (coerced 2-D)", OpKind::Softmax, SoftmaxParams{1, true}, {}},
      {"Sigmoid", OpKind::Sigmoid, UnaryParams{}, {}},
      {"Tanh", OpKind::Tanh, UnaryParams{}, {}},
      {"Abs", OpKind::Abs, UnaryParams{}, {}},
      {"Softplus", OpKind::Softplus, UnaryParams{}, {}},
      {"Exp", OpKind::Exp, UnaryParams{}, {}},
      {"Neg", OpKind::Neg, UnaryParams{}, {}},
      {"Clip", OpKind::Clip, clip, {}},
      {"Sqrt", OpKind::Sqrt, UnaryParams{}, {}, true},
      {"Log", OpKind::Log, UnaryParams{}, {}, true},
      {"Pow", OpKind::Pow, pow, {}, true},
      {"BatchNormalization", OpKind::BatchNormalization, BatchNormParams{1e-5f}, {{6}, {6}, {6}, {6}}, true},
      {"MatMul, shared B", OpKind::MatMul, std::monostate{}, {{9, 5}}},
      {"MatMul, batched B", OpKind::MatMul, std::monostate{}, {{2, 6, 9, 4}}},
  };
  for (const Case& c : cases) {
    INFO("op " << c.name);
    std::vector<Tensor> consts;
    for (const Shape& cs : c.constants) consts.push_back(rand_tensor(cs, c.positive ? 0.0f : -1.0f));
    const Graph g = one_node_graph(c.kind, c.params, s, std::move(consts));
    const Tensor x = rand_tensor(s, c.positive && c.kind != OpKind::Div && c.kind != OpKind::BatchNormalization ? 0.0f : -1.0f);
    const bool reduction = c.kind == OpKind::MatMul || c.kind == OpKind::Softmax;
    check_against_reference_backend(c.name, g, x, reduction ? Tol{1e-5, 1e-6} : Tol{2e-6, 1e-7}, rng);
  }
}

TEST_CASE("cuda parity: broadcasting binary ops, both operand gradients (gathers over broadcast axes)",
          "[cuda-parity][broadcast]") {
  if (!have_device()) return;
  std::mt19937_64 rng(60);
  struct Case {
    Shape a, b;
  };
  const Case cases[] = {
      {{2, 6, 7, 9}, {6, 1, 1}},        // a per-channel bias
      {{2, 6, 7, 9}, {2, 1, 7, 1}},
      {{2, 6, 7, 9}, {9}},              // lower rank
      {{2, 1, 7, 1}, {6, 1, 9}},        // both broadcast
      {{3, 5}, {3, 5}},                 // same shape
      {{1}, {4, 3}},                    // a scalar-like operand
  };
  for (const Case& c : cases)
    for (OpKind op : {OpKind::Add, OpKind::Sub, OpKind::Mul, OpKind::Div}) {
      INFO(op_name(op) << " of " << shape_to_string(c.a) << " and " << shape_to_string(c.b));
      // Output shape: numpy broadcasting, right-aligned.
      const size_t rank = std::max(c.a.size(), c.b.size());
      Shape y(rank, 1);
      for (size_t i = 0; i < rank; ++i) {
        const int64_t da = i < rank - c.a.size() ? 1 : c.a[i - (rank - c.a.size())];
        const int64_t db = i < rank - c.b.size() ? 1 : c.b[i - (rank - c.b.size())];
        y[i] = std::max(da, db);
      }
      const size_t na = size_t(shape_numel(c.a)), nb = size_t(shape_numel(c.b)), ny = size_t(shape_numel(y));
      const auto a = random_floats(rng, na);
      auto b = random_floats(rng, nb);
      if (op == OpKind::Div)
        for (float& v : b) v = 0.5f + std::fabs(v);
      const auto dy = random_floats(rng, ny), da0 = random_floats(rng, na), db0 = random_floats(rng, nb);
      Vec ref_y(ny), ref_da = to_double(da0), ref_db = to_double(db0);
      const Vec ad = to_double(a), bd = to_double(b), dyd = to_double(dy);
      cpu::binary_forward(ref_y.data(), ad.data(), bd.data(), c.a, c.b, y, op);
      cpu::binary_backward_input(ref_da.data(), ref_db.data(), dyd.data(), ad.data(), bd.data(), c.a, c.b, y, op);
      DeviceGuarded<float> dev_a(a), dev_b(b), dev_y(ny), dev_dy(dy), dev_da(da0), dev_db(db0);
      k::binary_forward(dev_y.data(), dev_a.data(), dev_b.data(), c.a, c.b, y, op, device()->stream());
      require_close("binary forward", dev_y.result("binary y").data(), ref_y, {2e-6, 1e-7});
      k::binary_backward_input(dev_da.data(), dev_db.data(), dev_dy.data(), dev_a.data(), dev_b.data(), c.a, c.b, y, op,
                               device()->stream());
      const int64_t reduce_a = int64_t(ny / na), reduce_b = int64_t(ny / nb);
      require_close("binary backward da (adds)", dev_da.result("binary da").data(), ref_da, gemm_tol(reduce_a));
      require_close("binary backward db (adds)", dev_db.result("binary db").data(), ref_db, gemm_tol(reduce_b));
    }
}

TEST_CASE("cuda parity: whole zoo nets at small inputs against cpu-reference, three rules", "[cuda-parity][zoo]") {
  if (!have_device()) return;
  struct NetCase {
    const char* name;
    int size, batch;
  };
  // Batch 2 where LRN and the class seeds of two images meet (simonyan13); batch 1 elsewhere keeps
  // the CPU reference's share of the test time down (the op sweeps cover batches > 1).
  const NetCase nets[] = {{"simonyan13", 67, 2}, {"alexnet", 63, 1}, {"vgg16", 32, 1}};
  for (const NetCase& n : nets) {
    INFO("net " << n.name);
    ZooOptions o;
    o.height = o.width = n.size;
    o.classes = 50;
    const Graph g = zoo_graph(n.name, o);
    const Shape shape{n.batch, 3, n.size, n.size};
    std::mt19937_64 rng(58);
    const Tensor x = to_tensor(random_floats(rng, size_t(shape_numel(shape))), shape);
    auto reference = make_backend("cpu-reference");
    Session ref(g, *reference, shape);
    ref.forward(x);
    const int scores = g.default_scores_value();
    const Vec ref_scores = to_double(ref.value(scores).data(), size_t(ref.value(scores).numel()));
    Tensor seed(ref.shape(scores));
    for (int i = 0; i < n.batch; ++i) seed[int64_t(i) * o.classes + (i * 17) % o.classes] = 1.0f;
    std::vector<Vec> ref_grads;
    for (BackwardRule rule : kRules) {
      const Tensor& gr = ref.backward_input(scores, seed, rule);
      ref_grads.push_back(to_double(gr.data(), size_t(gr.numel())));
      REQUIRE(max_abs(ref_grads.back()) > 0);
    }
    for (const std::string& name : kSessionBackends) {
      auto backend = make_backend(name);
      Session s(g, *backend, shape);
      const auto t0 = std::chrono::steady_clock::now();
      s.forward(x);
      require_close(std::string(n.name) + " scores on " + name, s.value(scores).data(), ref_scores,
                    {1e-4, 1e-4 * max_abs(ref_scores)});
      for (BackwardRule rule : kRules) {
        const Vec& r = ref_grads[size_t(rule)];
        require_close(std::string(n.name) + " input gradient (" + rule_name(rule) + ") on " + name,
                      s.backward_input(scores, seed, rule).data(), r, {1e-4, 1e-4 * max_abs(r)});
      }
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("%s on %s: forward + 3 backward passes in %.2f s\n", n.name, name.c_str(), seconds);
    }
  }
}

TEST_CASE("cuda parity: SqueezeNet v1.1 on the shared photos: same top-5 as the CPU reference, saliency within tolerance under "
          "the three rules",
          "[cuda-parity][squeezenet][shared]") {
  if (!have_device()) return;
  if (!test::have_shared(kSqueezeNet)) return;
  const Model model = load_model(test::shared_path(kSqueezeNet), {});
  std::vector<Tensor> items;
  for (const char* image : {"images/cat.jpg", "images/dog.jpg", "images/eagle.jpg"})
    items.push_back(prepare_image(load_image(test::shared_path(image)), model.preprocessing(), 3, 227, 227).input.clone());
  const Tensor batch = stack_batch(items);
  // The reference backend (the specification): the fast "cpu" backend's Winograd and GEMM rounding
  // moves a few ReLU and max-pool decisions of SqueezeNet, and with them ~0.4% of the gradient.
  auto reference = make_backend("cpu-reference");
  Session ref(model.graph, *reference, batch.shape());
  ref.forward(batch);
  const int scores = model.scores_value;
  Tensor seed(ref.shape(scores));
  std::vector<std::vector<int>> ref_top5;
  for (int n = 0; n < 3; ++n) {
    std::vector<int> top;
    for (const auto& c : viz::top_classes(viz::image_scores(ref, model, n), 5, model)) top.push_back(c.cls);
    seed[int64_t(n) * 1000 + top[0]] = 1.0f;  // d(score of the top-1 class) / d(image)
    ref_top5.push_back(top);
  }
  std::vector<Vec> ref_grads;
  for (BackwardRule rule : kRules) {
    const Tensor& g = ref.backward_input(scores, seed, rule);
    ref_grads.push_back(to_double(g.data(), size_t(g.numel())));
  }
  for (const std::string& name : kSessionBackends) {
    auto backend = make_backend(name);
    Session s(model.graph, *backend, batch.shape());
    const auto t0 = std::chrono::steady_clock::now();
    s.forward(batch);
    for (int n = 0; n < 3; ++n) {
      std::vector<int> top;
      for (const auto& c : viz::top_classes(viz::image_scores(s, model, n), 5, model)) top.push_back(c.cls);
      INFO("image " << n << " on " << name);
      REQUIRE(top == ref_top5[size_t(n)]);
    }
    for (BackwardRule rule : kRules) {
      const Vec& r = ref_grads[size_t(rule)];
      REQUIRE(max_abs(r) > 0);
      // The golden test's tolerance for the same gradient against PyTorch autograd.
      require_close(std::string("SqueezeNet input gradient (") + rule_name(rule) + ") on " + name,
                    s.backward_input(scores, seed, rule).data(), r, {1e-3, 1e-4 * max_abs(r)});
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("SqueezeNet v1.1, 3 x 227x227, on %s: forward + 3 backward passes in %.2f s\n", name.c_str(), seconds);
  }
}


TEST_CASE("cuda parity: passes replayed as captured graphs give bit-identical results to eager passes",
          "[cuda-parity][graph]") {
  if (!have_device()) return;
  ZooOptions o;
  o.height = o.width = 67;
  o.classes = 20;
  const Graph g = zoo_graph("simonyan13", o);
  const Shape shape{1, 3, 67, 67};
  const int scores = g.default_scores_value();
  for (const std::string& name : kSessionBackends) {
    auto backend = make_backend(name);
    Session eager(g, *backend, shape), replayed(g, *backend, shape);
    replayed.set_graph_replay(true);
    std::mt19937_64 rng(59);
    // Four passes with new inputs, seeds and rules: the very first forward and backward run eagerly
    // (they plan the buffers); every later pass replays a graph, captured on its first use (one
    // per rule for backward).
    const BackwardRule rules[] = {BackwardRule::gradient, BackwardRule::gradient, BackwardRule::guided,
                                  BackwardRule::guided};
    for (int pass = 0; pass < 4; ++pass) {
      INFO("pass " << pass << " on " << name);
      const Tensor x = to_tensor(random_floats(rng, size_t(shape_numel(shape))), shape);
      Tensor seed(Shape{1, o.classes});
      seed[pass * 3 % o.classes] = 1.0f;
      eager.forward(x);
      replayed.forward(x);
      const Tensor& a = eager.value(scores);
      const Tensor& b = replayed.value(scores);
      REQUIRE(std::equal(a.data(), a.data() + a.numel(), b.data()));
      const Tensor& ga = eager.backward_input(scores, seed, rules[pass]);
      const Tensor& gb = replayed.backward_input(scores, seed, rules[pass]);
      REQUIRE(max_abs(to_double(ga.data(), size_t(ga.numel()))) > 0);
      REQUIRE(std::equal(ga.data(), ga.data() + ga.numel(), gb.data()));
    }
    // Forward replayed on passes 1..3, backward on passes 1..3 (two graphs: gradient, guided).
    REQUIRE(replayed.graph_replays() == 6);
    REQUIRE(eager.graph_replays() == 0);
  }
}

TEST_CASE("cuda parity: without a GPU, backends cuda and cudnn refuse with a clear message", "[cuda-parity][no-gpu]") {
  // The emulation never needs a GPU.
  REQUIRE(make_backend("cuda-emu")->name() == "cuda-emu");
#ifndef DEEPINSIDE_EMU
  std::string why;
  if (!device(&why)) REQUIRE(why.find("no CUDA device is present") != std::string::npos);
#endif
  for (const char* name : {"cuda", "cudnn"}) {
    try {
      const auto backend = make_backend(name);
      WARN("backend " << name << " is available here (a GPU is present): nothing to refuse");
    } catch (const Error& e) {
      INFO(e.what());
      REQUIRE(std::string(e.what()).find(std::string("backend '") + name + "' is not available") != std::string::npos);
    }
  }
}
