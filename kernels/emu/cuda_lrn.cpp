// kernels/cuda/lrn.cu compiled for the host (backend "cuda-emu"; see kernels/emu/emu.h).
#include "kernels/cuda/lrn.cu"
