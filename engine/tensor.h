#pragma once
// Tensor: a dense, owning, move-only array with a shape (N,C,H,W or fewer dims) and a device (or,
// made by view(), a host tensor over another's memory).
// Host tensors (Device::cpu) hold a std::vector; device tensors (Device::cuda) own memory from a
// DeviceRuntime (engine/device.h) and their data() is a device pointer, for kernels only. Host-device
// copies are always explicit: copy_from, to_host.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace deepinside {

class DeviceRuntime;

using Shape = std::vector<int64_t>;

enum class Device { cpu, cuda };

int64_t shape_numel(const Shape& shape);
std::string shape_to_string(const Shape& shape);  // "1x3x227x227", "scalar" for {}

template <class T>
class BasicTensor {
 public:
  BasicTensor() = default;
  explicit BasicTensor(Shape shape, Device device = Device::cpu);  // zero-filled
  // A zero-filled tensor in the runtime's device memory (Device::cuda).
  BasicTensor(Shape shape, DeviceRuntime& runtime);
  // A host tensor over memory it does not own (a slice of another host tensor, which must outlive
  // it): a Session's zero-copy Concat gives its inputs such views of its output.
  static BasicTensor view(T* data, Shape shape);

  BasicTensor(const BasicTensor&) = delete;
  BasicTensor& operator=(const BasicTensor&) = delete;
  BasicTensor(BasicTensor&& other) noexcept;  // leaves other empty
  BasicTensor& operator=(BasicTensor&& other) noexcept;

  // An explicit deep copy on the same device: copies are never an accident.
  BasicTensor clone() const;
  // Copies src's elements into this tensor (same element count), whatever the two devices are.
  void copy_from(const BasicTensor& src);
  // A host copy (downloads a device tensor).
  BasicTensor to_host() const;

  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_.at(i < 0 ? i + rank() : i); }
  int64_t numel() const { return numel_; }
  Device device() const { return device_; }
  bool on_host() const { return device_ == Device::cpu; }
  DeviceRuntime* runtime() const { return device_memory_.runtime; }
  bool empty() const { return numel_ == 0; }
  bool is_view() const { return view_ != nullptr; }

  // Host memory, or device memory for a device tensor (pass it to kernels, never dereference it).
  T* data() { return on_host() ? host_data() : static_cast<T*>(device_memory_.pointer); }
  const T* data() const {
    return on_host() ? const_cast<BasicTensor*>(this)->host_data() : static_cast<const T*>(device_memory_.pointer);
  }
  // Element access: host tensors only.
  T& operator[](int64_t i) { return host_data()[i]; }
  const T& operator[](int64_t i) const { return data()[i]; }

  // Any value on the host; only 0 on a device tensor (a device memset).
  void fill(T value);
  // Same elements, new shape; the element count must not change.
  void reshape(Shape shape);

 private:
  // Owner of a device allocation (moved, never copied).
  struct DeviceMemory {
    DeviceRuntime* runtime = nullptr;
    void* pointer = nullptr;
    DeviceMemory() = default;
    DeviceMemory(DeviceMemory&& other) noexcept;
    DeviceMemory& operator=(DeviceMemory&& other) noexcept;
    ~DeviceMemory();
  };

  T* host_data() { return view_ ? view_ : data_.data(); }

  Shape shape_;
  Device device_ = Device::cpu;
  int64_t numel_ = 0;
  std::vector<T> data_;         // host storage (empty for a view)
  T* view_ = nullptr;           // a view's memory, owned elsewhere
  DeviceMemory device_memory_;  // device storage
};

using Tensor = BasicTensor<float>;
using IndexTensor = BasicTensor<int32_t>;  // max-pool switches: indices into the input plane

extern template class BasicTensor<float>;
extern template class BasicTensor<int32_t>;

}  // namespace deepinside
