// Fast convolution: forward as Y_g (Mg x P) = W_g (Mg x Kg) * col_g (Kg x P) per image and group,
// backward-data as dcol_g = W_g^T dY_g followed by col2im-add, where Kg = C/group * KH * KW and
// P = OH * OW. Pixels are processed in chunks whose operands stay in the last-level cache:
//  - forward: im2col writes the chunk straight into packed GEMM panels (gemm.h), so the column
//    matrix is never materialised for the whole image and never copied twice; a 1x1 stride-1
//    unpadded convolution packs x itself (no im2col);
//  - backward: dY's chunk is packed, dcol (Kg x chunk) computed, then scattered back into dx by
//    input channel (each thread owns whole dx planes: no races, no atomics). A 1x1 stride-1 unpadded
//    convolution accumulates W^T dY straight into dx.
// The bias is added by the GEMM's store (no extra pass). 3x3 stride-1 layers on large planes go to
// Winograd F(2x2,3x3) instead (winograd.cpp).
#include <algorithm>
#include <atomic>
#include <cstring>

#include <omp.h>

#include "kernels/cpu_fast/gemm.h"
#include "kernels/cpu_fast/ops.h"
#include "kernels/cpu_fast/winograd.h"

namespace deepinside::cpu_fast {

namespace {

std::atomic<int64_t> chunk_floats{int64_t(2) << 20};  // ~8 MB of packed operand per chunk

bool is_pointwise(const ConvGeometry& g) {
  return g.KH == 1 && g.KW == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_t == 0 && g.pad_l == 0 &&
         g.OH == g.H && g.OW == g.W;
}

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
  const int64_t direct = apack + std::max(fwd, bwd);
  return winograd_applies(g) ? std::max(direct, winograd_workspace_floats(g)) : direct;
}

void conv2d_forward(float* y, const float* x, const float* w, const float* b, const ConvGeometry& g, float* ws,
                    const float* winograd_u) {
  if (winograd_applies(g)) return winograd_forward(y, x, w, winograd_u, b, g, ws);
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
        GemmArgs ga;
        ga.M = s.mg;
        ga.N = cn;
        ga.K = s.kg;
        ga.a = w + int64_t(grp) * s.mg * s.kg;
        ga.a_rs = s.kg;
        ga.a_cs = 1;
        ga.b_packed = packed;
        ga.panel_stride = panel_stride;
        ga.c = y + (int64_t(n) * g.M + int64_t(grp) * s.mg) * s.pixels + c0;
        ga.ldc = s.pixels;
        ga.bias = b ? b + int64_t(grp) * s.mg : nullptr;
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

void conv2d_backward_input(float* dx, const float* dy, const float* w, const ConvGeometry& g, float* ws,
                           const float* winograd_u) {
  if (winograd_applies(g)) return winograd_backward_input(dx, dy, w, winograd_u, g, ws);
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
      float* dxg = dx + (int64_t(n) * g.C + int64_t(grp) * s.cg) * s.in_plane;
      // Output channels whose gradient plane is all zero add nothing: behind a one-hot seed (the
      // class-score layer of a fully-convolutional net such as SqueezeNet's conv10) that is all
      // but one of them, so the reduction runs over the others only.
      int n_active = 0;
      for (int m = 0; m < s.mg; ++m) {
        const float* plane = dyg + int64_t(m) * s.pixels;
        for (int64_t i = 0; i < s.pixels; ++i)
          if (plane[i] != 0.0f) {
            active[n_active++] = m;
            break;
          }
      }
      if (n_active == 0) continue;
      const bool sparse = n_active < s.mg;
      for (int64_t c0 = 0; c0 < s.pixels; c0 += chunk) {
        const int cn = int(std::min<int64_t>(chunk, s.pixels - c0));
        const int panels = int(panels_for(cn));
        GemmArgs ga;  // (Kg x cn) = W_g^T (Kg x Mg) * dY_g chunk (Mg x cn), over the active channels
        ga.M = s.kg;
        ga.N = cn;
        ga.K = n_active;
        ga.a = w + int64_t(grp) * s.mg * s.kg;
        ga.a_rs = 1;
        ga.a_cs = s.kg;
        ga.k_index = sparse ? active : nullptr;
        ga.b_packed = packed;
        ga.panel_stride = panel_stride;
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
          if (sparse)
            pack_b_rows(packed, panel_stride, dyg + c0, s.pixels, 1, active, n_active, cn, q0, q1);
          else
            pack_b(packed, panel_stride, dyg + c0, s.pixels, 1, s.mg, cn, q0, q1);
#pragma omp barrier
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
