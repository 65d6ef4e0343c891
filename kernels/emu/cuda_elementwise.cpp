// kernels/cuda/elementwise.cu compiled for the host (backend "cuda-emu"; see kernels/emu/emu.h).
#include "kernels/cuda/elementwise.cu"
