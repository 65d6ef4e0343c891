#pragma once
// Class activation maps (docs/methods.md): CAM (Zhou et al. 2016) for nets whose class scores are a
// linear function of a global average pool, Grad-CAM (Selvaraju et al. 2017) on any 4-D layer, and
// Guided Grad-CAM. Low-resolution maps are upsampled to the input bilinearly (half-pixel centres, as
// torch's F.interpolate(mode="bilinear", align_corners=False)).
#include "engine/model.h"
#include "engine/session.h"

namespace deepinside::viz {

struct CamResult {
  int cls = -1;
  float score = 0.0f;  // S_c
  int layer = -1;      // the value A (1,K,h,w) the map was computed on
  Tensor weights;      // (K): CAM: w_ck = dS_c/dGAP_k; Grad-CAM: alpha_k = mean_ij dS_c/dA_kij
  Tensor low_res;      // (h,w): CAM: sum_k w_ck A_k; Grad-CAM: ReLU(sum_k alpha_k A_k)
  Tensor map;          // (H,W): low_res upsampled bilinearly to the input
  Tensor guided;       // Guided Grad-CAM only: (C,H,W) = guided backprop dS_c/dI * map (broadcast over C)
  Tensor guided_map;   // Guided Grad-CAM only: (H,W) = max_c |guided|
};

// The value A feeding the global average pool whose output the scores are a linear (affine) function
// of: Flatten, Reshape, Identity, Dropout, Gemm, MatMul and Add/Sub/Mul/Div by constants may follow the
// pool. Throws Error naming the first node on the way that is none of these.
int cam_feature_layer(const Model& model);

// Grad-CAM's default layer: the output of the last Conv between the input and the scores, rectified
// (the ReLU's output) when a ReLU is its only reader (SqueezeNet v1.1: conv10's ReLU, 1000x16x16);
// without a Conv, the last 4-D value with more than one spatial position.
int default_gradcam_layer(const Model& model);

// Throws Error unless `layer` is a 4-D value (N,K,h,w) between the input and the scores.
void check_cam_layer(const Model& model, int layer);

// All three run one image: session planned for (1,C,H,W), input of that shape; cls = -1 picks the top-1.
CamResult class_activation_map(Session& session, const Model& model, const Tensor& input, int cls);
CamResult grad_cam(Session& session, const Model& model, const Tensor& input, int cls, int layer);
CamResult guided_grad_cam(Session& session, const Model& model, const Tensor& input, int cls, int layer);

// src (h,w) -> (H,W), torch's bilinear with align_corners=False: source coordinate
// (dst + 0.5) * h / H - 0.5, clamped below at 0, neighbours clamped at the edge.
Tensor upsample_bilinear(const float* src, int h, int w, int H, int W);

}  // namespace deepinside::viz
