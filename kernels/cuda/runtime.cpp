// Runtime (runtime.h): the CUDA runtime on the device build; host memory in kernels/emu.
#include "kernels/cuda/runtime.h"

#include <cstdlib>
#include <cstring>

namespace deepinside::DI_KERNEL_NS {

#ifdef DEEPINSIDE_EMU

Runtime::Runtime() : device_name_("the CUDA emulation on the host (kernels/emu)") {}
Runtime::~Runtime() = default;
std::string Runtime::name() const { return device_name_; }

void* Runtime::allocate(size_t bytes) {
  const size_t rounded = (bytes + 255) / 256 * 256;  // cudaMalloc's 256-byte alignment
  void* p = std::aligned_alloc(256, rounded);
  if (!p) throw Error("emu: cannot allocate " + std::to_string(bytes) + " bytes of device memory");
  std::memset(p, 0, rounded);
  return p;
}
void Runtime::release(void* p) noexcept { std::free(p); }
void Runtime::upload(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
void Runtime::download(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
void Runtime::copy(void* dst, const void* src, size_t bytes) { std::memmove(dst, src, bytes); }
void Runtime::zero(void* dst, size_t bytes) { std::memset(dst, 0, bytes); }
void Runtime::synchronize() {}
bool Runtime::can_capture() const { return false; }
void Runtime::begin_capture() {}
std::unique_ptr<CapturedWork> Runtime::end_capture() { return nullptr; }

#else

namespace {

// One instantiated CUDA graph, replayed on the runtime's stream.
class CudaGraphWork final : public CapturedWork {
 public:
  CudaGraphWork(cudaGraph_t graph, cudaStream_t stream) : graph_(graph), stream_(stream) {
    DI_CUDA_CHECK(cudaGraphInstantiate(&exec_, graph_, 0));
  }
  ~CudaGraphWork() override {
    if (exec_) cudaGraphExecDestroy(exec_);
    cudaGraphDestroy(graph_);
  }
  void replay() override { DI_CUDA_CHECK(cudaGraphLaunch(exec_, stream_)); }

 private:
  cudaGraph_t graph_;
  cudaStream_t stream_;
  cudaGraphExec_t exec_ = nullptr;
};

}  // namespace

Runtime::Runtime() {
  int devices = 0;
  const cudaError_t status = cudaGetDeviceCount(&devices);
  if (status != cudaSuccess || devices == 0)
    throw Error(std::string("no CUDA device is present (") +
                (status != cudaSuccess ? cudaGetErrorString(status) : "0 devices") +
                "); the same kernels run on the CPU as backend 'cuda-emu'");
  int device = 0;
  DI_CUDA_CHECK(cudaGetDevice(&device));
  cudaDeviceProp prop{};
  DI_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  device_name_ = prop.name;
  DI_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
}

Runtime::~Runtime() {
  if (stream_) cudaStreamDestroy(stream_);
}

std::string Runtime::name() const { return device_name_; }

void* Runtime::allocate(size_t bytes) {
  void* p = nullptr;
  DI_CUDA_CHECK(cudaMalloc(&p, bytes));
  DI_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream_));
  DI_CUDA_CHECK(cudaStreamSynchronize(stream_));
  return p;
}

void Runtime::release(void* p) noexcept { cudaFree(p); }

void Runtime::upload(void* dst, const void* src, size_t bytes) {
  DI_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
  DI_CUDA_CHECK(cudaStreamSynchronize(stream_));  // the caller may reuse its (pageable) buffer
}

void Runtime::download(void* dst, const void* src, size_t bytes) {
  DI_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
  DI_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void Runtime::copy(void* dst, const void* src, size_t bytes) {
  DI_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
}

void Runtime::zero(void* dst, size_t bytes) { DI_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, stream_)); }

void Runtime::synchronize() { DI_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

bool Runtime::can_capture() const { return true; }

void Runtime::begin_capture() { DI_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal)); }

std::unique_ptr<CapturedWork> Runtime::end_capture() {
  cudaGraph_t graph = nullptr;
  DI_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
  return std::make_unique<CudaGraphWork>(graph, stream_);
}

#endif

}  // namespace deepinside::DI_KERNEL_NS
