// Fast max-pooling: the reference's loops with the window clipped to the input once per output
// (instead of a test per tap) and the planes split across threads. Same values, same switches, same
// tie rule (the first maximum in scan order, strictly-greater comparison) as kernels/cpu/pool.h.
#include <algorithm>
#include <limits>

#include "kernels/cpu_fast/ops.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace deepinside::cpu_fast {

namespace {

// First and one-past-last tap t of a window starting at `start` with dilation d such that
// 0 <= start + t*d < size.
inline void tap_range(int start, int d, int taps, int size, int& t0, int& t1) {
  t0 = start >= 0 ? 0 : (-start + d - 1) / d;
  t1 = start >= size ? 0 : std::min(taps, (size - start + d - 1) / d);
  if (t1 < t0) t1 = t0;
}

}  // namespace

#if defined(__AVX512F__)
// Bit t set for the columns base + t (t < 32) inside [0, W).
inline __mmask32 valid32(int base, int W) {
  const int lo = std::clamp(-base, 0, 32), hi = std::clamp(W - base, 0, 32);
  if (hi <= lo) return 0;
  const uint64_t bits = ((hi == 32 ? ~uint64_t(0) : (uint64_t(1) << hi) - 1)) & ~((uint64_t(1) << lo) - 1);
  return __mmask32(bits);
}

// One output row of one plane, 16 outputs at a time: every tap is a masked gather, and the
// "strictly greater, or no switch yet" rule is a compare and a blend, so no branch depends on data.
void maxpool_row_avx512(float* yrow, int32_t* srow, const float* xp, const PoolGeometry& g, int ys, int ky0,
                        int ky1) {
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i width = _mm512_set1_epi32(g.W);
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  for (int ox0 = 0; ox0 < g.OW; ox0 += 16) {
    const int lanes = std::min(16, g.OW - ox0);
    const __mmask16 live = __mmask16((1u << lanes) - 1u);
    const __m512i xs = _mm512_sub_epi32(
        _mm512_mullo_epi32(_mm512_add_epi32(_mm512_set1_epi32(ox0), lane), _mm512_set1_epi32(g.stride_w)),
        _mm512_set1_epi32(g.pad_l));
    __m512 best = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    __m512i best_at = _mm512_set1_epi32(-1);
    for (int ky = ky0; ky < ky1; ++ky) {
      const int iy = ys + ky * g.dil_h;
      const float* row = xp + int64_t(iy) * g.W;
      const __m512i row_base = _mm512_set1_epi32(iy * g.W);
      for (int kx = 0; kx < g.KW; ++kx) {
        const __m512i ix = _mm512_add_epi32(xs, _mm512_set1_epi32(kx * g.dil_w));
        const __mmask16 valid = live & _mm512_cmpge_epi32_mask(ix, _mm512_setzero_si512()) &
                                _mm512_cmplt_epi32_mask(ix, width);
        __m512 v;
        const int base = ox0 * g.stride_w - g.pad_l + kx * g.dil_w;  // input column of lane 0
        if (g.stride_w == 1) {
          v = _mm512_mask_loadu_ps(best, valid, row + base);
        } else if (g.stride_w == 2) {  // 32 consecutive columns, the even ones kept
          const __mmask32 in_row = valid32(base, g.W);
          const __m512 lo = _mm512_maskz_loadu_ps(__mmask16(in_row), row + base);
          const __m512 hi = _mm512_maskz_loadu_ps(__mmask16(in_row >> 16), row + base + 16);
          v = _mm512_mask_mov_ps(best, valid, _mm512_permutex2var_ps(lo, even, hi));
        } else {
          v = _mm512_mask_i32gather_ps(best, valid, ix, row, 4);
        }
        const __mmask16 take =
            valid & (_mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) | _mm512_cmplt_epi32_mask(best_at, _mm512_setzero_si512()));
        best = _mm512_mask_blend_ps(take, best, v);
        best_at = _mm512_mask_blend_epi32(take, best_at, _mm512_add_epi32(row_base, ix));
      }
    }
    _mm512_mask_storeu_ps(yrow + ox0, live, best);
    _mm512_mask_storeu_epi32(srow + ox0, live, best_at);
  }
}
#endif

void maxpool2d_forward(float* y, int32_t* switches, const float* x, const PoolGeometry& g) {
  const int64_t planes = int64_t(g.N) * g.C;
#pragma omp parallel for schedule(static)
  for (int64_t plane = 0; plane < planes; ++plane) {
    const float* xp = x + plane * g.H * g.W;
    float* yp = y + plane * g.OH * g.OW;
    int32_t* sp = switches + plane * g.OH * g.OW;
    for (int oy = 0; oy < g.OH; ++oy) {
      const int ys = oy * g.stride_h - g.pad_t;
      int ky0, ky1;
      tap_range(ys, g.dil_h, g.KH, g.H, ky0, ky1);
#if defined(__AVX512F__)
      maxpool_row_avx512(yp + oy * g.OW, sp + oy * g.OW, xp, g, ys, ky0, ky1);
#else
      for (int ox = 0; ox < g.OW; ++ox) {
        const int xs = ox * g.stride_w - g.pad_l;
        int kx0, kx1;
        tap_range(xs, g.dil_w, g.KW, g.W, kx0, kx1);
        float best = -std::numeric_limits<float>::infinity();
        int32_t best_at = -1;
        for (int ky = ky0; ky < ky1; ++ky) {
          const int iy = ys + ky * g.dil_h;
          const float* row = xp + int64_t(iy) * g.W;
          for (int kx = kx0; kx < kx1; ++kx) {
            const int ix = xs + kx * g.dil_w;
            const float v = row[ix];
            const bool take = v > best || best_at < 0;  // the reference's rule, NaN included
            best = take ? v : best;
            best_at = take ? iy * g.W + ix : best_at;
          }
        }
        yp[oy * g.OW + ox] = best;
        sp[oy * g.OW + ox] = best_at;
      }
#endif
    }
  }
}

void maxpool2d_backward_input(float* dx, const float* dy, const int32_t* switches, const PoolGeometry& g) {
  const int64_t planes = int64_t(g.N) * g.C, out = int64_t(g.OH) * g.OW;
#pragma omp parallel for schedule(static)
  for (int64_t plane = 0; plane < planes; ++plane) {
    float* dxp = dx + plane * g.H * g.W;
    const float* dyp = dy + plane * out;
    const int32_t* sp = switches + plane * out;
    for (int64_t o = 0; o < out; ++o)
      if (sp[o] >= 0) dxp[sp[o]] += dyp[o];
  }
}

// Global average pooling, (planes, plane_size) -> (planes): SqueezeNet's last op, 1000 planes of
// 14x14 (or 16x16). The reference sums each plane serially in double (one add latency per
// element); here the sum is still double but vectorised (a different order of exact-ish double
// adds, so the float result agrees to rounding), the planes split across threads when big enough.
namespace {
constexpr int64_t kPoolParallelMin = 1 << 15;  // elements; below this one thread beats a fork
}

void global_avgpool_forward(float* y, const float* x, int64_t planes, int64_t plane_size) {
#pragma omp parallel for schedule(static) if (planes * plane_size >= kPoolParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    const float* xp = x + p * plane_size;
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < plane_size; ++i) sum += double(xp[i]);
    y[p] = float(sum / double(plane_size));
  }
}

// dx += dy[p] / plane_size over plane p: the reference's arithmetic exactly (float division, one add
// per element), so the result is bit-identical.
void global_avgpool_backward_input(float* dx, const float* dy, int64_t planes, int64_t plane_size) {
#pragma omp parallel for schedule(static) if (planes * plane_size >= kPoolParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    const float d = dy[p] / float(plane_size);
    float* dxp = dx + p * plane_size;
#pragma omp simd
    for (int64_t i = 0; i < plane_size; ++i) dxp[i] += d;
  }
}

}  // namespace deepinside::cpu_fast
