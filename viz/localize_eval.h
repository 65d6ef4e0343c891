#pragma once
// What localisation needs around the GraphCut (docs/localisation.md): the maps of several classes per
// image from one forward pass and one backward pass per class rank over the whole batch, the baselines'
// boxes, the mapping between image and network-input coordinates, and the ILSVRC localisation metric.
#include <string>
#include <vector>

#include "engine/model.h"
#include "engine/session.h"
#include "viz/localize.h"
#include "viz/scores.h"

namespace deepinside::viz {

struct ClassMapOptions {
  bool saliency = true;  // the paper's map max_c |dS_c/dI| (rule: gradient)
  bool cam = false;      // CAM (Zhou et al. 2016): needs a global average pool before the scores
  bool gradcam = false;  // Grad-CAM (Selvaraju et al. 2017) on gradcam_layer
  int gradcam_layer = -1;  // -1: viz::default_gradcam_layer(model)
};

// Maps of classes[n][j] for image n, rank j; every image has the same number of classes k.
struct ClassMaps {
  int images = 0, k = 0, height = 0, width = 0;
  Tensor saliency;  // (N, k, H, W) when asked for
  Tensor cam;       // (N, k, H, W), upsampled bilinearly to the input
  Tensor gradcam;   // (N, k, H, W)
  const float* saliency_at(int n, int j) const { return saliency.data() + (int64_t(n) * k + j) * height * width; }
  const float* cam_at(int n, int j) const { return cam.data() + (int64_t(n) * k + j) * height * width; }
  const float* gradcam_at(int n, int j) const { return gradcam.data() + (int64_t(n) * k + j) * height * width; }
};

// After session.forward(batch): k backward passes, the j-th seeded one-hot at classes[n][j] for every
// image n at once. CAM and Grad-CAM come from the same passes (activations and gradients of the
// feature layer), so they cost nothing extra. Identical to viz::compute_saliency, viz::class_activation_map
// and viz::grad_cam run image by image (tests/test_localize.cpp checks it).
ClassMaps class_maps(Session& session, const Model& model, const std::vector<std::vector<int>>& classes,
                     const ClassMapOptions& options);

// ---- Coordinates ---------------------------------------------------------------------------------

// How preprocessing (docs/model-card.md: resize, centre crop) maps an image's pixels to the network
// input: x_input = x_image * scale_x - offset_x (and y alike), in continuous pixel coordinates.
struct InputGeometry {
  int image_width = 0, image_height = 0, input_width = 0, input_height = 0;
  double scale_x = 1, scale_y = 1, offset_x = 0, offset_y = 0;
};
InputGeometry input_geometry(int image_width, int image_height, const Model& model);
// A box in network-input pixels -> the image's pixels (rounded outwards, clipped to the image).
Box box_to_image(const Box& input_box, const InputGeometry& g);

// ---- The ILSVRC localisation metric -------------------------------------------------------------

// An image counts as localised at rank r when one of its first r predicted (class, box) pairs has the
// true class and a box with IoU >= min_iou with the ground truth (ILSVRC, one ground-truth box).
// Top-1 and top-5 errors are the fractions of images not localised at rank 1 and rank 5.
struct LocalizationTally {
  int64_t images = 0, top1_localized = 0, top5_localized = 0;
  void add(const std::vector<int>& classes, const std::vector<Box>& boxes, int true_class, const Box& truth,
           double min_iou = 0.5);
  double top1_error() const { return images ? 1.0 - double(top1_localized) / double(images) : 0.0; }
  double top5_error() const { return images ? 1.0 - double(top5_localized) / double(images) : 0.0; }
};

// ---- The benchmark's data -------------------------------------------------------------------------

struct LabelledImage {
  std::string file;  // absolute or relative to the working directory
  int cls = 0;
  Box box;           // ground truth in the image's pixels
};

// DIR/ground_truth.json as tools/make_fashion_scenes.py writes it. Throws Error naming the file and
// the entry when something is missing or malformed.
std::vector<LabelledImage> read_ground_truth(const std::string& dir);

}  // namespace deepinside::viz
