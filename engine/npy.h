#pragma once
// NumPy .npy files (format 1.0/2.0, C order): the raw saliency maps we write, and the golden files
// the tests read. Read: <f4, <f8, |u1, <i8, <i4; write: float32.
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace deepinside {

struct NpyArray {
  Shape shape;
  std::string dtype;           // as in the header, e.g. "<f4"
  std::vector<double> values;  // every element, converted
};

NpyArray read_npy(const std::string& path);
Tensor read_npy_tensor(const std::string& path);  // any numeric dtype, as float32

std::string encode_npy(const float* data, const Shape& shape);
void write_npy(const std::string& path, const float* data, const Shape& shape);  // atomic

}  // namespace deepinside
