#pragma once
// The model zoo: well-known ImageNet architectures built directly as Graphs with seeded random
// weights (He initialisation, so activations stay O(1) through every layer). The benchmark runs
// them, the parity tests run them at small input sizes, and write_onnx exports them so that the
// PyTorch peer (tools/bench_pytorch.py) runs the very same weights. Definitions: docs/benchmarks.md.
//   simonyan13  the paper's net (Simonyan et al. 2013, Sec. 2): conv64-conv256-conv256-conv256-
//               conv256-full4096-full4096-full1000 with LRN after conv1 and conv2
//   alexnet     torchvision's AlexNet (the variant without LRN)
//   vgg16       torchvision's VGG-16 (configuration D, no batch norm)
#include <cstdint>
#include <string>
#include <vector>

#include "engine/graph.h"

namespace deepinside {

struct ZooOptions {
  int height = 224, width = 224;  // input size (3 x height x width); the first FC layer follows it
  int classes = 1000;
  uint64_t seed = 2013;
};

const std::vector<std::string>& zoo_names();
bool is_zoo_name(const std::string& name);
// One line: the layers, as the paper writes them.
std::string zoo_summary(const std::string& name);

// The net, finalised: input "data" (N,3,H,W), scores "scores" (N,classes), output "prob" = softmax.
// Throws Error naming the known nets for an unknown name.
Graph zoo_graph(const std::string& name, const ZooOptions& options = {});

}  // namespace deepinside
