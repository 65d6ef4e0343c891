#include "engine/tensor.h"

#include <algorithm>

#include "engine/device.h"
#include "engine/error.h"

namespace deepinside {

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_to_string(const Shape& shape) {
  if (shape.empty()) return "scalar";
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += "x";
    s += std::to_string(shape[i]);
  }
  return s;
}

template <class T>
BasicTensor<T>::DeviceMemory::DeviceMemory(DeviceMemory&& other) noexcept
    : runtime(other.runtime), pointer(std::exchange(other.pointer, nullptr)) {}

template <class T>
typename BasicTensor<T>::DeviceMemory& BasicTensor<T>::DeviceMemory::operator=(DeviceMemory&& other) noexcept {
  if (this != &other) {
    if (pointer) runtime->release(pointer);
    runtime = other.runtime;
    pointer = std::exchange(other.pointer, nullptr);
  }
  return *this;
}

template <class T>
BasicTensor<T>::DeviceMemory::~DeviceMemory() {
  if (pointer) runtime->release(pointer);
}

template <class T>
BasicTensor<T>::BasicTensor(Shape shape, Device device) : shape_(std::move(shape)), device_(device) {
  for (int64_t d : shape_) require(d >= 0, "negative dimension in shape " + shape_to_string(shape_));
  require(device_ == Device::cpu, "a tensor on device 'cuda' needs the runtime of a CUDA backend");
  numel_ = shape_numel(shape_);
  data_.assign(static_cast<size_t>(numel_), T(0));
}

template <class T>
BasicTensor<T>::BasicTensor(Shape shape, DeviceRuntime& runtime) : shape_(std::move(shape)), device_(Device::cuda) {
  for (int64_t d : shape_) require(d >= 0, "negative dimension in shape " + shape_to_string(shape_));
  numel_ = shape_numel(shape_);
  device_memory_.runtime = &runtime;
  // Never a zero-byte request: every tensor has a distinct, valid address.
  device_memory_.pointer = runtime.allocate(std::max<size_t>(sizeof(T) * size_t(numel_), sizeof(T)));
}

template <class T>
BasicTensor<T> BasicTensor<T>::view(T* data, Shape shape) {
  BasicTensor t;
  for (int64_t d : shape) require(d >= 0, "negative dimension in shape " + shape_to_string(shape));
  t.numel_ = shape_numel(shape);
  t.shape_ = std::move(shape);
  require(data != nullptr || t.numel_ == 0, "a tensor view needs memory");
  t.view_ = data;
  return t;
}

template <class T>
BasicTensor<T>::BasicTensor(BasicTensor&& other) noexcept
    : shape_(std::move(other.shape_)),
      device_(std::exchange(other.device_, Device::cpu)),
      numel_(std::exchange(other.numel_, 0)),
      data_(std::move(other.data_)),
      view_(std::exchange(other.view_, nullptr)),
      device_memory_(std::move(other.device_memory_)) {
  other.shape_.clear();
  other.data_.clear();
}

template <class T>
BasicTensor<T>& BasicTensor<T>::operator=(BasicTensor&& other) noexcept {
  if (this != &other) {
    shape_ = std::move(other.shape_);
    device_ = std::exchange(other.device_, Device::cpu);
    numel_ = std::exchange(other.numel_, 0);
    data_ = std::move(other.data_);
    view_ = std::exchange(other.view_, nullptr);
    device_memory_ = std::move(other.device_memory_);
    other.shape_.clear();
    other.data_.clear();
  }
  return *this;
}

template <class T>
BasicTensor<T> BasicTensor<T>::clone() const {
  if (!on_host()) {
    BasicTensor copy(shape_, *runtime());
    copy.copy_from(*this);
    return copy;
  }
  BasicTensor copy(shape_, device_);  // a clone owns its memory, also a view's
  std::copy(data(), data() + numel_, copy.data_.begin());
  return copy;
}

template <class T>
void BasicTensor<T>::copy_from(const BasicTensor& src) {
  require(src.numel() == numel(), "copy_from: " + shape_to_string(src.shape()) + " into " + shape_to_string(shape_));
  const size_t bytes = sizeof(T) * size_t(numel());
  if (bytes == 0) return;
  if (on_host() && src.on_host())
    std::copy(src.data(), src.data() + src.numel(), data());
  else if (on_host())
    src.runtime()->download(data(), src.data(), bytes);
  else if (src.on_host())
    runtime()->upload(data(), src.data(), bytes);
  else
    runtime()->copy(data(), src.data(), bytes);
}

template <class T>
BasicTensor<T> BasicTensor<T>::to_host() const {
  BasicTensor host(shape_);
  host.copy_from(*this);
  return host;
}

template <class T>
void BasicTensor<T>::fill(T value) {
  if (on_host()) {
    std::fill(data(), data() + numel_, value);
    return;
  }
  require(value == T(0), "fill: a device tensor can only be zero-filled; upload other values with copy_from");
  runtime()->zero(data(), sizeof(T) * size_t(numel()));
}

template <class T>
void BasicTensor<T>::reshape(Shape shape) {
  require(shape_numel(shape) == numel(), "cannot reshape " + shape_to_string(shape_) + " to " +
                                             shape_to_string(shape));
  shape_ = std::move(shape);
}

template class BasicTensor<float>;
template class BasicTensor<int32_t>;

}  // namespace deepinside
