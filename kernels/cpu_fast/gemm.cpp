// Blocked SGEMM on packed panels (BLIS-style loop nest: depth blocks of kKc, row blocks of kMc packed
// per thread, then kNr-column panels x kMr-row micro-panels) and the batch-1 GEMVs.
//
// Micro-kernel: an 8 x 48 tile of C held in 24 AVX-512 registers; per step of k it loads three
// 16-float vectors of the B panel and broadcasts eight A values (24 FMAs for 11 loads). Panels of
// fewer than 48 valid columns run the 16- or 32-wide variant with a store mask. Without AVX-512 the
// same loop nest runs a portable kernel the compiler vectorises as it can.
#include "kernels/cpu_fast/gemm.h"

#include <algorithm>
#include <cstring>

#include <omp.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace deepinside::cpu_fast {

namespace {

// Packs rows [i0, i0+mc) x depth [k0, k0+kc) of A into kMr-row micro-panels: panel q holds, for each
// k, the kMr values A(i0 + q*kMr + r, k0 + k), zero past row M.
void pack_a(float* ap, const GemmArgs& g, int i0, int mc, int k0, int kc) {
  for (int q = 0; q * kMr < mc; ++q) {
    float* dst = ap + int64_t(q) * kc * kMr;
    const int rows = std::min(kMr, mc - q * kMr);
    if (g.a_rs == 1) {  // transposed A: the kMr values of one k are contiguous
      for (int k = 0; k < kc; ++k) {
        const int64_t col = g.k_index ? g.k_index[k0 + k] : k0 + k;
        const float* src = g.a + (int64_t(i0) + q * kMr) + col * g.a_cs;
        float* d = dst + int64_t(k) * kMr;
        int r = 0;
        for (; r < rows; ++r) d[r] = src[r];
        for (; r < kMr; ++r) d[r] = 0.0f;
      }
    } else {
      for (int r = 0; r < kMr; ++r) {
        if (r >= rows) {
          for (int k = 0; k < kc; ++k) dst[int64_t(k) * kMr + r] = 0.0f;
          continue;
        }
        const float* row = g.a + (int64_t(i0) + q * kMr + r) * g.a_rs;
        if (g.k_index)
          for (int k = 0; k < kc; ++k) dst[int64_t(k) * kMr + r] = row[int64_t(g.k_index[k0 + k]) * g.a_cs];
        else if (g.a_cs == 1)
          for (int k = 0; k < kc; ++k) dst[int64_t(k) * kMr + r] = row[k0 + k];
        else
          for (int k = 0; k < kc; ++k) dst[int64_t(k) * kMr + r] = row[int64_t(k0 + k) * g.a_cs];
      }
    }
  }
}

#if defined(__AVX512F__)

// C tile (mv x nc valid of 8 x 16*NV) = / += a (kc x 8) * b (kc x 48 panel rows).
// b's rows k are ldb floats apart. A packed panel (InPlace false: ldb == kNr, zero-padded) is loaded
// whole; an in-place B (InPlace true) only in its first nc columns (masked loads), so it is never
// read past its last column. Two instantiations: the packed one keeps its constant stride and
// unmasked loads (a runtime stride and masks there cost the 3x3 layers ~30%).
template <int NV, bool InPlace>
void micro_kernel(int kc, const float* __restrict a, const float* __restrict b, int64_t ldb_in_place,
                  float* __restrict c, int64_t ldc, int mv, int nc, bool load_c, const float* bias,
                  bool relu) {
  const int64_t ldb = InPlace ? ldb_in_place : kNr;
  __mmask16 mask[NV];
  for (int v = 0; v < NV; ++v) {
    const int lanes = std::clamp(nc - 16 * v, 0, 16);
    mask[v] = __mmask16((1u << lanes) - 1u);
  }
  __m512 acc[kMr][NV];
  for (int r = 0; r < kMr; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
#pragma GCC unroll 2
  for (int k = 0; k < kc; ++k) {
    _mm_prefetch(reinterpret_cast<const char*>(b + (k + 6) * ldb), _MM_HINT_T0);
    __m512 bv[NV];
    for (int v = 0; v < NV; ++v)
      bv[v] = InPlace ? _mm512_maskz_loadu_ps(mask[v], b + k * ldb + 16 * v) : _mm512_loadu_ps(b + k * kNr + 16 * v);
    for (int r = 0; r < kMr; ++r) {
      const __m512 ar = _mm512_set1_ps(a[k * kMr + r]);
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(ar, bv[v], acc[r][v]);
    }
  }
  for (int r = 0; r < mv; ++r) {
    float* cr = c + r * ldc;
    for (int v = 0; v < NV; ++v) {
      if (!mask[v]) continue;
      __m512 val = acc[r][v];
      if (load_c)
        val = _mm512_add_ps(val, _mm512_maskz_loadu_ps(mask[v], cr + 16 * v));
      else if (bias)
        val = _mm512_add_ps(val, _mm512_set1_ps(bias[r]));
      if (relu) val = _mm512_max_ps(val, _mm512_setzero_ps());
      _mm512_mask_storeu_ps(cr + 16 * v, mask[v], val);
    }
  }
}

#else

template <int NV, bool InPlace>
void micro_kernel(int kc, const float* __restrict a, const float* __restrict b, int64_t ldb, float* __restrict c,
                  int64_t ldc, int mv, int nc, bool load_c, const float* bias, bool relu) {
  constexpr int W = 16 * NV;
  const int cols = std::min(nc, W);  // never past B's last column (it may be read in place)
  float acc[kMr][W] = {};
  for (int k = 0; k < kc; ++k) {
    const float* bk = b + k * ldb;
    for (int r = 0; r < kMr; ++r) {
      const float ar = a[k * kMr + r];
      for (int j = 0; j < cols; ++j) acc[r][j] += ar * bk[j];
    }
  }
  for (int r = 0; r < mv; ++r) {
    float* cr = c + r * ldc;
    for (int j = 0; j < cols; ++j) {
      float val = acc[r][j];
      if (load_c)
        val += cr[j];
      else if (bias)
        val += bias[r];
      cr[j] = relu && !(val > 0.0f) ? 0.0f : val;
    }
  }
}

#endif

void run_micro_kernel(int kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc, int mv, int nc,
                      bool load_c, const float* bias, bool relu) {
  // A B read in place with a row stride of exactly kNr has whole 48-column panels only (its N is
  // that stride), so the unmasked packed kernel reads nothing past it either.
  if (ldb == kNr) {
    if (nc > 32)
      micro_kernel<3, false>(kc, a, b, ldb, c, ldc, mv, nc, load_c, bias, relu);
    else if (nc > 16)
      micro_kernel<2, false>(kc, a, b, ldb, c, ldc, mv, nc, load_c, bias, relu);
    else
      micro_kernel<1, false>(kc, a, b, ldb, c, ldc, mv, nc, load_c, bias, relu);
  } else if (nc > 32) {
    micro_kernel<3, true>(kc, a, b, ldb, c, ldc, mv, nc, load_c, bias, relu);
  } else if (nc > 16) {
    micro_kernel<2, true>(kc, a, b, ldb, c, ldc, mv, nc, load_c, bias, relu);
  } else {
    micro_kernel<1, true>(kc, a, b, ldb, c, ldc, mv, nc, load_c, bias, relu);
  }
}

// Even split of [0, n) into `parts`; part i is [begin, end).
std::pair<int, int> split(int n, int parts, int i) {
  const int base = n / parts, extra = n % parts;
  const int begin = i * base + std::min(i, extra);
  return {begin, begin + base + (i < extra ? 1 : 0)};
}

}  // namespace

const char* gemm_kernel_name() {
#if defined(__AVX512F__)
  return "avx512";
#else
  return "portable";
#endif
}

void gemm_range(const GemmArgs& g, int m0, int m1, int p0, int p1, float* apack) {
  if (m0 >= m1 || p0 >= p1) return;
  if (g.K == 0) {  // C = bias (or unchanged when accumulating)
    if (g.accumulate) return;
    for (int i = m0; i < m1; ++i)
      for (int j = p0 * kNr; j < std::min(g.N, p1 * kNr); ++j) {
        const float v = g.bias ? g.bias[i] : 0.0f;
        g.c[i * g.ldc + j] = g.relu && !(v > 0.0f) ? 0.0f : v;
      }
    return;
  }
  // Depth blocks of equal size (at most kKc), so that no block is a short remainder.
  const int kblocks = (g.K + kKc - 1) / kKc, kc_even = (g.K + kblocks - 1) / kblocks;
  for (int pc = 0; pc < g.K; pc += kc_even) {
    const int kc = std::min(kc_even, g.K - pc);
    const bool load_c = g.accumulate || pc > 0;
    const bool relu = g.relu && pc + kc >= g.K;  // on the last depth block's store only
    for (int ic = m0; ic < m1; ic += kMc) {
      const int mc = std::min(kMc, m1 - ic);
      pack_a(apack, g, ic, mc, pc, kc);
      for (int p = p0; p < p1; ++p) {
        const int nc = std::min(kNr, g.N - p * kNr);
        const float* bp = g.b_packed + p * g.panel_stride + int64_t(pc) * g.b_ld;
        for (int ir = 0; ir < mc; ir += kMr) {
          const int row = ic + ir;
          run_micro_kernel(kc, apack + int64_t(ir) * kc, bp, g.b_ld, g.c + row * g.ldc + int64_t(p) * kNr, g.ldc,
                           std::min(kMr, mc - ir), nc, load_c, load_c || !g.bias ? nullptr : g.bias + row, relu);
        }
      }
    }
  }
}

GemmPart gemm_partition(const GemmArgs& g, int tid, int threads) {
  const int mpanels = (g.M + kMr - 1) / kMr;
  const int npanels = int(panels_for(g.N));
  if (threads <= 1) return {0, g.M, 0, npanels};
  // Columns, where each thread packs all of A (cheap) and reads only its own B panels, unless they
  // divide clearly less evenly among the threads than the rows do (the slowest thread sets the time).
  auto imbalance = [threads](int panels) {
    return panels < threads ? 1e9 : double((panels + threads - 1) / threads) * threads / panels;
  };
  if (imbalance(npanels) <= 1.05 * imbalance(mpanels)) {
    const auto [p0, p1] = split(npanels, threads, tid);
    return {0, g.M, p0, p1};
  }
  const auto [q0, q1] = split(mpanels, threads, tid);
  return {q0 * kMr, std::min(g.M, q1 * kMr), 0, npanels};
}

void pack_b(float* packed, int64_t panel_stride, const float* b, int64_t b_rs, int64_t b_cs, int K, int N, int p0,
            int p1) {
  for (int p = p0; p < p1; ++p) {
    float* dst = packed + p * panel_stride;
    const int n0 = p * kNr, nc = std::min(kNr, N - n0);
    for (int k = 0; k < K; ++k) {
      float* d = dst + int64_t(k) * kNr;
      const float* s = b + k * b_rs + n0 * b_cs;
      int j = 0;
      if (b_cs == 1)
        for (; j < nc; ++j) d[j] = s[j];
      else
        for (; j < nc; ++j) d[j] = s[j * b_cs];
      for (; j < kNr; ++j) d[j] = 0.0f;
    }
  }
}

void pack_b_rows(float* packed, int64_t panel_stride, const float* b, int64_t b_rs, int64_t b_cs,
                 const int32_t* row_index, int K, int N, int p0, int p1) {
  for (int p = p0; p < p1; ++p) {
    float* dst = packed + p * panel_stride;
    const int n0 = p * kNr, nc = std::min(kNr, N - n0);
    for (int k = 0; k < K; ++k) {
      float* d = dst + int64_t(k) * kNr;
      const float* s = b + int64_t(row_index[k]) * b_rs + n0 * b_cs;
      int j = 0;
      for (; j < nc; ++j) d[j] = s[j * b_cs];
      for (; j < kNr; ++j) d[j] = 0.0f;
    }
  }
}

void gemv_rows(float* y, const float* w, const float* x, int rows, int cols, float alpha, bool accumulate) {
#pragma omp parallel for schedule(static)
  for (int i0 = 0; i0 < rows; i0 += 4) {
    const int nr = std::min(4, rows - i0);
    float sums[4] = {0, 0, 0, 0};
#if defined(__AVX512F__)
    __m512 acc[4][2];
    for (auto& r : acc) r[0] = r[1] = _mm512_setzero_ps();
    int j = 0;
    for (; j + 32 <= cols; j += 32) {
      const __m512 x0 = _mm512_loadu_ps(x + j), x1 = _mm512_loadu_ps(x + j + 16);
      for (int r = 0; r < nr; ++r) {
        const float* wr = w + int64_t(i0 + r) * cols + j;
        acc[r][0] = _mm512_fmadd_ps(_mm512_loadu_ps(wr), x0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(_mm512_loadu_ps(wr + 16), x1, acc[r][1]);
      }
    }
    for (int r = 0; r < nr; ++r) {
      float s = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]));
      const float* wr = w + int64_t(i0 + r) * cols;
      for (int jj = j; jj < cols; ++jj) s += wr[jj] * x[jj];
      sums[r] = s;
    }
#else
    for (int r = 0; r < nr; ++r) {
      const float* wr = w + int64_t(i0 + r) * cols;
      float part[8] = {};
      int j = 0;
      for (; j + 8 <= cols; j += 8)
        for (int l = 0; l < 8; ++l) part[l] += wr[j + l] * x[j + l];
      float s = 0;
      for (float p : part) s += p;
      for (; j < cols; ++j) s += wr[j] * x[j];
      sums[r] = s;
    }
#endif
    for (int r = 0; r < nr; ++r) y[i0 + r] = alpha * sums[r] + (accumulate ? y[i0 + r] : 0.0f);
  }
}

void gemv_transposed_add(float* dx, const float* w, const float* dy, int rows, int cols, float alpha) {
#pragma omp parallel
  {
    const int threads = omp_get_num_threads(), tid = omp_get_thread_num();
    // Column ranges in whole cache lines, so that threads never share one.
    const int lines = (cols + 15) / 16;
    const auto [l0, l1] = split(lines, threads, tid);
    const int j0 = l0 * 16, j1 = std::min(cols, l1 * 16);
    // Column blocks of 2048 keep this thread's slice of dx in L1 while the rows stream past; four
    // non-zero rows at a time share one load and store of it.
    for (int b0 = j0; b0 < j1; b0 += 2048) {
      const int n = std::min(j1, b0 + 2048) - b0;
      float* __restrict d = dx + b0;
      int rows_at[4];
      float s[4];
      int count = 0;
      auto flush = [&](int k) {
        const float* __restrict w0 = w + int64_t(rows_at[0]) * cols + b0;
        if (k == 4) {
          const float* __restrict w1 = w + int64_t(rows_at[1]) * cols + b0;
          const float* __restrict w2 = w + int64_t(rows_at[2]) * cols + b0;
          const float* __restrict w3 = w + int64_t(rows_at[3]) * cols + b0;
          for (int j = 0; j < n; ++j) d[j] += s[0] * w0[j] + s[1] * w1[j] + s[2] * w2[j] + s[3] * w3[j];
        } else {
          for (int r = 0; r < k; ++r) {
            const float* __restrict wr = w + int64_t(rows_at[r]) * cols + b0;
            for (int j = 0; j < n; ++j) d[j] += s[r] * wr[j];
          }
        }
      };
      for (int i = 0; i < rows; ++i) {
        if (dy[i] == 0.0f) continue;  // a rectified unit: its row of W is never read
        rows_at[count] = i;
        s[count] = alpha * dy[i];
        if (++count == 4) {
          flush(4);
          count = 0;
        }
      }
      if (count) flush(count);
    }
  }
}

}  // namespace deepinside::cpu_fast
