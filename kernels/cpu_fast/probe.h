#pragma once
// Machine probes for the benchmark: how many FLOP/s a large SGEMM reaches on this machine (the
// project's own kernel and Eigen's, all threads) and how many bytes/s a large copy moves. Every
// benchmark figure is stated beside these measured peaks.
#include <string>

namespace deepinside::cpu_fast {

struct MachinePeak {
  double gemm_gflops = 0;        // best of the two SGEMMs below
  double own_gemm_gflops = 0;    // kernels/cpu_fast/gemm.cpp
  double eigen_gemm_gflops = 0;  // Eigen's GEMM (same flags, OpenMP threads)
  double fma_gflops = 0;         // a register-only FMA loop on every thread: the arithmetic ceiling
  double copy_gbps = 0;          // memcpy of a buffer far larger than the caches: read + write bytes / s
  int threads = 0;
  std::string kernel;            // the micro-kernel the build uses
};

// Takes about `seconds` in total (at least a few repetitions of each probe).
MachinePeak probe_machine(double seconds = 1.5);

}  // namespace deepinside::cpu_fast
