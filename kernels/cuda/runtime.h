#pragma once
// The DeviceRuntime of the CUDA backends: device memory and one stream. On the device build,
// cudaMalloc / cudaMemcpyAsync / cudaMemsetAsync on a non-blocking stream and CUDA graph capture; in
// kernels/emu (DEEPINSIDE_EMU), host memory stands in for device memory and launches run to
// completion in order, so the stream is implicit.
#include <string>

#include "engine/device.h"
#include "kernels/cuda/device_api.h"

namespace deepinside::DI_KERNEL_NS {

class Runtime final : public DeviceRuntime {
 public:
  Runtime();  // device build: throws Error when no CUDA device is present
  ~Runtime() override;
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  std::string name() const override;
  void* allocate(size_t bytes) override;
  void release(void* p) noexcept override;
  void upload(void* device_dst, const void* host_src, size_t bytes) override;
  void download(void* host_dst, const void* device_src, size_t bytes) override;
  void copy(void* device_dst, const void* device_src, size_t bytes) override;
  void zero(void* device_dst, size_t bytes) override;
  void synchronize() override;
  DevicePeaks peaks() const override;

  bool can_capture() const override;
  void begin_capture() override;
  std::unique_ptr<CapturedWork> end_capture() override;

  Stream stream() const { return stream_; }

 private:
  Stream stream_{};
  std::string device_name_;
};

}  // namespace deepinside::DI_KERNEL_NS
