// kernels/cuda/cuda_backend.cpp built on kernels/emu (backend "cuda-emu").
#include "kernels/cuda/cuda_backend.cpp"
