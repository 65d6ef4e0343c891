#pragma once
// DeviceRuntime: the memory and stream of one accelerator, as the engine sees it. The engine knows
// no CUDA: kernels/cuda implements this with cudaMalloc / cudaMemcpyAsync on the backend's stream,
// kernels/emu (backend "cuda-emu") with host memory standing in for device memory. Tensors on
// Device::cuda own memory from one of these; every host <-> device copy goes through it, explicitly.
#include <cstddef>
#include <memory>
#include <string>

namespace deepinside {

// A recorded sequence of device work (a CUDA graph), replayed as one launch.
class CapturedWork {
 public:
  virtual ~CapturedWork() = default;
  virtual void replay() = 0;
};

// A device's nominal limits, from its properties (the benchmark's "fraction of peak").
struct DevicePeaks {
  double fp32_gflops = 0;  // SMs x FP32 lanes per SM x 2 x boost clock
  double dram_gbps = 0;    // 2 x memory clock x bus width
};

class DeviceRuntime {
 public:
  virtual ~DeviceRuntime() = default;
  virtual std::string name() const = 0;

  // Zero-filled device memory; allocation happens at plan time only. release never throws.
  virtual void* allocate(size_t bytes) = 0;
  virtual void release(void* p) noexcept = 0;

  // Host -> device, ordered on the stream; returns once the host buffer may be reused.
  virtual void upload(void* device_dst, const void* host_src, size_t bytes) = 0;
  // Device -> host; waits for all earlier work on the stream.
  virtual void download(void* host_dst, const void* device_src, size_t bytes) = 0;
  // Device -> device and zero-fill, asynchronous on the stream (capturable into a graph).
  virtual void copy(void* device_dst, const void* device_src, size_t bytes) = 0;
  virtual void zero(void* device_dst, size_t bytes) = 0;
  // Waits until all work on the stream has finished (timing, the benchmark).
  virtual void synchronize() = 0;

  // Nominal peaks; zeros where unknown (the emulation).
  virtual DevicePeaks peaks() const { return {}; }

  // Graph capture of the work issued between begin_capture and end_capture (the saliency pass);
  // nullptr from end_capture where the runtime cannot capture.
  virtual bool can_capture() const { return false; }
  virtual void begin_capture() {}
  virtual std::unique_ptr<CapturedWork> end_capture() { return nullptr; }
};

}  // namespace deepinside
