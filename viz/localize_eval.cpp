#include "viz/localize_eval.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "viz/cam.h"
#include "viz/saliency.h"

namespace deepinside::viz {

namespace {

// The GlobalAveragePool output that reads `layer` (CAM's w_ck = dS_c/dGAP_k lives there).
int pooled_value(const Model& model, int layer) {
  for (const Node& node : model.graph.nodes())
    if (node.kind == OpKind::GlobalAveragePool && node.inputs[0] == layer) return node.outputs[0];
  throw Error("no global average pool reads the CAM layer");
}

// low (h,w) upsampled into dst (H,W).
void upsample_to(const std::vector<float>& low, int h, int w, int H, int W, float* dst) {
  const Tensor up = upsample_bilinear(low.data(), h, w, H, W);
  std::copy(up.data(), up.data() + up.numel(), dst);
}

}  // namespace

ClassMaps class_maps(Session& session, const Model& model, const std::vector<std::vector<int>>& classes,
                     const ClassMapOptions& o) {
  const Shape& in = session.input_shape();
  const int N = int(in[0]), H = int(in[2]), W = int(in[3]);
  require(int(classes.size()) == N, "class_maps: one list of classes per image is needed");
  const int k = classes.empty() ? 0 : int(classes[0].size());
  for (const auto& list : classes) {
    require(int(list.size()) == k, "class_maps: every image needs the same number of classes");
    for (int c : list) check_class_index(c, model);
  }
  ClassMaps r;
  r.images = N, r.k = k, r.height = H, r.width = W;
  int cam_layer = -1, pooled = -1, gc_layer = -1;
  if (o.cam) {
    cam_layer = cam_feature_layer(model);
    check_cam_layer(model, cam_layer);
    pooled = pooled_value(model, cam_layer);
  }
  if (o.gradcam) {
    gc_layer = o.gradcam_layer >= 0 ? o.gradcam_layer : default_gradcam_layer(model);
    check_cam_layer(model, gc_layer);
  }
  const Shape maps_shape{N, k, H, W};
  if (o.saliency) r.saliency = Tensor(maps_shape);
  if (o.cam) r.cam = Tensor(maps_shape);
  if (o.gradcam) r.gradcam = Tensor(maps_shape);
  const int64_t HW = int64_t(H) * W;
  for (int j = 0; j < k; ++j) {
    Tensor seed(session.shape(model.scores_value));
    for (int n = 0; n < N; ++n) seed[int64_t(n) * model.classes + classes[n][j]] = 1.0f;
    const Tensor& g = session.backward_input(model.scores_value, seed, BackwardRule::gradient);
    if (o.saliency) {
      const Tensor m = saliency_map(g);  // (N,H,W)
      for (int n = 0; n < N; ++n) std::copy(m.data() + n * HW, m.data() + (n + 1) * HW, r.saliency.data() + (int64_t(n) * k + j) * HW);
    }
    if (o.cam) {  // sum_k w_ck A_k with w_ck = dS_c/dGAP_k (exact: the head after the pool is affine)
      const Tensor& a = session.value(cam_layer);
      const Tensor& dpool = session.gradient(pooled);
      const int K = int(a.dim(1)), h = int(a.dim(2)), w = int(a.dim(3));
      for (int n = 0; n < N; ++n) {
        std::vector<float> low(size_t(h) * w, 0.0f);
        for (int c = 0; c < K; ++c) {
          const float wc = dpool[int64_t(n) * K + c];
          if (wc == 0.0f) continue;
          const float* ac = a.data() + (int64_t(n) * K + c) * h * w;
          for (int i = 0; i < h * w; ++i) low[i] += wc * ac[i];
        }
        upsample_to(low, h, w, H, W, r.cam.data() + (int64_t(n) * k + j) * HW);
      }
    }
    if (o.gradcam) {  // ReLU(sum_k alpha_k A_k), alpha_k = the spatial mean of dS_c/dA_k
      const Tensor& a = session.value(gc_layer);
      const Tensor& da = session.gradient(gc_layer);
      const int K = int(a.dim(1)), h = int(a.dim(2)), w = int(a.dim(3));
      for (int n = 0; n < N; ++n) {
        std::vector<double> sum(size_t(h) * w, 0.0);
        for (int c = 0; c < K; ++c) {
          const float* dc = da.data() + (int64_t(n) * K + c) * h * w;
          const float* ac = a.data() + (int64_t(n) * K + c) * h * w;
          double alpha = 0.0;
          for (int i = 0; i < h * w; ++i) alpha += dc[i];
          alpha /= double(h) * w;
          for (int i = 0; i < h * w; ++i) sum[i] += alpha * ac[i];
        }
        std::vector<float> low(sum.size());
        for (size_t i = 0; i < sum.size(); ++i) low[i] = float(std::max(sum[i], 0.0));
        upsample_to(low, h, w, H, W, r.gradcam.data() + (int64_t(n) * k + j) * HW);
      }
    }
  }
  return r;
}

InputGeometry input_geometry(int image_width, int image_height, const Model& model) {
  require(image_width > 0 && image_height > 0, "an empty image has no geometry");
  InputGeometry g;
  g.image_width = image_width, g.image_height = image_height;
  g.input_width = model.width, g.input_height = model.height;
  const int shorter = model.preprocessing().resize_shorter;
  if (shorter > 0) {  // engine/preprocess.cpp: the shorter side becomes N exactly, then a centre crop
    const double s = double(shorter) / std::min(image_width, image_height);
    int w = std::max(1, int(std::lround(image_width * s))), h = std::max(1, int(std::lround(image_height * s)));
    if (image_width <= image_height) w = shorter; else h = shorter;
    g.scale_x = double(w) / image_width, g.scale_y = double(h) / image_height;
    g.offset_x = (w - model.width) / 2, g.offset_y = (h - model.height) / 2;
  } else {
    g.scale_x = double(model.width) / image_width, g.scale_y = double(model.height) / image_height;
  }
  return g;
}

Box box_to_image(const Box& b, const InputGeometry& g) {
  if (b.empty()) return Box{};
  const auto to_x = [&](int x) { return (x + g.offset_x) / g.scale_x; };
  const auto to_y = [&](int y) { return (y + g.offset_y) / g.scale_y; };
  // Small tolerances keep an exact identity map exact under floating-point rounding.
  Box r{int(std::floor(to_x(b.x0) + 1e-9)), int(std::floor(to_y(b.y0) + 1e-9)), int(std::ceil(to_x(b.x1) - 1e-9)),
        int(std::ceil(to_y(b.y1) - 1e-9))};
  r.x0 = std::clamp(r.x0, 0, g.image_width), r.x1 = std::clamp(r.x1, 0, g.image_width);
  r.y0 = std::clamp(r.y0, 0, g.image_height), r.y1 = std::clamp(r.y1, 0, g.image_height);
  return r;
}

void LocalizationTally::add(const std::vector<int>& classes, const std::vector<Box>& boxes, int true_class,
                            const Box& truth, double min_iou) {
  require(classes.size() == boxes.size(), "one box per predicted class is needed");
  ++images;
  for (size_t r = 0; r < classes.size() && r < 5; ++r)
    if (classes[r] == true_class && iou(boxes[r], truth) >= min_iou) {
      if (r == 0) ++top1_localized;
      ++top5_localized;
      break;
    }
}

std::vector<LabelledImage> read_ground_truth(const std::string& dir) {
  const std::filesystem::path path = std::filesystem::path(dir) / "ground_truth.json";
  std::ifstream in(path);
  require(bool(in), "cannot open '" + path.string() + "' (make a data set with tools/make_fashion_scenes.py)");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception& e) {
    throw Error("'" + path.string() + "' is not valid JSON: " + e.what());
  }
  require(j.is_object() && j.contains("images") && j["images"].is_array(),
          "'" + path.string() + "' has no \"images\" list");
  std::vector<LabelledImage> out;
  for (size_t i = 0; i < j["images"].size(); ++i) {
    const auto& e = j["images"][i];
    const std::string where = "'" + path.string() + "', images[" + std::to_string(i) + "]";
    require(e.is_object() && e.contains("file") && e["file"].is_string(), where + ": no \"file\" string");
    require(e.contains("class") && e["class"].is_number_integer(), where + ": no integer \"class\"");
    require(e.contains("box") && e["box"].is_array() && e["box"].size() == 4, where + ": \"box\" must be [x0, y0, x1, y1]");
    for (const auto& v : e["box"]) require(v.is_number_integer(), where + ": \"box\" must hold integers");
    LabelledImage li;
    li.file = (std::filesystem::path(dir) / e["file"].get<std::string>()).string();
    li.cls = e["class"].get<int>();
    li.box = Box{e["box"][0].get<int>(), e["box"][1].get<int>(), e["box"][2].get<int>(), e["box"][3].get<int>()};
    require(!li.box.empty(), where + ": the box is empty");
    out.push_back(std::move(li));
  }
  require(!out.empty(), "'" + path.string() + "' lists no images");
  return out;
}

}  // namespace deepinside::viz
