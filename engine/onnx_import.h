#pragma once
// ONNX ModelProto -> Graph for the supported subset (opsets 7-17, the ops of conv nets). Anything
// else is an Error naming node, op and opset. Weights holding NaN or Inf are an Error too
// (docs/onnx-support.md says why).
#include <string>
#include <vector>

#include "engine/graph.h"

namespace deepinside {

Graph import_onnx_file(const std::string& path);
Graph import_onnx_bytes(const std::string& bytes, const std::string& source_name);

// A serialized TensorProto file (ONNX test data: input_0.pb, output_0.pb), converted to float32.
Tensor read_onnx_tensor_file(const std::string& path);

// The ONNX op types the importer accepts, for messages and docs.
const std::vector<std::string>& supported_onnx_ops();

}  // namespace deepinside
