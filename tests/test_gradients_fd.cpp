// Finite-difference checks, in double, of every CPU reference kernel's input gradient (DESIGN.md
// Sec. 7.2): for random x and a random projection r, L(x) = sum(r * f(x)); backward_input with
// dy = r must match central differences of L (fd_check.h). Each case also checks that backward ADDS
// into dx. Beside the gradients: the rectifier's three rules against their definitions, and the
// max-pool / Max switch tie rule (the first maximum in scan order). Derivations: docs/derivations.md.
#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/op_params.h"
#include "kernels/cpu/reference.h"
#include "tests/fd_check.h"

using namespace deepinside;
using fd::Vec;
namespace cpu = deepinside::cpu;

namespace {

constexpr double kStep = fd::kStep;

size_t numel(const Shape& s) { return size_t(shape_numel(s)); }

std::string shape_str(const Shape& s) { return shape_to_string(s); }

// ---- convolution ------------------------------------------------------------------------------

struct ConvCase {
  const char* name;
  Shape x, w;  // (N,C,H,W), (M,C/group,KH,KW)
  Window2d win;
  int group;
  int oh, ow;  // expected output size (ONNX formulas, worked by hand)
};

void check_conv(const ConvCase& c, std::mt19937_64& rng) {
  ConvParams p;
  p.window = c.win;
  p.group = c.group;
  const ConvGeometry g = conv_geometry(p, c.x, c.w);
  REQUIRE(g.OH == c.oh);
  REQUIRE(g.OW == c.ow);
  Vec x = fd::random_vec(rng, numel(c.x)), w = fd::random_vec(rng, numel(c.w));
  Vec b = fd::random_vec(rng, size_t(g.M));
  Vec r = fd::random_vec(rng, size_t(g.N) * g.M * g.OH * g.OW), y(r.size());
  auto loss = [&] {
    cpu::conv2d_forward(y.data(), x.data(), w.data(), b.data(), g);
    return fd::dot(r, y);
  };
  const Vec dx = fd::backward_adds(x.size(), [&](double* d) {
    cpu::conv2d_backward_input(d, r.data(), w.data(), g);
  });
  fd::require_ok(fd::check(x, dx, loss), std::string("Conv ") + c.name);
}

// ---- pooling ----------------------------------------------------------------------------------

struct PoolCase {
  const char* name;
  Shape x;  // (N,C,H,W)
  Window2d win;
  bool ceil_mode;
  int oh, ow;
};

PoolGeometry pool_geom(const PoolCase& c, bool count_include_pad) {
  PoolParams p;
  p.window = c.win;
  p.ceil_mode = c.ceil_mode;
  p.count_include_pad = count_include_pad;
  const PoolGeometry g = pool_geometry(p, c.x);
  REQUIRE(g.OH == c.oh);
  REQUIRE(g.OW == c.ow);
  return g;
}

// Kink guard for max-pool: skip every input of a window whose top two (real, non-padding) values
// are within 2h. If x_i is within h of its window's maximum, the runner-up is within h too, so
// this covers every coordinate whose perturbation can move a switch.
std::vector<bool> maxpool_near_ties(const Vec& x, const PoolGeometry& g) {
  std::vector<bool> skip(x.size(), false);
  for (int64_t plane = 0; plane < int64_t(g.N) * g.C; ++plane)
    for (int oy = 0; oy < g.OH; ++oy)
      for (int ox = 0; ox < g.OW; ++ox) {
        std::vector<int64_t> members;
        for (int ky = 0; ky < g.KH; ++ky)
          for (int kx = 0; kx < g.KW; ++kx) {
            const int iy = oy * g.stride_h - g.pad_t + ky * g.dil_h;
            const int ix = ox * g.stride_w - g.pad_l + kx * g.dil_w;
            if (iy >= 0 && iy < g.H && ix >= 0 && ix < g.W)
              members.push_back(plane * g.H * g.W + iy * g.W + ix);
          }
        if (members.size() < 2) continue;
        Vec v;
        for (int64_t m : members) v.push_back(x[size_t(m)]);
        std::partial_sort(v.begin(), v.begin() + 2, v.end(), std::greater<>());
        if (v[0] - v[1] < 2.0 * kStep)
          for (int64_t m : members) skip[size_t(m)] = true;
      }
  return skip;
}

void check_maxpool(const PoolCase& c, std::mt19937_64& rng) {
  const PoolGeometry g = pool_geom(c, false);
  Vec x = fd::random_vec(rng, numel(c.x));
  const size_t ny = size_t(g.N) * g.C * g.OH * g.OW;
  Vec r = fd::random_vec(rng, ny), y(ny);
  std::vector<int32_t> sw(ny);
  auto loss = [&] {
    cpu::maxpool2d_forward(y.data(), sw.data(), x.data(), g);
    return fd::dot(r, y);
  };
  loss();  // switches of the unperturbed x
  const Vec dx = fd::backward_adds(x.size(), [&](double* d) {
    cpu::maxpool2d_backward_input(d, r.data(), sw.data(), g);
  });
  const std::vector<bool> skip = maxpool_near_ties(x, g);
  fd::require_ok(fd::check(x, dx, loss, [&](size_t i) { return bool(skip[i]); }),
                 std::string("MaxPool ") + c.name, 0.6);
}

void check_avgpool(const PoolCase& c, bool count_include_pad, std::mt19937_64& rng) {
  const PoolGeometry g = pool_geom(c, count_include_pad);
  Vec x = fd::random_vec(rng, numel(c.x));
  const size_t ny = size_t(g.N) * g.C * g.OH * g.OW;
  Vec r = fd::random_vec(rng, ny), y(ny);
  auto loss = [&] {
    cpu::avgpool2d_forward(y.data(), x.data(), g);
    return fd::dot(r, y);
  };
  const Vec dx = fd::backward_adds(x.size(), [&](double* d) {
    cpu::avgpool2d_backward_input(d, r.data(), g);
  });
  fd::require_ok(fd::check(x, dx, loss), std::string("AveragePool ") + c.name + " count_include_pad=" +
                                             (count_include_pad ? "1" : "0"));
}

// ---- broadcasting -----------------------------------------------------------------------------

Shape broadcast_shape(const Shape& a, const Shape& b) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t k = 0; k < rank; ++k) {
    const int64_t da = k < rank - a.size() ? 1 : a[k - (rank - a.size())];
    const int64_t db = k < rank - b.size() ? 1 : b[k - (rank - b.size())];
    REQUIRE((da == db || da == 1 || db == 1));
    out[k] = std::max(da, db);
  }
  return out;
}

// (outer, L, inner) view of a shape around one axis.
struct AxisView {
  int64_t outer = 1, length = 1, inner = 1;
};

AxisView axis_view(const Shape& s, int axis) {
  AxisView v;
  for (int k = 0; k < int(s.size()); ++k)
    (k < axis ? v.outer : k == axis ? v.length : v.inner) *= s[size_t(k)];
  return v;
}

}  // namespace

// ================================================================================================

TEST_CASE("Conv input gradient matches finite differences over a sweep of geometries", "[fd][conv]") {
  std::mt19937_64 rng(101);
  auto win = [](std::array<int, 2> stride, std::array<int, 2> dil, std::array<int, 4> pads,
                AutoPad ap = AutoPad::notset) {
    Window2d w;
    w.stride = stride;
    w.dilation = dil;
    w.pads = pads;
    w.auto_pad = ap;
    return w;
  };
  const std::vector<ConvCase> cases = {
      {"3x3 stride 1 pad 1", {2, 3, 7, 7}, {4, 3, 3, 3}, win({1, 1}, {1, 1}, {1, 1, 1, 1}), 1, 7, 7},
      {"odd sizes, 2x3 kernel, stride 2",
       {1, 2, 7, 9}, {3, 2, 2, 3}, win({2, 2}, {1, 1}, {0, 0, 0, 0}), 1, 3, 4},
      {"stride 3 > kernel 2", {1, 2, 8, 7}, {2, 2, 2, 2}, win({3, 3}, {1, 1}, {0, 0, 0, 0}), 1, 3, 2},
      {"asymmetric pads t0 l1 b2 r0, stride (2,1)",
       {1, 2, 6, 5}, {3, 2, 3, 3}, win({2, 1}, {1, 1}, {0, 1, 2, 0}), 1, 3, 4},
      {"dilation 2, pads (2,1)", {1, 2, 9, 8}, {2, 2, 3, 3}, win({1, 1}, {2, 2}, {2, 1, 2, 1}), 1, 9, 6},
      {"dilation (2,3), stride 2, 3x2 kernel",
       {1, 1, 9, 10}, {2, 1, 3, 2}, win({2, 2}, {2, 3}, {1, 1, 1, 1}), 1, 4, 5},
      {"groups 2", {2, 4, 6, 6}, {6, 2, 3, 3}, win({1, 1}, {1, 1}, {1, 1, 1, 1}), 2, 6, 6},
      {"depthwise (group = C = M), stride 2",
       {1, 3, 7, 7}, {3, 1, 3, 3}, win({2, 2}, {1, 1}, {1, 1, 1, 1}), 3, 4, 4},
      {"depthwise with multiplier 2", {1, 3, 6, 5}, {6, 1, 2, 2}, win({1, 1}, {1, 1}, {0, 0, 0, 0}), 3, 5, 4},
      {"1x1", {2, 5, 4, 3}, {3, 5, 1, 1}, win({1, 1}, {1, 1}, {0, 0, 0, 0}), 1, 4, 3},
      {"auto_pad SAME_UPPER stride 2",
       {1, 2, 7, 6}, {2, 2, 4, 3}, win({2, 2}, {1, 1}, {0, 0, 0, 0}, AutoPad::same_upper), 1, 4, 3},
      {"auto_pad SAME_LOWER stride 2",
       {1, 2, 7, 6}, {2, 2, 4, 3}, win({2, 2}, {1, 1}, {0, 0, 0, 0}, AutoPad::same_lower), 1, 4, 3},
      {"kernel larger than input, pad 1",
       {1, 2, 2, 2}, {2, 2, 3, 3}, win({1, 1}, {1, 1}, {1, 1, 1, 1}), 1, 2, 2},
  };
  for (const ConvCase& c : cases) {
    SECTION(c.name) { check_conv(c, rng); }
  }
}

TEST_CASE("Conv auto_pad resolves SAME pads as ONNX does", "[fd][conv]") {
  ConvParams p;
  p.window.stride = {2, 2};
  p.window.auto_pad = AutoPad::same_upper;
  // H = 7, KH = 4: OH = 4, total pad (4-1)*2 + 4 - 7 = 3 -> top 1, bottom 2 (upper gets the extra).
  // W = 6, KW = 3: OW = 3, total (3-1)*2 + 3 - 6 = 1 -> left 0, right 1.
  ConvGeometry g = conv_geometry(p, {1, 2, 7, 6}, {2, 2, 4, 3});
  CHECK(g.pad_t == 1);
  CHECK(g.pad_l == 0);
  p.window.auto_pad = AutoPad::same_lower;
  g = conv_geometry(p, {1, 2, 7, 6}, {2, 2, 4, 3});
  CHECK(g.pad_t == 2);
  CHECK(g.pad_l == 1);
}

// ------------------------------------------------------------------------------------------------

namespace {

Window2d pool_win(std::array<int, 2> k, std::array<int, 2> s, std::array<int, 4> pads,
                  std::array<int, 2> dil = {1, 1}) {
  Window2d w;
  w.kernel = k;
  w.stride = s;
  w.pads = pads;
  w.dilation = dil;
  return w;
}

// Ceil-mode cases, worked by hand (span = H + pads - effective kernel; out = ceil(span/s) + 1, minus
// one when the last window would start at or past H + pad_begin, i.e. inside the trailing padding):
//   H=6, k3 s2 p0:   span 3 -> 3 windows (floor: 2); the last covers rows 4..6, row 6 is outside.
//   H=6, k3 s2 p1,1: span 5 -> 4 windows (floor: 3); the last starts at row 5 and covers 5, 6(pad), 7.
//   H=5, k2 s2 p1,1: span 5 -> ceil 4, but window 4 would start at 3*2-1 = 5 = H: in the padding,
//                    dropped -> 3.
const std::vector<PoolCase>& pool_cases() {
  static const std::vector<PoolCase> cases = {
      {"2x2 stride 2", {2, 3, 6, 6}, pool_win({2, 2}, {2, 2}, {0, 0, 0, 0}), false, 3, 3},
      {"3x3 stride 2 pad 1, odd sizes", {1, 2, 7, 9}, pool_win({3, 3}, {2, 2}, {1, 1, 1, 1}), false, 4, 5},
      {"stride 3 > kernel 2", {1, 2, 8, 7}, pool_win({2, 2}, {3, 3}, {0, 0, 0, 0}), false, 3, 2},
      {"asymmetric pads t1 l0 b0 r1, 3x2 kernel",
       {1, 2, 6, 5}, pool_win({3, 2}, {2, 1}, {1, 0, 0, 1}), false, 3, 5},
      {"stride 3 > kernel 2, pads t1 r2", {1, 2, 8, 7}, pool_win({2, 2}, {3, 3}, {1, 0, 0, 2}), false, 3, 3},
      {"ceil mode, last window overhangs the input",
       {1, 2, 6, 7}, pool_win({3, 3}, {2, 2}, {0, 0, 0, 0}), true, 3, 3},
      {"ceil mode with pad 1, last window past the padding",
       {1, 2, 6, 6}, pool_win({3, 3}, {2, 2}, {1, 1, 1, 1}), true, 4, 4},
      {"ceil mode, window starting in the padding dropped",
       {1, 2, 5, 5}, pool_win({2, 2}, {2, 2}, {1, 1, 1, 1}), true, 3, 3},
  };
  return cases;
}

}  // namespace

TEST_CASE("MaxPool input gradient (through switches) matches finite differences", "[fd][maxpool]") {
  std::mt19937_64 rng(202);
  std::vector<PoolCase> cases = pool_cases();
  cases.push_back({"dilation 2, pad 2",
                   {1, 2, 9, 8}, pool_win({3, 3}, {1, 1}, {2, 2, 2, 2}, {2, 2}), false, 9, 8});
  cases.push_back({"dilation (2,1), ceil mode",
                   {1, 2, 8, 7}, pool_win({2, 3}, {2, 2}, {0, 1, 0, 1}, {2, 1}), true, 4, 4});
  for (const PoolCase& c : cases) {
    SECTION(c.name) { check_maxpool(c, rng); }
  }
}

TEST_CASE("AveragePool input gradient matches finite differences, count_include_pad 0 and 1",
          "[fd][avgpool]") {
  std::mt19937_64 rng(303);
  for (const PoolCase& c : pool_cases()) {
    SECTION(c.name) {
      check_avgpool(c, false, rng);
      check_avgpool(c, true, rng);
    }
  }
}

TEST_CASE("AveragePool divisors in ceil mode: padding counted up to the padded extent only", "[avgpool]") {
  // H = W = 6, k3 s2 pads 1, ceil mode: windows start at -1, 1, 3, 5 and cover [-1,2), [1,4), [3,6),
  // [5,8). Real elements per axis: 2, 3, 3, 1. With count_include_pad the window is clipped to the
  // padded extent [-1, 7): 3, 3, 3, 2 (row 7 lies beyond the padding and is never counted).
  // On an input of ones, y = (real count) / divisor, a product of per-axis factors.
  PoolParams p;
  p.window = pool_win({3, 3}, {2, 2}, {1, 1, 1, 1});
  p.ceil_mode = true;
  const Vec ones(36, 1.0);
  const std::array<double, 4> with_pad = {2.0 / 3.0, 1.0, 1.0, 0.5};
  for (bool include : {false, true}) {
    p.count_include_pad = include;
    const PoolGeometry g = pool_geometry(p, {1, 1, 6, 6});
    REQUIRE(g.OH == 4);
    REQUIRE(g.OW == 4);
    Vec y(16);
    cpu::avgpool2d_forward(y.data(), ones.data(), g);
    for (int oy = 0; oy < 4; ++oy)
      for (int ox = 0; ox < 4; ++ox) {
        const double expected = include ? with_pad[size_t(oy)] * with_pad[size_t(ox)] : 1.0;
        INFO("count_include_pad " << include << " output (" << oy << "," << ox << ")");
        CHECK(y[size_t(oy * 4 + ox)] == Approx(expected).epsilon(1e-15));
      }
  }
}

TEST_CASE("GlobalAveragePool input gradient matches finite differences", "[fd][avgpool]") {
  std::mt19937_64 rng(304);
  const int64_t planes = 6, size = 35;
  Vec x = fd::random_vec(rng, size_t(planes * size)), r = fd::random_vec(rng, size_t(planes));
  Vec y(static_cast<size_t>(planes));
  auto loss = [&] {
    cpu::global_avgpool_forward(y.data(), x.data(), planes, size);
    return fd::dot(r, y);
  };
  const Vec dx = fd::backward_adds(x.size(), [&](double* d) {
    cpu::global_avgpool_backward_input(d, r.data(), planes, size);
  });
  fd::require_ok(fd::check(x, dx, loss), "GlobalAveragePool (6 planes of 5x7)");
}

// ------------------------------------------------------------------------------------------------

TEST_CASE("MaxPool switches: ties go to the first maximum in scan order", "[maxpool][switches]") {
  // One 4x5 plane, 2x2 windows, stride 2, pad right 1 (so the last column of windows is half padding).
  // Exact ties inside windows; the switch must be the first maximum in row-major order within the
  // window, and dy must be routed there only.
  const std::vector<double> x = {
      3, 3,  1, 5,  7,   //
      3, 2,  5, 5,  7,   //
      0, -1, 2, 2,  -4,  //
      -1, 0, 2, 2,  -4,  //
  };
  PoolParams p;
  p.window = pool_win({2, 2}, {2, 2}, {0, 0, 0, 1});
  const PoolGeometry g = pool_geometry(p, {1, 1, 4, 5});
  REQUIRE(g.OH == 2);
  REQUIRE(g.OW == 3);
  std::vector<double> y(6);
  std::vector<int32_t> sw(6);
  cpu::maxpool2d_forward(y.data(), sw.data(), x.data(), g);
  // Window (0,0): 3 3 / 3 2 -> (0,0). (0,1): 1 5 / 5 5 -> (0,3). (0,2): 7 pad / 7 pad -> (0,4).
  // Window (1,0): 0 -1 / -1 0 -> (2,0). (1,1): all 2 -> (2,2). (1,2): -4 pad / -4 pad -> (2,4), never
  // the padding even though padding would be "larger" if it counted as 0.
  const std::vector<int32_t> expected_sw = {0, 3, 4, 10, 12, 14};
  const std::vector<double> expected_y = {3, 5, 7, 0, 2, -4};
  CHECK(sw == expected_sw);
  CHECK(y == expected_y);
  const Vec dy = {1, 2, 3, 4, 5, 6};
  const Vec dx = fd::backward_adds(x.size(), [&](double* d) {
    cpu::maxpool2d_backward_input(d, dy.data(), sw.data(), g);
  });
  Vec expected_dx(20, 0.0);
  for (size_t o = 0; o < 6; ++o) expected_dx[size_t(expected_sw[o])] += dy[o];
  CHECK(dx == expected_dx);
}

TEST_CASE("MaxPool switches with overlapping windows and an all-equal plane", "[maxpool][switches]") {
  // 3x3 windows, stride 1, pad 1 on a 3x3 plane of equal values: each window's first real element in
  // row-major order. Overlapping windows may share a switch; their gradients add.
  PoolParams p;
  p.window = pool_win({3, 3}, {1, 1}, {1, 1, 1, 1});
  const PoolGeometry g = pool_geometry(p, {1, 1, 3, 3});
  REQUIRE(g.OH == 3);
  REQUIRE(g.OW == 3);
  const Vec x(9, -2.5);  // negative: the zero padding must still never win
  Vec y(9);
  std::vector<int32_t> sw(9);
  cpu::maxpool2d_forward(y.data(), sw.data(), x.data(), g);
  // Window (oy,ox) covers rows max(oy-1,0).., cols max(ox-1,0)..: its first real element.
  for (int oy = 0; oy < 3; ++oy)
    for (int ox = 0; ox < 3; ++ox) {
      INFO("window (" << oy << "," << ox << ")");
      CHECK(sw[size_t(oy * 3 + ox)] == std::max(oy - 1, 0) * 3 + std::max(ox - 1, 0));
      CHECK(y[size_t(oy * 3 + ox)] == -2.5);
    }
  const Vec dy(9, 1.0);
  const Vec dx = fd::backward_adds(x.size(), [&](double* d) {
    cpu::maxpool2d_backward_input(d, dy.data(), sw.data(), g);
  });
  // Element 0 is the first of windows (0,0), (0,1), (1,0), (1,1); element 1 of (0,2), (1,2); etc.
  const Vec expected = {4, 2, 0, 2, 1, 0, 0, 0, 0};
  CHECK(dx == expected);
}

TEST_CASE("MaxPool: a window that covers only padding records no switch and routes nothing",
          "[maxpool][switches]") {
  // pads top 2 with a 2-row kernel: the first row of windows lies entirely in the padding.
  PoolParams p;
  p.window = pool_win({2, 1}, {1, 1}, {2, 0, 0, 0});
  const PoolGeometry g = pool_geometry(p, {1, 1, 2, 2});
  REQUIRE(g.OH == 3);
  REQUIRE(g.OW == 2);
  const Vec x = {1, 4, 3, 2};
  Vec y(6);
  std::vector<int32_t> sw(6);
  cpu::maxpool2d_forward(y.data(), sw.data(), x.data(), g);
  CHECK(sw == std::vector<int32_t>{-1, -1, 0, 1, 2, 1});
  const Vec dy(6, 1.0);
  const Vec dx = fd::backward_adds(x.size(), [&](double* d) {
    cpu::maxpool2d_backward_input(d, dy.data(), sw.data(), g);
  });
  CHECK(dx == Vec{1, 2, 1, 0});
}

// ------------------------------------------------------------------------------------------------

TEST_CASE("LRN input gradient matches finite differences, odd and even sizes", "[fd][lrn]") {
  std::mt19937_64 rng(404);
  struct LrnCase {
    int size, C;
    float alpha, beta, bias;
  };
  // alpha is large so that the normalisation is far from linear on inputs in [-2, 2].
  const std::vector<LrnCase> cases = {
      {3, 7, 1.0f, 0.75f, 1.0f}, {5, 7, 1.0f, 0.75f, 2.0f}, {2, 6, 0.8f, 0.75f, 1.0f},
      {4, 7, 1.0f, 0.5f, 1.5f},  {1, 3, 0.5f, 0.75f, 1.0f}, {9, 5, 1.0f, 0.75f, 1.0f},
  };
  for (const LrnCase& c : cases) {
    const std::string name = "LRN size " + std::to_string(c.size) + ", C " + std::to_string(c.C) +
                             ", beta " + std::to_string(c.beta) + ", bias " + std::to_string(c.bias);
    SECTION(name) {
      LrnParams p;
      p.size = c.size;
      p.alpha = c.alpha;
      p.beta = c.beta;
      p.bias = c.bias;
      const int N = 2;
      const int64_t S = 6;  // 3x2 spatial
      const size_t n = size_t(N) * c.C * S;
      Vec x = fd::random_vec(rng, n, -2.0, 2.0), r = fd::random_vec(rng, n), y(n), scale(n);
      auto loss = [&] {
        cpu::lrn_forward(y.data(), scale.data(), x.data(), N, c.C, S, p);
        return fd::dot(r, y);
      };
      loss();
      const Vec dx = fd::backward_adds(n, [&](double* d) {
        cpu::lrn_backward_input(d, r.data(), x.data(), y.data(), scale.data(), N, c.C, S, p);
      });
      fd::require_ok(fd::check(x, dx, loss), name);
    }
  }
}

TEST_CASE("LRN forward window follows ONNX: [c - floor((n-1)/2), c + ceil((n-1)/2)]", "[lrn]") {
  std::mt19937_64 rng(405);
  for (int size : {1, 2, 3, 4, 5, 6}) {
    const int C = 6;
    LrnParams p;
    p.size = size;
    p.alpha = 0.7f;
    p.beta = 0.6f;
    p.bias = 1.3f;
    const Vec x = fd::random_vec(rng, size_t(C), -2.0, 2.0);
    Vec y(static_cast<size_t>(C)), scale(static_cast<size_t>(C));
    cpu::lrn_forward(y.data(), scale.data(), x.data(), 1, C, 1, p);
    const int lo = (size - 1) / 2, hi = size / 2;  // floor and ceil of (size - 1) / 2
    for (int c = 0; c < C; ++c) {
      double sq = 0.0;
      for (int j = std::max(0, c - lo); j <= std::min(C - 1, c + hi); ++j) sq += x[size_t(j)] * x[size_t(j)];
      const double s = double(p.bias) + double(p.alpha) / size * sq;
      INFO("size " << size << " channel " << c);
      CHECK(scale[size_t(c)] == Approx(s).epsilon(1e-14));
      CHECK(y[size_t(c)] == Approx(x[size_t(c)] * std::pow(s, -double(p.beta))).epsilon(1e-14));
    }
  }
}

// ------------------------------------------------------------------------------------------------

TEST_CASE("Gemm input gradients match finite differences: transA/transB, alpha/beta, broadcast C",
          "[fd][gemm]") {
  std::mt19937_64 rng(505);
  const int M = 3, N = 4, K = 5;
  const std::vector<Shape> c_shapes = {{0}, {}, {1}, {N}, {1, N}, {M, 1}, {M, N}};  // {0}: no C
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (auto [alpha, beta] : {std::pair{1.0f, 1.0f}, std::pair{0.7f, -1.3f}}) {
        GemmParams p;
        p.trans_a = ta;
        p.trans_b = tb;
        p.alpha = alpha;
        p.beta = beta;
        for (const Shape& cs : c_shapes) {
          const bool has_c = !(cs.size() == 1 && cs[0] == 0);
          const std::string name = std::string("Gemm transA ") + (ta ? "1" : "0") + " transB " +
                                   (tb ? "1" : "0") +
                                   " alpha " + std::to_string(alpha) + " beta " + std::to_string(beta) +
                                   " C " + (has_c ? shape_str(cs) : "none");
          Vec a = fd::random_vec(rng, size_t(M) * K), b = fd::random_vec(rng, size_t(K) * N);
          const Vec c = fd::random_vec(rng, has_c ? numel(cs) : 1);
          const Vec r = fd::random_vec(rng, size_t(M) * N);
          Vec y(size_t(M) * N);
          auto loss = [&] {
            cpu::gemm_forward(y.data(), a.data(), b.data(), has_c ? c.data() : nullptr, has_c ? cs : Shape{},
                              M, N, K, p);
            return fd::dot(r, y);
          };
          // Forward against a naive reference (op(A)[i,k] read from the stored layout by hand).
          loss();
          for (int i = 0; i < M; ++i)
            for (int j = 0; j < N; ++j) {
              double s = 0.0;
              for (int k = 0; k < K; ++k)
                s += (ta ? a[size_t(k * M + i)] : a[size_t(i * K + k)]) *
                     (tb ? b[size_t(j * K + k)] : b[size_t(k * N + j)]);
              double bias = 0.0;
              if (has_c) {
                const bool rows = cs.size() == 2 && cs[0] == M, cols = !cs.empty() && cs.back() == N;
                bias = c[size_t((rows ? i : 0) * (cols ? N : 1) + (cols ? j : 0))];
              }
              INFO(name << " y(" << i << "," << j << ")");
              REQUIRE(y[size_t(i * N + j)] == Approx(double(alpha) * s + double(beta) * bias).epsilon(1e-13));
            }
          const auto d = fd::backward_adds({a.size(), b.size()}, [&](std::vector<double*>& g) {
            cpu::gemm_backward_input(g[0], g[1], r.data(), a.data(), b.data(), M, N, K, p);
          });
          fd::require_ok(fd::check(a, d[0], loss), name + " dA");
          fd::require_ok(fd::check(b, d[1], loss), name + " dB");
        }
      }
}

TEST_CASE("MatMul input gradients match finite differences: batched and 2-D", "[fd][matmul]") {
  std::mt19937_64 rng(606);
  struct MatMulCase {
    const char* name;
    int batch;
    bool b_batched;
    int M, N, K;
  };
  const std::vector<MatMulCase> cases = {
      {"batched (3,2,3) x (3,3,4)", 3, true, 2, 4, 3},
      {"batched A (3,2,3) x shared B (3,4)", 3, false, 2, 4, 3},
      {"2-D (4,5) x (5,2)", 1, false, 4, 2, 5},
  };
  for (const MatMulCase& c : cases) {
    SECTION(c.name) {
      Vec a = fd::random_vec(rng, size_t(c.batch) * c.M * c.K);
      Vec b = fd::random_vec(rng, size_t(c.b_batched ? c.batch : 1) * c.K * c.N);
      const Vec r = fd::random_vec(rng, size_t(c.batch) * c.M * c.N);
      Vec y(r.size());
      auto loss = [&] {
        cpu::matmul_forward(y.data(), a.data(), b.data(), c.batch, c.b_batched, c.M, c.N, c.K);
        return fd::dot(r, y);
      };
      const auto d = fd::backward_adds({a.size(), b.size()}, [&](std::vector<double*>& g) {
        cpu::matmul_backward_input(g[0], g[1], r.data(), a.data(), b.data(), c.batch, c.b_batched, c.M, c.N,
                                   c.K);
      });
      fd::require_ok(fd::check(a, d[0], loss), std::string("MatMul ") + c.name + " dA");
      fd::require_ok(fd::check(b, d[1], loss), std::string("MatMul ") + c.name + " dB");
    }
  }
}

// ------------------------------------------------------------------------------------------------

TEST_CASE("Broadcast Add/Sub/Mul/Div input gradients match finite differences", "[fd][binary]") {
  std::mt19937_64 rng(707);
  const std::vector<std::pair<Shape, Shape>> pairs = {
      {{2, 3, 4, 5}, {2, 3, 4, 5}},  // same shape
      {{2, 3, 4, 5}, {}},            // scalar (rank 0)
      {{1}, {2, 3, 4, 5}},           // scalar-like (1) on the left
      {{2, 3, 4, 5}, {1, 3, 1, 1}},  // per-channel
      {{2, 3, 4, 5}, {5}},           // row vector, lower rank
      {{1, 1, 1, 5}, {2, 3, 4, 5}},  // row vector on the left
      {{2, 1, 4, 1}, {1, 3, 1, 5}},  // both broadcast
      {{4, 1}, {3, 1, 5}},           // rank mismatch, both broadcast -> (3,4,5)
  };
  for (OpKind op : {OpKind::Add, OpKind::Sub, OpKind::Mul, OpKind::Div})
    for (const auto& [as, bs] : pairs) {
      const std::string name = std::string(op_name(op)) + " " + shape_str(as) + " with " + shape_str(bs);
      const Shape ys = broadcast_shape(as, bs);
      // Divisors of both signs, |b| >= 1.2: the truncation error of the central difference of a/b
      // in b is h^2 |a| / b^4 (fd_check.h), which stays under the tolerance there.
      Vec a = fd::random_vec(rng, numel(as)), b = fd::random_vec(rng, numel(bs), 1.2, 2.2);
      for (double& v : b)
        if (rng() % 2) v = -v;
      const Vec r = fd::random_vec(rng, numel(ys));
      Vec y(r.size());
      auto loss = [&] {
        cpu::binary_forward(y.data(), a.data(), b.data(), as, bs, ys, op);
        return fd::dot(r, y);
      };
      const auto d = fd::backward_adds({a.size(), b.size()}, [&](std::vector<double*>& g) {
        cpu::binary_backward_input(g[0], g[1], r.data(), a.data(), b.data(), as, bs, ys, op);
      });
      fd::require_ok(fd::check(a, d[0], loss), name + " dA");
      fd::require_ok(fd::check(b, d[1], loss), name + " dB");
    }
}

TEST_CASE("Unary elementwise input gradients match finite differences", "[fd][unary]") {
  std::mt19937_64 rng(808);
  struct UnaryCase {
    const char* name;
    OpKind op;
    double lo, hi;
    UnaryParams p;
  };
  auto pw = [](float e) {
    UnaryParams p;
    p.exponent = e;
    return p;
  };
  // Input ranges keep |f'''| small enough for the central difference (Log on [1,3], Pow -1.5 on
  // [1.5,3]); a wrong slope formula would miss by orders of magnitude more than the tolerance. For
  // x^3 the central difference is off by exactly h^2 r, under the tolerance since |r| < 1.
  UnaryParams clip;
  clip.min = -0.5f;
  clip.max = 0.4f;
  const std::vector<UnaryCase> cases = {
      {"Sigmoid", OpKind::Sigmoid, -4, 4, {}},   {"Tanh", OpKind::Tanh, -3, 3, {}},
      {"Softplus", OpKind::Softplus, -4, 4, {}}, {"Exp", OpKind::Exp, -2, 2, {}},
      {"Log", OpKind::Log, 1.0, 3, {}},          {"Sqrt", OpKind::Sqrt, 0.5, 3, {}},
      {"Neg", OpKind::Neg, -2, 2, {}},           {"Abs", OpKind::Abs, -1, 1, {}},
      {"Clip [-0.5, 0.4]", OpKind::Clip, -1, 1, clip}, {"Clip (no bounds)", OpKind::Clip, -2, 2, {}},
      {"Pow 2", OpKind::Pow, -2, 2, pw(2.0f)},   {"Pow 3", OpKind::Pow, -2, 2, pw(3.0f)},
      {"Pow 0.5", OpKind::Pow, 0.5, 3, pw(0.5f)}, {"Pow -1.5", OpKind::Pow, 1.5, 3, pw(-1.5f)},
      {"Pow 2.5", OpKind::Pow, 0.3, 3, pw(2.5f)},
  };
  for (const UnaryCase& c : cases) {
    SECTION(c.name) {
      Vec x = fd::random_vec(rng, 64, c.lo, c.hi);
      if (c.op == OpKind::Softplus)  // both sides of the y = x shortcut above 20
        for (double v : {25.0, -25.0, 19.5, 20.5, 40.0}) x.push_back(v);
      if (c.op == OpKind::Abs || c.op == OpKind::Clip)  // points exactly at the kinks: must be skipped
        for (double v : {0.0, -0.5, 0.4}) x.push_back(v);
      const size_t n = x.size();
      const Vec r = fd::random_vec(rng, n);
      Vec y(n);
      auto loss = [&] {
        cpu::unary_forward(y.data(), x.data(), int64_t(n), c.op, c.p);
        return fd::dot(r, y);
      };
      loss();
      const Vec dx = fd::backward_adds(n, [&](double* d) {
        cpu::unary_backward_input(d, r.data(), x.data(), y.data(), int64_t(n), c.op, c.p);
      });
      auto near_kink = [&](size_t i) {
        if (c.op == OpKind::Abs) return std::fabs(x[i]) < kStep;
        if (c.op == OpKind::Clip)
          return std::fabs(x[i] - double(c.p.min)) < kStep || std::fabs(x[i] - double(c.p.max)) < kStep;
        return false;
      };
      fd::require_ok(fd::check(x, dx, loss, near_kink), std::string("Unary ") + c.name);
    }
  }
}

// ------------------------------------------------------------------------------------------------

TEST_CASE("Relu gradient rule matches finite differences", "[fd][relu]") {
  std::mt19937_64 rng(909);
  Vec x = fd::random_vec(rng, 200);
  x.push_back(0.0);  // exactly at the kink: must be skipped
  const size_t n = x.size();
  const Vec r = fd::random_vec(rng, n);
  Vec y(n);
  auto loss = [&] {
    cpu::relu_forward(y.data(), x.data(), int64_t(n));
    return fd::dot(r, y);
  };
  const Vec dx = fd::backward_adds(n, [&](double* d) {
    cpu::relu_backward_input(d, r.data(), x.data(), int64_t(n), BackwardRule::gradient);
  });
  fd::require_ok(fd::check(x, dx, loss, [&](size_t i) { return std::fabs(x[i]) < kStep; }),
                 "Relu (gradient rule)");
}

TEST_CASE("Relu deconvnet and guided rules follow their definitions element-wise", "[relu]") {
  std::mt19937_64 rng(910);
  // Every sign combination of x and g_out, including exact zeros.
  Vec x = fd::random_vec(rng, 100), g = fd::random_vec(rng, 100);
  for (double xv : {-1.0, 0.0, 1.0})
    for (double gv : {-1.0, 0.0, 1.0}) {
      x.push_back(xv);
      g.push_back(gv);
    }
  const size_t n = x.size();
  auto run = [&](BackwardRule rule) {
    return fd::backward_adds(n, [&](double* d) {
      cpu::relu_backward_input(d, g.data(), x.data(), int64_t(n), rule);
    });
  };
  const Vec grad = run(BackwardRule::gradient), deconv = run(BackwardRule::deconvnet),
            guided = run(BackwardRule::guided);
  for (size_t i = 0; i < n; ++i) {
    INFO("x " << x[i] << " g_out " << g[i]);
    CHECK(grad[i] == g[i] * (x[i] > 0 ? 1.0 : 0.0));                        // g_out * [x > 0]
    CHECK(deconv[i] == g[i] * (g[i] > 0 ? 1.0 : 0.0));                      // g_out * [g_out > 0]
    CHECK(guided[i] == g[i] * (x[i] > 0 ? 1.0 : 0.0) * (g[i] > 0 ? 1.0 : 0.0));  // both
    CHECK(deconv[i] >= 0.0);  // DeconvNet never passes a negative signal, whatever x was
  }
}

TEST_CASE("Relu: the three rules agree when every x > 0 and every g_out > 0", "[relu]") {
  std::mt19937_64 rng(911);
  const Vec x = fd::random_vec(rng, 100, 0.01, 2.0), g = fd::random_vec(rng, 100, 0.01, 2.0);
  auto run = [&](BackwardRule rule) {
    Vec d(100, 0.0);
    cpu::relu_backward_input(d.data(), g.data(), x.data(), 100, rule);
    return d;
  };
  const Vec grad = run(BackwardRule::gradient);
  CHECK(grad == g);
  CHECK(run(BackwardRule::deconvnet) == grad);
  CHECK(run(BackwardRule::guided) == grad);
}

// ------------------------------------------------------------------------------------------------

TEST_CASE("Max (n-ary) input gradients match finite differences", "[fd][max]") {
  std::mt19937_64 rng(1001);
  const int k = 3;
  const size_t n = 60;
  std::vector<Vec> xs(k);
  for (Vec& v : xs) v = fd::random_vec(rng, n);
  const Vec r = fd::random_vec(rng, n);
  Vec y(n);
  auto ptrs = [&] {
    std::vector<const double*> p;
    for (const Vec& v : xs) p.push_back(v.data());
    return p;
  };
  auto loss = [&] {
    const auto p = ptrs();
    cpu::max_forward(y.data(), p.data(), k, int64_t(n));
    return fd::dot(r, y);
  };
  const auto d = fd::backward_adds({n, n, n}, [&](std::vector<double*>& g) {
    const auto p = ptrs();
    cpu::max_backward_input(g.data(), r.data(), p.data(), k, int64_t(n));
  });
  // Kink guard: position i is skipped for every input when its top two values are within 2h.
  auto near_tie = [&](size_t i) {
    Vec v;
    for (const Vec& x : xs) v.push_back(x[i]);
    std::sort(v.begin(), v.end(), std::greater<>());
    return v[0] - v[1] < 2.0 * kStep;
  };
  for (int t = 0; t < k; ++t)
    fd::require_ok(fd::check(xs[size_t(t)], d[size_t(t)], loss, near_tie),
                   "Max of 3, input " + std::to_string(t));
}

TEST_CASE("Max (n-ary): ties go to the first input holding the maximum", "[max]") {
  const Vec x0 = {1, 0, 2, 5}, x1 = {1, 3, 2, 4}, x2 = {1, 3, 0, 5};
  const std::vector<const double*> xs = {x0.data(), x1.data(), x2.data()};
  const Vec dy = {1, 2, 3, 4};
  const auto d = fd::backward_adds({4, 4, 4}, [&](std::vector<double*>& g) {
    cpu::max_backward_input(g.data(), dy.data(), xs.data(), 3, 4);
  });
  CHECK(d[0] == Vec{1, 0, 3, 4});  // three-way tie -> input 0; tie of 0 and 2 -> input 0
  CHECK(d[1] == Vec{0, 2, 0, 0});  // tie of inputs 1 and 2 -> input 1
  CHECK(d[2] == Vec{0, 0, 0, 0});
}

// ------------------------------------------------------------------------------------------------

TEST_CASE("Softmax input gradient matches finite differences on several axes", "[fd][softmax]") {
  std::mt19937_64 rng(1101);
  struct SoftmaxCase {
    const char* name;
    int64_t outer, L, inner;
  };
  const std::vector<SoftmaxCase> cases = {
      {"last axis of (6,5): outer 6, L 5, inner 1", 6, 5, 1},
      {"axis 0 of (4,6): outer 1, L 4, inner 6", 1, 4, 6},
      {"axis 1 of (2,3,4): outer 2, L 3, inner 4", 2, 3, 4},
      {"length-1 axis: gradient 0", 3, 1, 2},
  };
  for (const SoftmaxCase& c : cases) {
    SECTION(c.name) {
      const size_t n = size_t(c.outer * c.L * c.inner);
      Vec x = fd::random_vec(rng, n, -3.0, 3.0);
      const Vec r = fd::random_vec(rng, n);
      Vec y(n);
      auto loss = [&] {
        cpu::softmax_forward(y.data(), x.data(), c.outer, c.L, c.inner);
        return fd::dot(r, y);
      };
      loss();
      const Vec dx = fd::backward_adds(n, [&](double* d) {
        cpu::softmax_backward_input(d, r.data(), y.data(), c.outer, c.L, c.inner);
      });
      fd::require_ok(fd::check(x, dx, loss), std::string("Softmax ") + c.name);
    }
  }
}

TEST_CASE("BatchNormalization input gradient matches finite differences", "[fd][batchnorm]") {
  std::mt19937_64 rng(1201);
  const int N = 2, C = 3;
  const int64_t S = 10;
  const size_t n = size_t(N) * C * S;
  Vec x = fd::random_vec(rng, n, -2.0, 2.0);
  const Vec gamma = fd::random_vec(rng, C, -1.5, 1.5), beta = fd::random_vec(rng, C),
            mean = fd::random_vec(rng, C), var = fd::random_vec(rng, C, 0.2, 2.0), r = fd::random_vec(rng, n);
  const double eps = 1e-5;
  Vec y(n);
  auto loss = [&] {
    cpu::batchnorm_forward(y.data(), x.data(), gamma.data(), beta.data(), mean.data(), var.data(), N, C, S,
                           eps);
    return fd::dot(r, y);
  };
  const Vec dx = fd::backward_adds(n, [&](double* d) {
    cpu::batchnorm_backward_input(d, r.data(), gamma.data(), var.data(), N, C, S, eps);
  });
  fd::require_ok(fd::check(x, dx, loss), "BatchNormalization (2,3,10), inference statistics");
}

TEST_CASE("Concat input gradients match finite differences on axes 0..3 with 3 inputs", "[fd][concat]") {
  std::mt19937_64 rng(1301);
  const Shape base = {2, 3, 4, 5};
  const std::array<int64_t, 3> lengths = {1, 2, 3};
  for (int axis = 0; axis < 4; ++axis) {
    SECTION("axis " + std::to_string(axis)) {
      std::vector<Vec> xs;
      Shape ys = base;
      ys[size_t(axis)] = lengths[0] + lengths[1] + lengths[2];
      for (int64_t len : lengths) {
        Shape s = base;
        s[size_t(axis)] = len;
        xs.push_back(fd::random_vec(rng, numel(s)));
      }
      const AxisView v = axis_view(ys, axis);
      const Vec r = fd::random_vec(rng, numel(ys));
      Vec y(r.size());
      auto loss = [&] {
        const std::vector<const double*> p = {xs[0].data(), xs[1].data(), xs[2].data()};
        cpu::concat_forward(y.data(), p.data(), lengths.data(), 3, v.outer, v.inner);
        return fd::dot(r, y);
      };
      const std::vector<size_t> sizes = {xs[0].size(), xs[1].size(), xs[2].size()};
      const auto d = fd::backward_adds(sizes, [&](std::vector<double*>& g) {
        cpu::concat_backward_input(g.data(), r.data(), lengths.data(), 3, v.outer, v.inner);
      });
      for (size_t t = 0; t < 3; ++t)
        fd::require_ok(fd::check(xs[t], d[t], loss), "Concat axis " + std::to_string(axis) + " of " +
                                                         shape_str(ys) + ", input " + std::to_string(t));
      // An input without a gradient buffer (nullptr) is skipped; the others are unchanged.
      std::vector<Vec> partial = {Vec(xs[0].size(), 0.0), Vec(xs[2].size(), 0.0)};
      std::vector<double*> g = {partial[0].data(), nullptr, partial[1].data()};
      cpu::concat_backward_input(g.data(), r.data(), lengths.data(), 3, v.outer, v.inner);
      CHECK(partial[0] == d[0]);
      CHECK(partial[1] == d[2]);
    }
  }
}

// ------------------------------------------------------------------------------------------------

TEST_CASE("Kink guards: planted near-kinks fail without the guard and pass with it", "[fd][kinks]") {
  // Random inputs rarely land within h of a kink, so the guards above seldom fire. Here every few
  // coordinates are placed within h of one: central differences there straddle the kink and must
  // disagree with the one-sided analytic value, and the guard must skip exactly those.
  std::mt19937_64 rng(1501);
  SECTION("MaxPool 2x2 stride 2: runner-up planted 4e-4 below the maximum in every third window") {
    PoolParams p;
    p.window = pool_win({2, 2}, {2, 2}, {0, 0, 0, 0});
    const PoolGeometry g = pool_geometry(p, {1, 2, 6, 6});
    Vec x = fd::random_vec(rng, 72);
    int planted = 0;
    for (int plane = 0; plane < 2; ++plane)
      for (int oy = 0; oy < 3; ++oy)
        for (int ox = 0; ox < 3; ++ox) {
          if ((plane * 9 + oy * 3 + ox) % 3) continue;
          std::vector<size_t> m;
          for (int ky = 0; ky < 2; ++ky)
            for (int kx = 0; kx < 2; ++kx) m.push_back(size_t(plane * 36 + (2 * oy + ky) * 6 + 2 * ox + kx));
          std::sort(m.begin(), m.end(), [&](size_t i, size_t j) { return x[i] > x[j]; });
          x[m[1]] = x[m[0]] - 4e-4;
          ++planted;
        }
    Vec r = fd::random_vec(rng, 18, 0.5, 1.0), y(18);
    std::vector<int32_t> sw(18);
    auto loss = [&] {
      cpu::maxpool2d_forward(y.data(), sw.data(), x.data(), g);
      return fd::dot(r, y);
    };
    loss();
    Vec dx(72, 0.0);
    cpu::maxpool2d_backward_input(dx.data(), r.data(), sw.data(), g);
    CHECK(fd::check(x, dx, loss).failed >= planted);  // the two near-tied members of each window
    const std::vector<bool> skip = maxpool_near_ties(x, g);
    const fd::Report guarded = fd::check(x, dx, loss, [&](size_t i) { return bool(skip[i]); });
    CHECK(guarded.skipped == 4 * planted);
    fd::require_ok(guarded, "MaxPool with planted near-ties", 0.6);
  }
  SECTION("Relu: inputs planted within h of zero") {
    Vec x = fd::random_vec(rng, 100);
    for (size_t i = 0; i < x.size(); i += 5) x[i] = (i % 2 ? 1.0 : -1.0) * (2e-4 + 7e-4 * double(i) / 100.0);
    const Vec r = fd::random_vec(rng, 100, 0.5, 1.0);
    Vec y(100);
    auto loss = [&] {
      cpu::relu_forward(y.data(), x.data(), 100);
      return fd::dot(r, y);
    };
    Vec dx(100, 0.0);
    cpu::relu_backward_input(dx.data(), r.data(), x.data(), 100, BackwardRule::gradient);
    CHECK(fd::check(x, dx, loss).failed == 20);
    const fd::Report guarded = fd::check(x, dx, loss, [&](size_t i) { return std::fabs(x[i]) < kStep; });
    CHECK(guarded.skipped == 20);
    fd::require_ok(guarded, "Relu with planted near-zero inputs");
  }
  SECTION("Max of 3: input 1 planted 3e-4 above the maximum at every fourth position") {
    std::vector<Vec> xs = {fd::random_vec(rng, 40), fd::random_vec(rng, 40), fd::random_vec(rng, 40)};
    for (size_t i = 0; i < 40; i += 4) xs[1][i] = std::max(xs[0][i], xs[2][i]) + 3e-4;
    const Vec r = fd::random_vec(rng, 40, 0.5, 1.0);
    Vec y(40);
    auto loss = [&] {
      const std::vector<const double*> p = {xs[0].data(), xs[1].data(), xs[2].data()};
      cpu::max_forward(y.data(), p.data(), 3, 40);
      return fd::dot(r, y);
    };
    std::vector<Vec> d(3, Vec(40, 0.0));
    {
      const std::vector<const double*> p = {xs[0].data(), xs[1].data(), xs[2].data()};
      std::vector<double*> g = {d[0].data(), d[1].data(), d[2].data()};
      cpu::max_backward_input(g.data(), r.data(), p.data(), 3, 40);
    }
    CHECK(fd::check(xs[1], d[1], loss).failed == 10);
    auto near_tie = [&](size_t i) {
      Vec v = {xs[0][i], xs[1][i], xs[2][i]};
      std::sort(v.begin(), v.end(), std::greater<>());
      return v[0] - v[1] < 2.0 * kStep;
    };
    const fd::Report guarded = fd::check(xs[1], d[1], loss, near_tie);
    CHECK(guarded.skipped >= 10);
    fd::require_ok(guarded, "Max of 3 with planted near-ties, input 1");
  }
}

// ------------------------------------------------------------------------------------------------

TEST_CASE("A small net composed of the kernels: gradient of a class score matches finite differences",
          "[fd][net]") {
  // x (1,3,9,9) -> Conv 3x3 pad 1 (4 filters) -> Relu -> MaxPool 3x3 s2 ceil (4x4) -> LRN 3
  //   -> flatten (64) -> Gemm transB with W (5,64) + bias (5) -> scores (5); L = r . scores.
  // Kink guard: skip a coordinate when perturbing it by +-h flips a ReLU mask or moves a switch.
  std::mt19937_64 rng(1401);
  ConvParams cp;
  cp.window.pads = {1, 1, 1, 1};
  const ConvGeometry cg = conv_geometry(cp, {1, 3, 9, 9}, {4, 3, 3, 3});
  PoolParams pp;
  pp.window = pool_win({3, 3}, {2, 2}, {0, 0, 0, 0});
  pp.ceil_mode = true;
  const PoolGeometry pg = pool_geometry(pp, {1, 4, 9, 9});
  REQUIRE(pg.OH == 4);
  LrnParams lp;
  lp.size = 3;
  lp.alpha = 0.5f;
  GemmParams gp;
  gp.trans_b = true;
  const int F = 4 * 4 * 4, classes = 5;
  Vec x = fd::random_vec(rng, 243);
  const Vec w = fd::random_vec(rng, 108, -0.5, 0.5), cb = fd::random_vec(rng, 4, -0.2, 0.2);
  const Vec fw = fd::random_vec(rng, size_t(classes * F)), fb = fd::random_vec(rng, size_t(classes));
  const Vec r = fd::random_vec(rng, size_t(classes));
  Vec c1(324), a1(324), p1(64), l1(64), sc(64), s(static_cast<size_t>(classes));
  std::vector<int32_t> sw(64);
  auto forward = [&] {
    cpu::conv2d_forward(c1.data(), x.data(), w.data(), cb.data(), cg);
    cpu::relu_forward(a1.data(), c1.data(), 324);
    cpu::maxpool2d_forward(p1.data(), sw.data(), a1.data(), pg);
    cpu::lrn_forward(l1.data(), sc.data(), p1.data(), 1, 4, 16, lp);
    cpu::gemm_forward(s.data(), l1.data(), fw.data(), fb.data(), Shape{classes}, 1, classes, F, gp);
    return fd::dot(r, s);
  };
  auto structure = [&] {  // the ReLU mask and the switches: what the backward pass routes through
    forward();
    std::vector<int32_t> st(sw);
    for (double v : c1) st.push_back(v > 0.0);
    return st;
  };
  const std::vector<int32_t> base = structure();
  // Backward with the gradient rule, each stage into fresh buffers.
  Vec dl1(64, 0.0), dp1(64, 0.0), da1(324, 0.0), dc1(324, 0.0), dx(243, 0.0);
  cpu::gemm_backward_input(dl1.data(), static_cast<double*>(nullptr), r.data(), l1.data(), fw.data(), 1,
                           classes, F, gp);
  cpu::lrn_backward_input(dp1.data(), dl1.data(), p1.data(), l1.data(), sc.data(), 1, 4, 16, lp);
  cpu::maxpool2d_backward_input(da1.data(), dp1.data(), sw.data(), pg);
  cpu::relu_backward_input(dc1.data(), da1.data(), c1.data(), 324, BackwardRule::gradient);
  cpu::conv2d_backward_input(dx.data(), dc1.data(), w.data(), cg);
  auto changes_structure = [&](size_t i) {
    const double x0 = x[i];
    bool changed = false;
    for (double h : {kStep, -kStep}) {
      x[i] = x0 + h;
      changed = changed || structure() != base;
    }
    x[i] = x0;
    return changed;
  };
  fd::require_ok(fd::check(x, dx, forward, changes_structure),
                 "Net conv-relu-maxpool-lrn-gemm, d score / d x");
}
