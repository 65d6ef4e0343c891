// kernels/cuda/gemm.cu compiled for the host (backend "cuda-emu"; see kernels/emu/emu.h).
#include "kernels/cuda/gemm.cu"
