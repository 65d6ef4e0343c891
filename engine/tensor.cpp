#include "engine/tensor.h"

#include <algorithm>

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
BasicTensor<T>::BasicTensor(Shape shape, Device device) : shape_(std::move(shape)), device_(device) {
  for (int64_t d : shape_) require(d >= 0, "negative dimension in shape " + shape_to_string(shape_));
  require(device_ == Device::cpu, "tensors on device 'cuda' need a CUDA build");
  data_.assign(static_cast<size_t>(shape_numel(shape_)), T(0));
}

template <class T>
BasicTensor<T> BasicTensor<T>::clone() const {
  BasicTensor copy(shape_, device_);
  std::copy(data_.begin(), data_.end(), copy.data_.begin());
  return copy;
}

template <class T>
void BasicTensor<T>::fill(T value) {
  std::fill(data_.begin(), data_.end(), value);
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
