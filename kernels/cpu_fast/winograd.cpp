// Winograd F(2x2, 3x3) for 3x3, stride-1, undilated, ungrouped convolutions (Lavin & Gray 2016):
// each 2x2 block of outputs is A^T [ (G g G^T) .* (B^T d B) ] A for its 4x4 input patch d, so the
// 36 multiply-adds per block and input channel of the direct product become 16, done as 16
// independent SGEMMs (one per position xi of the 4x4 transformed tile):
//   M_xi (Mo x tiles) = U_xi (Mo x Ci) * V_xi (Ci x tiles),  U = G g G^T,  V = B^T d B.
// Backward-data of such a convolution is again one: the transposed convolution of dy with the
// kernel flipped and its channel axes swapped, padded by 2 - pad. Tiles are processed in chunks
// whose transformed operands stay in the last-level cache; the input transform writes V straight
// into packed GEMM panels.
//
// B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
// A^T = [1 1 1 0; 0 1 -1 -1].
#include "kernels/cpu_fast/winograd.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include <omp.h>

#include "kernels/cpu_fast/gemm.h"
#include "kernels/cpu_fast/ops.h"

namespace deepinside::cpu_fast {

namespace {

std::pair<int, int> split(int n, int parts, int i) {
  const int base = n / parts, extra = n % parts;
  const int begin = i * base + std::min(i, extra);
  return {begin, begin + base + (i < extra ? 1 : 0)};
}

// Tiles per chunk: whole GEMM panels, V and M of one chunk within kChunkFloats.
int chunk_tiles(int ci, int mo, int64_t tiles) {
  const int64_t per_tile = 16 * int64_t(ci + mo);
  const int64_t max_panels = std::max<int64_t>(1, conv_chunk_floats() / (per_tile * kNr));
  const int64_t total = panels_for(tiles);
  const int64_t chunks = (total + max_panels - 1) / max_panels;
  return int((total + chunks - 1) / chunks) * kNr;
}

// U_xi (mo x ci) for xi = 0..15 from w (mo, ci, 3, 3): U = G g G^T, vectorised along ci.
// Backward-data needs the kernel flipped with its channel axes swapped; since G J = P G (J reverses
// the three taps, P swaps rows 0 and 3 of G), that is U_{p(xi)} transposed: no second transform.
void transform_weights(float* u, const float* w, int mo, int ci) {
  const int64_t xi_stride = int64_t(mo) * ci;
#pragma omp parallel for schedule(static)
  for (int o = 0; o < mo; ++o) {
    const float* wo = w + int64_t(o) * ci * 9;
    float* uo = u + int64_t(o) * ci;
#pragma omp simd
    for (int i = 0; i < ci; ++i) {
      const float* g = wo + int64_t(i) * 9;
      float t[4][3];  // G g
      for (int c = 0; c < 3; ++c) {
        t[0][c] = g[c];
        t[1][c] = 0.5f * (g[c] + g[3 + c] + g[6 + c]);
        t[2][c] = 0.5f * (g[c] - g[3 + c] + g[6 + c]);
        t[3][c] = g[6 + c];
      }
      for (int r = 0; r < 4; ++r) {  // (G g) G^T
        uo[(r * 4 + 0) * xi_stride + i] = t[r][0];
        uo[(r * 4 + 1) * xi_stride + i] = 0.5f * (t[r][0] + t[r][1] + t[r][2]);
        uo[(r * 4 + 2) * xi_stride + i] = 0.5f * (t[r][0] - t[r][1] + t[r][2]);
        uo[(r * 4 + 3) * xi_stride + i] = t[r][2];
      }
    }
  }
}

// The xi of the flipped kernel: rows and columns 0 and 3 of the 4x4 tile swapped.
inline int flipped_xi(int xi) {
  constexpr int p[4] = {3, 1, 2, 0};
  return p[xi / 4] * 4 + p[xi % 4];
}

struct Plane {
  int H, W;     // input plane
  int OH, OW;   // output plane
  int pt, pl;   // padding before the input
  int TW;       // tiles per row
};

// V for the tiles [t0, t0 + tn) of channels [c0, c1), written into the packed panel of each xi:
// vbuf + xi * xi_stride + (j / kNr) * ci * kNr + c * kNr + j % kNr for tile t0 + j. Works a tile row
// at a time: B^T d combines four input rows into four full-width rows (contiguous, vectorised),
// then d B combines columns 2tx .. 2tx+3 of those. scratch: 4 * (2 * TW + 2) floats.
void transform_input(float* __restrict vbuf, int64_t xi_stride, const float* __restrict x, int ci, int c0, int c1,
                     const Plane& p, int64_t t0, int tn, float* __restrict scratch) {
  const int wp = 2 * p.TW + 2;  // columns x = k - pl for k in [0, wp)
  float* T[4] = {scratch, scratch + wp, scratch + 2 * wp, scratch + 3 * wp};
  const int k0 = std::min(std::max(p.pl, 0), wp), k1 = std::max(k0, std::min(wp, p.pl + p.W));
  const int64_t t_end = t0 + tn;
  for (int c = c0; c < c1; ++c) {
    const float* xc = x + int64_t(c) * p.H * p.W;
    for (int64_t ty = t0 / p.TW; ty * p.TW < t_end; ++ty) {
      const float* rows[4];
      for (int r = 0; r < 4; ++r) {
        const int iy = int(2 * ty) - p.pt + r;
        rows[r] = iy >= 0 && iy < p.H ? xc + int64_t(iy) * p.W : nullptr;
      }
      for (int k = 0; k < wp; ++k) T[0][k] = T[1][k] = T[2][k] = T[3][k] = 0.0f;
      auto at = [&](int r, int k) { return rows[r] ? rows[r][k - p.pl] : 0.0f; };
      if (rows[0] && rows[1] && rows[2] && rows[3]) {
        const float *r0 = rows[0] - p.pl, *r1 = rows[1] - p.pl, *r2 = rows[2] - p.pl, *r3 = rows[3] - p.pl;
#pragma omp simd
        for (int k = k0; k < k1; ++k) {
          T[0][k] = r0[k] - r2[k];
          T[1][k] = r1[k] + r2[k];
          T[2][k] = r2[k] - r1[k];
          T[3][k] = r1[k] - r3[k];
        }
      } else {
        for (int k = k0; k < k1; ++k) {
          const float v0 = at(0, k), v1 = at(1, k), v2 = at(2, k), v3 = at(3, k);
          T[0][k] = v0 - v2;
          T[1][k] = v1 + v2;
          T[2][k] = v2 - v1;
          T[3][k] = v1 - v3;
        }
      }
      // Tiles of this row inside the chunk, in runs that stay inside one packed panel.
      int tx = int(std::max<int64_t>(0, t0 - ty * p.TW));
      const int tx_end = int(std::min<int64_t>(p.TW, t_end - ty * p.TW));
      while (tx < tx_end) {
        const int64_t j = ty * p.TW + tx - t0;
        const int jj = int(j % kNr), run = std::min(tx_end - tx, kNr - jj);
        float* dst = vbuf + (j / kNr) * ci * kNr + int64_t(c) * kNr + jj;
        for (int r = 0; r < 4; ++r) {
          const float* tr = T[r] + 2 * tx;
          float* d0 = dst + (r * 4 + 0) * xi_stride;
          float* d1 = dst + (r * 4 + 1) * xi_stride;
          float* d2 = dst + (r * 4 + 2) * xi_stride;
          float* d3 = dst + (r * 4 + 3) * xi_stride;
#pragma omp simd
          for (int u = 0; u < run; ++u) {
            const float a = tr[2 * u], b = tr[2 * u + 1], e = tr[2 * u + 2], f = tr[2 * u + 3];
            d0[u] = a - e;
            d1[u] = b + e;
            d2[u] = e - b;
            d3[u] = b - f;
          }
        }
        tx += run;
      }
    }
  }
}

// Output channel o: y_o (OH x OW) (+)= A^T M A (+ bias) for tiles [t0, t0 + tn); M_xi at
// mbuf + xi * xi_stride + o * tn + j. A tile row at a time: four output rows of TW values each in
// scratch (4 * TW floats), then interleaved into the two image rows.
void transform_output(float* __restrict yo, const float* __restrict mbuf, int64_t xi_stride, int o, const Plane& p,
                      int64_t t0, int tn, float bias, bool accumulate, bool relu, float* __restrict scratch) {
  const float* m = mbuf + int64_t(o) * tn;
  const int64_t t_end = t0 + tn;
  float* out[4] = {scratch, scratch + p.TW, scratch + 2 * p.TW, scratch + 3 * p.TW};  // (row, col) 00 01 10 11
  for (int64_t ty = t0 / p.TW; ty * p.TW < t_end; ++ty) {
    const int tx0 = int(std::max<int64_t>(0, t0 - ty * p.TW));
    const int tx1 = int(std::min<int64_t>(p.TW, t_end - ty * p.TW));
    const float* mj = m + (ty * p.TW + tx0 - t0);
    const int n = tx1 - tx0;
#pragma omp simd
    for (int u = 0; u < n; ++u) {
      float s0[4], s1[4];  // A^T M
      for (int q = 0; q < 4; ++q) {
        const float m0 = mj[(0 * 4 + q) * xi_stride + u], m1 = mj[(1 * 4 + q) * xi_stride + u];
        const float m2 = mj[(2 * 4 + q) * xi_stride + u], m3 = mj[(3 * 4 + q) * xi_stride + u];
        s0[q] = m0 + m1 + m2;
        s1[q] = m1 - m2 - m3;
      }
      out[0][u] = s0[0] + s0[1] + s0[2] + bias;
      out[1][u] = s0[1] - s0[2] - s0[3] + bias;
      out[2][u] = s1[0] + s1[1] + s1[2] + bias;
      out[3][u] = s1[1] - s1[2] - s1[3] + bias;
    }
    const int oy = int(2 * ty);
    for (int r = 0; r < 2 && oy + r < p.OH; ++r) {
      float* row = yo + int64_t(oy + r) * p.OW + 2 * tx0;
      const float* a = out[2 * r];
      const float* b = out[2 * r + 1];
      const int full = std::min(n, (p.OW - 2 * tx0) / 2);  // tiles whose two columns are inside
      if (accumulate) {
#pragma omp simd
        for (int u = 0; u < full; ++u) {
          row[2 * u] += a[u];
          row[2 * u + 1] += b[u];
        }
        if (full < n) row[2 * full] += a[full];
      } else if (relu) {  // a fused Relu (NaN -> 0, like the reference's x > 0 ? x : 0)
#pragma omp simd
        for (int u = 0; u < full; ++u) {
          row[2 * u] = a[u] > 0.0f ? a[u] : 0.0f;
          row[2 * u + 1] = b[u] > 0.0f ? b[u] : 0.0f;
        }
        if (full < n) row[2 * full] = a[full] > 0.0f ? a[full] : 0.0f;
      } else {
#pragma omp simd
        for (int u = 0; u < full; ++u) {
          row[2 * u] = a[u];
          row[2 * u + 1] = b[u];
        }
        if (full < n) row[2 * full] = a[full];
      }
    }
  }
}

// Per-thread scratch of the transforms.
int64_t scratch_floats(const Plane& p) { return std::max<int64_t>(4 * (2 * int64_t(p.TW) + 2), 4 * int64_t(p.TW)); }

// y (mo planes) (+)= the 3x3 convolution of x (ci planes) with transformed weights u: U_xi (mo x ci)
// at u + xi * mo * ci, or, when transposed, the flipped kernel's U_xi = U_{p(xi)}^T with U stored
// (ci x mo).
void winograd_image(float* y, const float* x, const float* u, bool transposed, const float* bias, int ci, int mo,
                    const Plane& p, bool accumulate, bool relu, float* ws) {
  const int threads = thread_count();
  float* apack = ws;
  float* scratch = apack + int64_t(threads) * kApackFloats;
  const int64_t scratch_each = scratch_floats(p);
  const int64_t tiles = int64_t((p.OH + 1) / 2) * p.TW;
  const int chunk = chunk_tiles(ci, mo, tiles);
  float* vbuf = scratch + threads * scratch_each;
  const int64_t v_xi_stride = panels_for(chunk) * ci * kNr;
  float* mbuf = vbuf + 16 * v_xi_stride;
  for (int64_t t0 = 0; t0 < tiles; t0 += chunk) {
    const int tn = int(std::min<int64_t>(chunk, tiles - t0));
    const int64_t m_xi_stride = int64_t(mo) * tn;
#pragma omp parallel num_threads(threads)
    {
      const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
      float* my_scratch = scratch + tid * scratch_each;
      const auto [c0, c1] = split(ci, nt, tid);
      transform_input(vbuf, v_xi_stride, x, ci, c0, c1, p, t0, tn, my_scratch);
      // Zero the padding columns of the last panel (past tn), which the GEMM reads.
      if (tn % kNr) {
        const int64_t last = panels_for(tn) - 1;
        for (int xi = 0; xi < 16; ++xi)
          for (int c = c0; c < c1; ++c) {
            float* d = vbuf + xi * v_xi_stride + last * ci * kNr + int64_t(c) * kNr;
            for (int jj = tn % kNr; jj < kNr; ++jj) d[jj] = 0.0f;
          }
      }
#pragma omp barrier
      for (int xi = 0; xi < 16; ++xi) {
        GemmArgs ga;
        ga.M = mo;
        ga.N = tn;
        ga.K = ci;
        if (transposed) {
          ga.a = u + int64_t(flipped_xi(xi)) * mo * ci;
          ga.a_rs = 1;
          ga.a_cs = mo;
        } else {
          ga.a = u + int64_t(xi) * mo * ci;
          ga.a_rs = ci;
          ga.a_cs = 1;
        }
        ga.b_packed = vbuf + xi * v_xi_stride;
        ga.panel_stride = int64_t(ci) * kNr;
        ga.c = mbuf + xi * m_xi_stride;
        ga.ldc = tn;
        const GemmPart part = gemm_partition(ga, tid, nt);
        gemm_range(ga, part.m0, part.m1, part.p0, part.p1, apack + int64_t(tid) * kApackFloats);
      }
#pragma omp barrier
      const auto [o0, o1] = split(mo, nt, tid);
      for (int o = o0; o < o1; ++o)
        transform_output(y + int64_t(o) * p.OH * p.OW, mbuf, m_xi_stride, o, p, t0, tn, bias ? bias[o] : 0.0f,
                         accumulate, relu, my_scratch);
    }
  }
}

Plane forward_plane(const ConvGeometry& g) { return {g.H, g.W, g.OH, g.OW, g.pad_t, g.pad_l, (g.OW + 1) / 2}; }
// Backward-data: dy (OH x OW) is the input, dx (H x W) the output, padded by 2 - pad.
Plane backward_plane(const ConvGeometry& g) {
  return {g.OH, g.OW, g.H, g.W, 2 - g.pad_t, 2 - g.pad_l, (g.W + 1) / 2};
}

int64_t image_floats(int ci, int mo, const Plane& p) {
  const int64_t tiles = int64_t((p.OH + 1) / 2) * p.TW;
  const int chunk = chunk_tiles(ci, mo, tiles);
  return int64_t(thread_count()) * scratch_floats(p) + 16 * panels_for(chunk) * ci * kNr + 16 * int64_t(mo) * chunk;
}

}  // namespace

bool winograd_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("DEEPINSIDE_WINOGRAD");
    return !(v && std::string(v) == "0");
  }();
  return enabled;
}

bool winograd_applies(const ConvGeometry& g) {
  // Small planes (deep layers at 14x14 and below: under ~150 tiles) spend more on transforming the
  // weights, once per call, than the 16 products save; there the im2col path is faster. So do
  // layers with few input channels: with C = 16 each of the 16 products is 16 deep and the
  // transforms dominate (SqueezeNet's fire0/fire1 3x3 expands, 16 -> 64 on 56x56: forward 0.5-0.7 ms
  // by im2col against 0.9-1.2 ms by Winograd, backward the same either way; docs/benchmarks.md).
  const int64_t tiles = int64_t((g.OH + 1) / 2) * ((g.OW + 1) / 2);
  return winograd_enabled() && g.KH == 3 && g.KW == 3 && g.stride_h == 1 && g.stride_w == 1 && g.dil_h == 1 &&
         g.dil_w == 1 && g.group == 1 && g.C >= 32 && g.M >= 16 && g.pad_t <= 2 && g.pad_l <= 2 && tiles >= 150;
}

int64_t winograd_workspace_floats(const ConvGeometry& g) {
  return int64_t(thread_count()) * kApackFloats + 16 * int64_t(g.M) * g.C +
         std::max(image_floats(g.C, g.M, forward_plane(g)), image_floats(g.M, g.C, backward_plane(g)));
}

int64_t winograd_weight_floats(const ConvGeometry& g) { return 16 * int64_t(g.M) * g.C; }

void winograd_transform_weights(float* u, const float* w, const ConvGeometry& g) { transform_weights(u, w, g.M, g.C); }

void winograd_forward(float* y, const float* x, const float* w, const float* u, const float* b, const ConvGeometry& g,
                      float* ws, bool relu) {
  float* rest = ws + winograd_weight_floats(g);
  if (!u) {
    transform_weights(ws, w, g.M, g.C);
    u = ws;
  }
  const Plane p = forward_plane(g);
  for (int n = 0; n < g.N; ++n)
    winograd_image(y + int64_t(n) * g.M * g.OH * g.OW, x + int64_t(n) * g.C * g.H * g.W, u, false, b, g.C, g.M, p,
                   false, relu, rest);
}

void winograd_backward_input(float* dx, const float* dy, const float* w, const float* u, const ConvGeometry& g,
                             float* ws) {
  float* rest = ws + winograd_weight_floats(g);
  if (!u) {
    transform_weights(ws, w, g.M, g.C);  // U (M x C) per xi; read flipped and transposed below
    u = ws;
  }
  const Plane p = backward_plane(g);
  for (int n = 0; n < g.N; ++n)
    winograd_image(dx + int64_t(n) * g.C * g.H * g.W, dy + int64_t(n) * g.M * g.OH * g.OW, u, true, nullptr, g.M, g.C,
                   p, true, false, rest);
}

}  // namespace deepinside::cpu_fast
