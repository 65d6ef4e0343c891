#pragma once
// Tensor: a dense, owning, move-only array with a shape (N,C,H,W or fewer dims) and a device.
// Only the CPU device holds memory for now; host-device copies will always be explicit.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace deepinside {

using Shape = std::vector<int64_t>;

enum class Device { cpu, cuda };

int64_t shape_numel(const Shape& shape);
std::string shape_to_string(const Shape& shape);  // "1x3x227x227", "scalar" for {}

template <class T>
class BasicTensor {
 public:
  BasicTensor() = default;
  explicit BasicTensor(Shape shape, Device device = Device::cpu);  // zero-filled

  BasicTensor(const BasicTensor&) = delete;
  BasicTensor& operator=(const BasicTensor&) = delete;
  BasicTensor(BasicTensor&&) noexcept = default;
  BasicTensor& operator=(BasicTensor&&) noexcept = default;

  // An explicit deep copy: copies are never an accident.
  BasicTensor clone() const;

  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_.at(i < 0 ? i + rank() : i); }
  int64_t numel() const { return static_cast<int64_t>(data_.size()); }
  Device device() const { return device_; }
  bool empty() const { return data_.empty(); }

  T* data() { return data_.data(); }
  const T* data() const { return data_.data(); }
  T& operator[](int64_t i) { return data_[i]; }
  const T& operator[](int64_t i) const { return data_[i]; }

  void fill(T value);
  // Same elements, new shape; the element count must not change.
  void reshape(Shape shape);

 private:
  Shape shape_;
  Device device_ = Device::cpu;
  std::vector<T> data_;
};

using Tensor = BasicTensor<float>;
using IndexTensor = BasicTensor<int32_t>;  // max-pool switches: indices into the input plane

extern template class BasicTensor<float>;
extern template class BasicTensor<int32_t>;

}  // namespace deepinside
