// kernels/cuda/softmax.cu compiled for the host (backend "cuda-emu"; see kernels/emu/emu.h).
#include "kernels/cuda/softmax.cu"
