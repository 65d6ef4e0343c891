// Runtime (runtime.h): the CUDA runtime on the device build; host memory in kernels/emu.
#include "kernels/cuda/runtime.h"

#include <cstdlib>
#include <cstring>

namespace deepinside::DI_KERNEL_NS {

#ifdef DEEPINSIDE_EMU

namespace {

// Host copies synchronise with the stream: not allowed while capturing (as on the device).
void refuse_while_capturing(const char* what) {
  if (emu::capturing()) throw Error(std::string("emu: ") + what + " while capturing a graph (a host synchronisation)");
}

// The emulation's CUDA graph: the recorded launches, copies and zero-fills, replayed in order.
class EmuGraph final : public CapturedWork {
 public:
  explicit EmuGraph(std::vector<std::function<void()>> work) : work_(std::move(work)) {}
  void replay() override {
    for (auto& w : work_) w();
  }

 private:
  std::vector<std::function<void()>> work_;
};

}  // namespace

Runtime::Runtime() : device_name_("the CUDA emulation on the host (kernels/emu)") {}
Runtime::~Runtime() = default;
std::string Runtime::name() const { return device_name_; }

void* Runtime::allocate(size_t bytes) {
  refuse_while_capturing("allocate");
  const size_t rounded = (bytes + 255) / 256 * 256;  // cudaMalloc's 256-byte alignment
  void* p = std::aligned_alloc(256, rounded);
  if (!p) throw Error("emu: cannot allocate " + std::to_string(bytes) + " bytes of device memory");
  std::memset(p, 0, rounded);
  return p;
}
void Runtime::release(void* p) noexcept { std::free(p); }

void Runtime::upload(void* dst, const void* src, size_t bytes) {
  refuse_while_capturing("upload");
  std::memcpy(dst, src, bytes);
}
void Runtime::download(void* dst, const void* src, size_t bytes) {
  refuse_while_capturing("download");
  std::memcpy(dst, src, bytes);
}
void Runtime::copy(void* dst, const void* src, size_t bytes) {
  if (emu::capturing())
    emu::record([=] { std::memmove(dst, src, bytes); });
  else
    std::memmove(dst, src, bytes);
}
void Runtime::zero(void* dst, size_t bytes) {
  if (emu::capturing())
    emu::record([=] { std::memset(dst, 0, bytes); });
  else
    std::memset(dst, 0, bytes);
}
void Runtime::synchronize() { refuse_while_capturing("synchronize"); }
DevicePeaks Runtime::peaks() const { return {}; }
bool Runtime::can_capture() const { return true; }
void Runtime::begin_capture() { emu::begin_capture(); }
std::unique_ptr<CapturedWork> Runtime::end_capture() { return std::make_unique<EmuGraph>(emu::end_capture()); }

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

DevicePeaks Runtime::peaks() const {
  int device = 0, sms = 0, clock_khz = 0, mem_khz = 0, bus_bits = 0, major = 0, minor = 0;
  DI_CUDA_CHECK(cudaGetDevice(&device));
  DI_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  DI_CUDA_CHECK(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, device));
  DI_CUDA_CHECK(cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, device));
  DI_CUDA_CHECK(cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, device));
  DI_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  DI_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  // FP32 lanes per SM: 64 on Volta, Turing and A100 (8.0); 128 on 8.6+, Hopper (9.0) and later.
  const int lanes = (major == 8 && minor == 0) || major < 8 ? 64 : 128;
  DevicePeaks p;
  p.fp32_gflops = double(sms) * lanes * 2.0 * clock_khz * 1e3 / 1e9;
  p.dram_gbps = 2.0 * mem_khz * 1e3 * (bus_bits / 8.0) / 1e9;
  return p;
}

bool Runtime::can_capture() const { return true; }

void Runtime::begin_capture() { DI_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal)); }

std::unique_ptr<CapturedWork> Runtime::end_capture() {
  cudaGraph_t graph = nullptr;
  DI_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
  return std::make_unique<CudaGraphWork>(graph, stream_);
}

#endif

}  // namespace deepinside::DI_KERNEL_NS
