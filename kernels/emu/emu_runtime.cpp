// kernels/cuda/runtime.cpp built on kernels/emu (backend "cuda-emu").
#include "kernels/cuda/runtime.cpp"
