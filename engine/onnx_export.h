#pragma once
// Graph -> ONNX (opset 13): the ops of plain conv nets (Conv, Relu, LRN, MaxPool, AveragePool,
// GlobalAveragePool, Flatten, Gemm, Softmax, Concat, Dropout, Identity). Used to hand the zoo's
// nets, weights included, to other frameworks (the PyTorch peer of `deepinside bench`).
// Throws Error naming node and op for anything else.
#include <string>

#include "engine/graph.h"

namespace deepinside {

std::string export_onnx_bytes(const Graph& graph, const std::string& model_name);
void write_onnx(const Graph& graph, const std::string& path, const std::string& model_name);

}  // namespace deepinside
