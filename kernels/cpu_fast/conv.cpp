// Fast convolution: forward as Y_g (Mg x P) = W_g (Mg x Kg) * col_g (Kg x P) per image and group,
// backward-data as dcol_g = W_g^T dY_g followed by col2im-add, where Kg = C/group * KH * KW and
// P = OH * OW. Pixels are processed in chunks whose operands stay in the last-level cache:
//  - forward: im2col writes the chunk straight into packed GEMM panels (gemm.h), so the column
//    matrix is never materialised for the whole image and never copied twice; a 1x1 stride-1
//    unpadded convolution packs x itself (no im2col);
//  - backward: dY's chunk is packed, dcol (Kg x chunk) computed, then scattered back into dx by
//    input channel (each thread owns whole dx planes: no races, no atomics). A 1x1 stride-1 unpadded
//    convolution accumulates W^T dY straight into dx.
// A 1x1 stride-1 convolution with padding (SqueezeNet's conv10) runs both ways over the input
// pixels only: the output ring is the bias, and its gradient reaches no input.
// The bias is added by the GEMM's store (no extra pass). 3x3 stride-1 layers on large planes go to
// Winograd F(2x2,3x3) instead (winograd.cpp).
#include <algorithm>
#include <atomic>
#include <cstring>

#include <omp.h>

#include "kernels/cpu_fast/gemm.h"
#include "kernels/cpu_fast/ops.h"
#include "kernels/cpu_fast/rectifier.h"
#include "kernels/cpu_fast/winograd.h"

namespace deepinside::cpu_fast {

namespace {

std::atomic<int64_t> chunk_floats{int64_t(2) << 20};  // ~8 MB of packed operand per chunk

bool is_pointwise(const ConvGeometry& g) {
  return g.KH == 1 && g.KW == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_t == 0 && g.pad_l == 0 &&
         g.OH == g.H && g.OW == g.W;
}

// A 1x1 stride-1 convolution whose zero padding grows the plane (SqueezeNet's class-score conv10:
// 512 -> 1000 channels, 14x14 in, pad 1, 16x16 out): the output ring reads only padding, so it is
// the bias, and the interior is the pointwise GEMM over the input pixels (196 columns, not 256).
bool is_padded_pointwise(const ConvGeometry& g) {
  return g.KH == 1 && g.KW == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_t >= 0 && g.pad_l >= 0 &&
         g.pad_t + g.H <= g.OH && g.pad_l + g.W <= g.OW && !is_pointwise(g);
}

// A 1x1 convolution's backward GEMM (dx_g += W_g^T dY_g, Cg rows) reads a dense dY in place instead
// of packing it when Cg <= 64 (SqueezeNet's expand1x1 layers: 16-64 input channels; about 15% off
// their backward). Forward, reading x in place (K = 128-512 rows 3-12 KB apart) was slower than
// packing it for the squeezes, so the forward always packs.
bool reads_b_in_place(int gemm_rows) { return gemm_rows <= 64; }

// Pixels per chunk: whole panels, the chunks of one image as even as possible.
int chunk_pixels(int64_t rows, int64_t pixels) {
  const int64_t total_panels = panels_for(pixels);
  const int64_t max_panels = std::max<int64_t>(1, chunk_floats / (std::max<int64_t>(rows, 1) * kNr));
  const int64_t chunks = (total_panels + max_panels - 1) / max_panels;
  return int((total_panels + chunks - 1) / chunks) * kNr;
}

std::pair<int, int> split(int n, int parts, int i) {
  const int base = n / parts, extra = n % parts;
  const int begin = i * base + std::min(i, extra);
  return {begin, begin + base + (i < extra ? 1 : 0)};
}

// One packed panel of the column matrix: rows k = (c, ky, kx) of channel group xg (Cg,H,W), columns
// = output pixels [p0, p0 + np) (np <= kNr), zero past np and in the padding.
void im2col_panel(float* __restrict dst, const float* __restrict xg, const ConvGeometry& g, int cg, int p0,
                  int np) {
  const int khw = g.KH * g.KW;
  for (int c = 0; c < cg; ++c) {
    const float* xc = xg + int64_t(c) * g.H * g.W;
    for (int ky = 0; ky < g.KH; ++ky)
      for (int kx = 0; kx < g.KW; ++kx) {
        float* d = dst + (int64_t(c) * khw + ky * g.KW + kx) * kNr;
        int oy = p0 / g.OW, ox = p0 % g.OW, j = 0;
        while (j < np) {
          const int run = std::min(np - j, g.OW - ox);
          const int iy = oy * g.stride_h - g.pad_t + ky * g.dil_h;
          if (iy < 0 || iy >= g.H) {
            for (int t = 0; t < run; ++t) d[j + t] = 0.0f;
          } else {
            const float* row = xc + int64_t(iy) * g.W;
            const int ix0 = ox * g.stride_w - g.pad_l + kx * g.dil_w;
            // Valid t: 0 <= ix0 + t * stride < W.
            int t0 = ix0 >= 0 ? 0 : (-ix0 + g.stride_w - 1) / g.stride_w;
            int t1 = ix0 >= g.W ? 0 : (g.W - ix0 + g.stride_w - 1) / g.stride_w;
            t0 = std::min(t0, run);
            t1 = std::clamp(t1, t0, run);
            float* dj = d + j;
            for (int t = 0; t < t0; ++t) dj[t] = 0.0f;
            if (g.stride_w == 1) {  // a short contiguous run: an inline loop, no library call
              const float* src = row + ix0;
              for (int t = t0; t < t1; ++t) dj[t] = src[t];
            } else {
              for (int t = t0; t < t1; ++t) dj[t] = row[ix0 + t * g.stride_w];
            }
            for (int t = t1; t < run; ++t) dj[t] = 0.0f;
          }
          j += run;
          ox = 0;
          ++oy;
        }
        for (; j < kNr; ++j) d[j] = 0.0f;
      }
  }
}

// dx_c (H,W) += the rows (c, ky, kx) of dcol (Kg x np, row stride ld) for output pixels [p0, p0 + np),
// writing only the input rows [r0, r1) (threads own disjoint bands of rows, or whole channels).
void col2im_channel(float* __restrict dxc, const float* __restrict dcol_c, int64_t ld, const ConvGeometry& g,
                    int p0, int np, int r0, int r1) {
  for (int ky = 0; ky < g.KH; ++ky)
    for (int kx = 0; kx < g.KW; ++kx) {
      const float* s = dcol_c + int64_t(ky * g.KW + kx) * ld;
      int oy = p0 / g.OW, ox = p0 % g.OW, j = 0;
      while (j < np) {
        const int run = std::min(np - j, g.OW - ox);
        const int iy = oy * g.stride_h - g.pad_t + ky * g.dil_h;
        if (iy >= r0 && iy < r1) {
          float* row = dxc + int64_t(iy) * g.W;
          const int ix0 = ox * g.stride_w - g.pad_l + kx * g.dil_w;
          int t0 = ix0 >= 0 ? 0 : (-ix0 + g.stride_w - 1) / g.stride_w;
          int t1 = ix0 >= g.W ? 0 : (g.W - ix0 + g.stride_w - 1) / g.stride_w;
          t0 = std::min(t0, run);
          t1 = std::clamp(t1, t0, run);
          const float* sj = s + j;
          if (g.stride_w == 1) {
            float* r = row + ix0;
            for (int t = t0; t < t1; ++t) r[t] += sj[t];
          } else {
            for (int t = t0; t < t1; ++t) row[ix0 + t * g.stride_w] += sj[t];
          }
        }
        j += run;
        ox = 0;
        ++oy;
      }
    }
}

struct Sizes {
  int cg, mg, kg;
  int64_t pixels, in_plane;
};
Sizes sizes_of(const ConvGeometry& g) {
  const int cg = g.C / g.group;
  return {cg, g.M / g.group, cg * g.KH * g.KW, int64_t(g.OH) * g.OW, int64_t(g.H) * g.W};
}

// The forward product of group grp over cn output columns: C (Mg x cn) = W_g (Mg x Kg) * B (Kg x cn),
// B packed at `packed`; the caller sets C, the bias and the fused Relu.
GemmArgs forward_product(const float* w, const Sizes& s, int grp, int cn, const float* packed, int64_t panel_stride) {
  GemmArgs ga;
  ga.M = s.mg;
  ga.N = cn;
  ga.K = s.kg;
  ga.a = w + int64_t(grp) * s.mg * s.kg;
  ga.a_rs = s.kg;
  ga.a_cs = 1;
  ga.b_packed = packed;
  ga.panel_stride = panel_stride;
  return ga;
}

// The backward-data product of group grp: C (Kg x cn) = W_g^T (Kg x Mg) * dY (Mg x cn), reduced over
// the n_active output channels listed in `active` (all of them when n_active == Mg), dY packed at
// `packed` in that order; the caller sets C.
GemmArgs backward_product(const float* w, const Sizes& s, int grp, int cn, int n_active, const int32_t* active,
                          const float* packed, int64_t panel_stride) {
  GemmArgs ga;
  ga.M = s.kg;
  ga.N = cn;
  ga.K = n_active;
  ga.a = w + int64_t(grp) * s.mg * s.kg;
  ga.a_rs = 1;
  ga.a_cs = s.kg;
  ga.k_index = n_active < s.mg ? active : nullptr;
  ga.b_packed = packed;
  ga.panel_stride = panel_stride;
  return ga;
}

}  // namespace

int thread_count() { return omp_get_max_threads(); }

int64_t conv_chunk_floats() { return chunk_floats; }
void set_conv_chunk_floats(int64_t floats) { chunk_floats = std::max<int64_t>(1, floats); }

int64_t conv_workspace_floats(const ConvGeometry& g) {
  const Sizes s = sizes_of(g);
  const int64_t apack = int64_t(thread_count()) * kApackFloats;
  // forward: packed column chunk (Kg rows)
  const int fwd_chunk = chunk_pixels(s.kg, s.pixels);
  const int64_t fwd = panels_for(fwd_chunk) * s.kg * kNr;
  // backward: packed dY chunk (Mg rows) + dcol (Kg x chunk)
  const int bwd_chunk = chunk_pixels(std::max(s.kg, s.mg), s.pixels);
  const int64_t bwd = panels_for(bwd_chunk) * s.mg * kNr + (is_pointwise(g) ? 0 : int64_t(s.kg) * bwd_chunk) +
                      s.mg;  // + the active output channels (int32)
  int64_t direct = apack + std::max(fwd, bwd);
  if (is_padded_pointwise(g)) {  // forward: packed input chunk + its (Mg x chunk) products before placing them
    const int chunk = chunk_pixels(std::max(s.kg, s.mg), s.in_plane);
    direct = std::max(direct, apack + panels_for(chunk) * s.kg * kNr + int64_t(s.mg) * chunk);
    // backward: packed interior of dY's chunk (Mg rows) + the active output channels (int32)
    direct = std::max(direct, apack + panels_for(chunk) * s.mg * kNr + s.mg);
  }
  return winograd_applies(g) ? std::max(direct, winograd_workspace_floats(g)) : direct;
}

namespace {

// y_m's plane (OH,OW) outside the interior rows [pad_t, pad_t + H) x columns [pad_l, pad_l + W) = value.
void fill_ring(float* ym, const ConvGeometry& g, float value) {
  for (int oy = 0; oy < g.OH; ++oy) {
    float* row = ym + int64_t(oy) * g.OW;
    if (oy < g.pad_t || oy >= g.pad_t + g.H) {
      std::fill(row, row + g.OW, value);
    } else {
      std::fill(row, row + g.pad_l, value);
      std::fill(row + g.pad_l + g.W, row + g.OW, value);
    }
  }
}

// is_padded_pointwise: per chunk of input pixels, Y_int (Mg x cn) = W_g x_chunk + b into the
// workspace, then each thread copies whole output planes' rows into place (and, on the first
// chunk, writes the bias ring).
void padded_pointwise_forward(float* y, const float* x, const float* w, const float* b, const ConvGeometry& g,
                              float* ws, bool relu) {
  const Sizes s = sizes_of(g);
  const int threads = thread_count();
  float* apack = ws;
  float* packed = ws + int64_t(threads) * kApackFloats;
  const int chunk = chunk_pixels(std::max(s.kg, s.mg), s.in_plane);
  const int64_t panel_stride = int64_t(s.kg) * kNr;
  float* interior = packed + panels_for(chunk) * panel_stride;
  for (int n = 0; n < g.N; ++n)
    for (int grp = 0; grp < g.group; ++grp) {
      const float* xg = x + (int64_t(n) * g.C + int64_t(grp) * s.cg) * s.in_plane;
      float* yg = y + (int64_t(n) * g.M + int64_t(grp) * s.mg) * s.pixels;
      const float* bg = b ? b + int64_t(grp) * s.mg : nullptr;
      for (int64_t c0 = 0; c0 < s.in_plane; c0 += chunk) {
        const int cn = int(std::min<int64_t>(chunk, s.in_plane - c0));
        GemmArgs ga = forward_product(w, s, grp, cn, packed, panel_stride);
        ga.c = interior;
        ga.ldc = cn;
        ga.bias = bg;
        ga.relu = relu;
#pragma omp parallel num_threads(threads)
        {
          const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
          const auto [q0, q1] = split(int(panels_for(cn)), nt, tid);
          pack_b(packed, panel_stride, xg + c0, s.in_plane, 1, s.kg, cn, q0, q1);
#pragma omp barrier
          const GemmPart part = gemm_partition(ga, tid, nt);
          gemm_range(ga, part.m0, part.m1, part.p0, part.p1, apack + int64_t(tid) * kApackFloats);
#pragma omp barrier
          const auto [m0, m1] = split(s.mg, nt, tid);
          for (int m = m0; m < m1; ++m) {
            float* ym = yg + int64_t(m) * s.pixels;
            const float ring = bg ? bg[m] : 0.0f;
            if (c0 == 0) fill_ring(ym, g, relu && !(ring > 0.0f) ? 0.0f : ring);
            const float* src = interior + int64_t(m) * cn;
            for (int j = 0; j < cn;) {  // input pixel c0 + j = (iy, ix) -> output (iy + pad_t, ix + pad_l)
              const int iy = int((c0 + j) / g.W), ix = int((c0 + j) % g.W);
              const int run = std::min(cn - j, g.W - ix);
              std::memcpy(ym + int64_t(iy + g.pad_t) * g.OW + g.pad_l + ix, src + j, sizeof(float) * run);
              j += run;
            }
          }
        }
      }
    }
}

}  // namespace

void conv2d_forward(float* y, const float* x, const float* w, const float* b, const ConvGeometry& g, float* ws,
                    const float* winograd_u, bool fused_relu) {
  if (winograd_applies(g)) return winograd_forward(y, x, w, winograd_u, b, g, ws, fused_relu);
  if (is_padded_pointwise(g)) return padded_pointwise_forward(y, x, w, b, g, ws, fused_relu);
  const Sizes s = sizes_of(g);
  const int threads = thread_count();
  float* apack = ws;
  float* packed = ws + int64_t(threads) * kApackFloats;
  const int chunk = chunk_pixels(s.kg, s.pixels);
  const int64_t panel_stride = int64_t(s.kg) * kNr;
  const bool pointwise = is_pointwise(g);
  for (int n = 0; n < g.N; ++n)
    for (int grp = 0; grp < g.group; ++grp) {
      const float* xg = x + (int64_t(n) * g.C + int64_t(grp) * s.cg) * s.in_plane;
      for (int64_t c0 = 0; c0 < s.pixels; c0 += chunk) {
        const int cn = int(std::min<int64_t>(chunk, s.pixels - c0));
        const int panels = int(panels_for(cn));
        GemmArgs ga = forward_product(w, s, grp, cn, packed, panel_stride);
        ga.c = y + (int64_t(n) * g.M + int64_t(grp) * s.mg) * s.pixels + c0;
        ga.ldc = s.pixels;
        ga.bias = b ? b + int64_t(grp) * s.mg : nullptr;
        ga.relu = fused_relu;
#pragma omp parallel num_threads(threads)
        {
          const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
          const auto [q0, q1] = split(panels, nt, tid);
          if (pointwise) {
            pack_b(packed, panel_stride, xg + c0, s.in_plane, 1, s.kg, cn, q0, q1);
          } else {
            for (int q = q0; q < q1; ++q)
              im2col_panel(packed + q * panel_stride, xg, g, s.cg, int(c0) + q * kNr,
                           std::min(kNr, cn - q * kNr));
          }
#pragma omp barrier
          const GemmPart part = gemm_partition(ga, tid, nt);
          gemm_range(ga, part.m0, part.m1, part.p0, part.p1, apack + int64_t(tid) * kApackFloats);
        }
      }
    }
}

namespace {

// Writes the output channels m < mg whose plane of dy (mg, pixels) holds a non-zero (or NaN) value
// into active; returns how many. Tested 64 values at a time (a vectorised test, one branch).
int active_channels(int32_t* active, const float* dy, int mg, int64_t pixels) {
  constexpr int64_t kBlock = 64;
  int n_active = 0;
  for (int m = 0; m < mg; ++m) {
    const float* plane = dy + int64_t(m) * pixels;
    bool any = false;
    for (int64_t i0 = 0; i0 < pixels && !any; i0 += kBlock) {
      const int64_t i1 = std::min(pixels, i0 + kBlock);
      int nonzero = 0;
#pragma omp simd reduction(| : nonzero)
      for (int64_t i = i0; i < i1; ++i) nonzero |= plane[i] != 0.0f;
      any = nonzero != 0;
    }
    if (any) active[n_active++] = m;
  }
  return n_active;
}

// Packs panels [q0, q1) of dy's chunk (rows of row stride rs: all K of them, or rows[k] when rows is
// not null; columns [0, N)) like pack_b / pack_b_rows, each element rectified by the rule against y
// at the same place (a fused Relu's gradient, computed where it is packed instead of in a pass).
void pack_rectified(float* packed, int64_t panel_stride, const float* dy, const float* y, int64_t rs,
                    const int32_t* rows, int K, int N, int q0, int q1, BackwardRule rule) {
  with_rule(rule, [&](auto r) {
    for (int q = q0; q < q1; ++q) {
      const int n0 = q * kNr, nc = std::min(kNr, N - n0);
      for (int k = 0; k < K; ++k) {
        float* __restrict d = packed + q * panel_stride + int64_t(k) * kNr;
        const int64_t row = (rows ? rows[k] : k) * rs + n0;
        const float* __restrict g = dy + row;
        const float* __restrict x = y + row;
        int j = 0;
#pragma omp simd
        for (j = 0; j < nc; ++j) d[j] = rectified_gradient<decltype(r)::value>(g[j], x[j]);
        for (j = nc; j < kNr; ++j) d[j] = 0.0f;
      }
    }
  });
}

// Packs panels [q0, q1) of the interior of dy's rows (output channels `rows[k]`, k < K) for input
// pixels [c0, c0 + cn): input pixel (iy, ix) reads output pixel (iy + pad_t, ix + pad_l). With a
// fused Relu (yg, its output, not null) each element is rectified by the rule as it is packed.
void pack_interior(float* packed, int64_t panel_stride, const float* dyg, const float* yg, BackwardRule rule,
                   const int32_t* rows, int K, const ConvGeometry& g, int64_t c0, int cn, int q0, int q1) {
  const int64_t pixels = int64_t(g.OH) * g.OW;
  with_rule(rule, [&](auto r) {
    for (int q = q0; q < q1; ++q) {
      const int j0 = q * kNr, nc = std::min(kNr, cn - j0);
      for (int k = 0; k < K; ++k) {
        float* d = packed + q * panel_stride + int64_t(k) * kNr;
        const int64_t plane = int64_t(rows[k]) * pixels;
        for (int j = 0; j < nc;) {
          const int64_t p = c0 + j0 + j;
          const int iy = int(p / g.W), ix = int(p % g.W), run = std::min(nc - j, g.W - ix);
          const int64_t at = plane + int64_t(iy + g.pad_t) * g.OW + g.pad_l + ix;
          if (yg)
            for (int t = 0; t < run; ++t) d[j + t] = rectified_gradient<decltype(r)::value>(dyg[at + t], yg[at + t]);
          else
            for (int t = 0; t < run; ++t) d[j + t] = dyg[at + t];
          j += run;
        }
        for (int j = nc; j < kNr; ++j) d[j] = 0.0f;
      }
    }
  });
}

// is_padded_pointwise: the ring of dy reaches no input pixel, so dx_g (Cg, H*W) += W_g^T dY_interior
// over the active output channels, accumulated straight into dx (no dcol, no col2im). For conv10
// behind a one-hot seed that is a (512 x 196) outer product.
void padded_pointwise_backward_input(float* dx, const float* dy, const float* w, const ConvGeometry& g,
                                     float* ws, const FusedRelu* relu) {
  const Sizes s = sizes_of(g);
  const int threads = thread_count();
  float* apack = ws;
  const int chunk = chunk_pixels(std::max(s.kg, s.mg), s.in_plane);
  float* packed = ws + int64_t(threads) * kApackFloats;
  const int64_t panel_stride = int64_t(s.mg) * kNr;
  int32_t* active = reinterpret_cast<int32_t*>(packed + panels_for(chunk) * panel_stride);
  for (int n = 0; n < g.N; ++n)
    for (int grp = 0; grp < g.group; ++grp) {
      const float* dyg = dy + (int64_t(n) * g.M + int64_t(grp) * s.mg) * s.pixels;
      const float* yg = relu ? relu->y + (dyg - dy) : nullptr;
      float* dxg = dx + (int64_t(n) * g.C + int64_t(grp) * s.cg) * s.in_plane;
      const int n_active = active_channels(active, dyg, s.mg, s.pixels);  // (a zero plane stays zero rectified)
      if (n_active == 0) continue;
      for (int64_t c0 = 0; c0 < s.in_plane; c0 += chunk) {
        const int cn = int(std::min<int64_t>(chunk, s.in_plane - c0));
        // (Cg x cn) += W_g^T (Cg x Mg) * dY_interior (Mg x cn), over the active channels
        GemmArgs ga = backward_product(w, s, grp, cn, n_active, active, packed, panel_stride);
        ga.c = dxg + c0;
        ga.ldc = s.in_plane;
        ga.accumulate = true;
#pragma omp parallel num_threads(threads)
        {
          const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
          const auto [q0, q1] = split(int(panels_for(cn)), nt, tid);
          pack_interior(packed, panel_stride, dyg, yg, relu ? relu->rule : BackwardRule::gradient, active, n_active,
                        g, c0, cn, q0, q1);
#pragma omp barrier
          const GemmPart part = gemm_partition(ga, tid, nt);
          gemm_range(ga, part.m0, part.m1, part.p0, part.p1, apack + int64_t(tid) * kApackFloats);
        }
      }
    }
}

}  // namespace

void conv2d_backward_input(float* dx, const float* dy, const float* w, const ConvGeometry& g, float* ws,
                           const float* winograd_u, const FusedRelu* relu) {
  if (winograd_applies(g)) {
    if (relu) {  // Winograd reads dy as it is: rectify it into scratch first
      relu_backward_write(relu->scratch, dy, relu->y, int64_t(g.N) * g.M * g.OH * g.OW, relu->rule);
      dy = relu->scratch;
    }
    return winograd_backward_input(dx, dy, w, winograd_u, g, ws);
  }
  if (is_padded_pointwise(g)) return padded_pointwise_backward_input(dx, dy, w, g, ws, relu);
  const Sizes s = sizes_of(g);
  const int threads = thread_count();
  float* apack = ws;
  const int chunk = chunk_pixels(std::max(s.kg, s.mg), s.pixels);
  float* packed = ws + int64_t(threads) * kApackFloats;
  float* dcol = packed + panels_for(chunk) * s.mg * kNr;
  int32_t* active = reinterpret_cast<int32_t*>(dcol + (is_pointwise(g) ? 0 : int64_t(s.kg) * chunk));
  const int64_t panel_stride = int64_t(s.mg) * kNr;
  const bool pointwise = is_pointwise(g);
  const int khw = g.KH * g.KW;
  for (int n = 0; n < g.N; ++n)
    for (int grp = 0; grp < g.group; ++grp) {
      const float* dyg = dy + (int64_t(n) * g.M + int64_t(grp) * s.mg) * s.pixels;
      const float* yg = relu ? relu->y + (dyg - dy) : nullptr;  // the fused Relu's output, same layout
      float* dxg = dx + (int64_t(n) * g.C + int64_t(grp) * s.cg) * s.in_plane;
      // Output channels whose gradient plane is all zero add nothing (nor do they after the rule): behind a one-hot seed (the
      // class-score layer of a fully-convolutional net such as SqueezeNet's conv10) that is all
      // but one of them, so the reduction runs over the others only.
      const int n_active = active_channels(active, dyg, s.mg, s.pixels);
      if (n_active == 0) continue;
      const bool sparse = n_active < s.mg;
      for (int64_t c0 = 0; c0 < s.pixels; c0 += chunk) {
        const int cn = int(std::min<int64_t>(chunk, s.pixels - c0));
        const int panels = int(panels_for(cn));
        // (Kg x cn) = W_g^T (Kg x Mg) * dY_g chunk (Mg x cn), over the active channels
        GemmArgs ga = backward_product(w, s, grp, cn, n_active, active, packed, panel_stride);
        const bool read_in_place = pointwise && !sparse && !relu && reads_b_in_place(s.kg);
        if (read_in_place) {
          ga.b_packed = dyg + c0;
          ga.panel_stride = kNr;
          ga.b_ld = s.pixels;
        }
        if (pointwise) {
          ga.c = dxg + c0;
          ga.ldc = s.in_plane;
          ga.accumulate = true;
        } else {
          ga.c = dcol;
          ga.ldc = cn;
        }
#pragma omp parallel num_threads(threads)
        {
          const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
          const auto [q0, q1] = split(panels, nt, tid);
          if (!read_in_place) {  // (the same on every thread: all reach the barrier or none)
            if (relu)
              pack_rectified(packed, panel_stride, dyg + c0, yg + c0, s.pixels, sparse ? active : nullptr, n_active,
                             cn, q0, q1, relu->rule);
            else if (sparse)
              pack_b_rows(packed, panel_stride, dyg + c0, s.pixels, 1, active, n_active, cn, q0, q1);
            else
              pack_b(packed, panel_stride, dyg + c0, s.pixels, 1, s.mg, cn, q0, q1);
#pragma omp barrier
          }
          const GemmPart part = gemm_partition(ga, tid, nt);
          gemm_range(ga, part.m0, part.m1, part.p0, part.p1, apack + int64_t(tid) * kApackFloats);
          if (!pointwise) {
#pragma omp barrier
            if (s.cg >= 4 * nt) {  // whole channels per thread
              const auto [ch0, ch1] = split(s.cg, nt, tid);
              for (int c = ch0; c < ch1; ++c)
                col2im_channel(dxg + int64_t(c) * s.in_plane, dcol + int64_t(c) * khw * cn, cn, g, int(c0), cn, 0,
                               g.H);
            } else {  // few channels (the image's): bands of input rows per thread
              const auto [r0, r1] = split(g.H, nt, tid);
              for (int c = 0; c < s.cg; ++c)
                col2im_channel(dxg + int64_t(c) * s.in_plane, dcol + int64_t(c) * khw * cn, cn, g, int(c0), cn, r0,
                               r1);
            }
          }
        }
      }
    }
}

}  // namespace deepinside::cpu_fast
