#include "kernels/cpu_fast/probe.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include <Eigen/Core>
#include <omp.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "kernels/cpu_fast/gemm.h"
#include "kernels/cpu_fast/ops.h"

namespace deepinside::cpu_fast {

namespace {

using Clock = std::chrono::steady_clock;

struct Free {
  void operator()(float* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<float, Free>;
Buffer make_buffer(int64_t n) {
  return Buffer(static_cast<float*>(std::aligned_alloc(64, size_t((n * 4 + 63) / 64 * 64))));
}

// Best rate of fn (work units per call) over repetitions filling `seconds`.
double best_rate(const std::function<void()>& fn, double work, double seconds) {
  fn();  // warm-up
  double best = 0;
  const auto start = Clock::now();
  for (int rep = 0; rep < 50; ++rep) {
    const auto t0 = Clock::now();
    fn();
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, work / dt);
    if (rep >= 2 && std::chrono::duration<double>(Clock::now() - start).count() > seconds) break;
  }
  return best;
}

// FLOP of fma_loop(iters): 12 independent accumulators, one FMA each per iteration.
#if defined(__AVX512F__)
constexpr double kFmaFlopPerIter = 12 * 16 * 2;
float fma_loop(long iters) {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(float(i) * 1e-3f);
  const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-5f);
  for (long it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(a, b, acc[i]);
  __m512 sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm512_add_ps(sum, acc[i]);
  float lanes[16];
  _mm512_storeu_ps(lanes, sum);
  float s = 0;
  for (float v : lanes) s += v;
  return s;
}
#else
constexpr double kFmaFlopPerIter = 12 * 8 * 2;
float fma_loop(long iters) {
  float acc[12][8] = {};
  for (long it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i)
      for (int l = 0; l < 8; ++l) acc[i][l] = 0.999f * 1e-5f + acc[i][l];
  float s = 0;
  for (auto& r : acc)
    for (float v : r) s += v;
  return s;
}
#endif

}  // namespace

MachinePeak probe_machine(double seconds) {
  MachinePeak peak;
  peak.threads = thread_count();
  peak.kernel = gemm_kernel_name();
  const int n = 1536;  // 1536^3: large enough for every core, small enough to be quick
  const double flop = 2.0 * n * n * n;
  std::vector<float> a(size_t(n) * n), b(size_t(n) * n), c(size_t(n) * n);
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = float(i % 17) * 0.01f;
    b[i] = float(i % 13) * 0.02f;
  }
  {  // own kernel: pack B once per call (as the layers do), then the product
    const int64_t panels = panels_for(n), ps = int64_t(n) * kNr;
    Buffer packed = make_buffer(panels * ps), apack = make_buffer(int64_t(peak.threads) * kApackFloats);
    GemmArgs g;
    g.M = g.N = g.K = n;
    g.a = a.data();
    g.a_rs = n;
    g.a_cs = 1;
    g.b_packed = packed.get();
    g.panel_stride = ps;
    g.c = c.data();
    g.ldc = n;
    auto run = [&] {
#pragma omp parallel
      {
        const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
        const int q0 = int(panels * tid / nt), q1 = int(panels * (tid + 1) / nt);
        pack_b(packed.get(), ps, b.data(), n, 1, n, n, q0, q1);
#pragma omp barrier
        const GemmPart part = gemm_partition(g, tid, nt);
        gemm_range(g, part.m0, part.m1, part.p0, part.p1, apack.get() + int64_t(tid) * kApackFloats);
      }
    };
    peak.own_gemm_gflops = best_rate(run, flop, seconds / 3) / 1e9;
  }
  {
    using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    Eigen::Map<const Matrix> A(a.data(), n, n), B(b.data(), n, n);
    Eigen::Map<Matrix> C(c.data(), n, n);
    Eigen::setNbThreads(peak.threads);
    peak.eigen_gemm_gflops = best_rate([&] { C.noalias() = A * B; }, flop, seconds / 3) / 1e9;
  }
  peak.gemm_gflops = std::max(peak.own_gemm_gflops, peak.eigen_gemm_gflops);
  {
    const long iters = 2000000;
    volatile float sink = 0;
    peak.fma_gflops = best_rate(
                          [&] {
                            float s = 0;
#pragma omp parallel reduction(+ : s)
                            s += fma_loop(iters);
                            sink = sink + s;
                          },
                          kFmaFlopPerIter * double(iters) * peak.threads, seconds / 6) /
                      1e9;
  }
  {  // 256 MB copied per call, split across threads
    const int64_t count = int64_t(64) << 20;
    Buffer src = make_buffer(count), dst = make_buffer(count);
    std::memset(src.get(), 1, size_t(count) * 4);
    std::memset(dst.get(), 0, size_t(count) * 4);
    auto run = [&] {
#pragma omp parallel
      {
        const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
        const int64_t b0 = count * tid / nt, b1 = count * (tid + 1) / nt;
        std::memcpy(dst.get() + b0, src.get() + b0, size_t(b1 - b0) * 4);
      }
    };
    peak.copy_gbps = best_rate(run, 2.0 * 4.0 * double(count), seconds / 3) / 1e9;
  }
  return peak;
}

}  // namespace deepinside::cpu_fast
