// deepinside cam: class activation maps (CAM, Grad-CAM, Guided Grad-CAM; docs/methods.md), upsampled to
// the input and written as a heat map PNG, an overlay PNG and, on request, the raw float32 map (.npy).
#include <filesystem>
#include <iostream>
#include <memory>

#include "engine/error.h"
#include "engine/image.h"
#include "engine/npy.h"
#include "engine/session.h"
#include "tools/deepinside/commands.h"
#include "tools/deepinside/common.h"
#include "viz/cam.h"
#include "viz/layers.h"
#include "viz/render.h"
#include "viz/scores.h"

namespace deepinside::cli {

namespace {

struct CamFlags {
  ModelFlags model;
  std::vector<std::string> images;
  int cls = -1;
  std::string method = "gradcam", layer;
  std::string out, overlay, raw;
  int upscale = 1;
};

std::string overlay_path_for(const std::string& out) {
  std::filesystem::path p(out);
  return (p.parent_path() / (p.stem().string() + "_overlay" + p.extension().string())).string();
}

void run_cam(const CamFlags& f) {
  require(f.upscale >= 1 && f.upscale <= 64, "--upscale must be between 1 and 64");
  require(f.method == "cam" || f.method == "gradcam" || f.method == "guided-gradcam",
          "unknown --method '" + f.method + "' (use cam, gradcam or guided-gradcam)");
  require(f.method != "cam" || f.layer.empty(),
          "--layer applies to gradcam and guided-gradcam; CAM is defined at the layer that feeds the global "
          "average pool");
  const Model model = load_model_from_flags(f.model);
  if (f.cls != -1) viz::check_class_index(f.cls, model);
  int layer = -1;
  if (f.method == "cam") {
    layer = viz::cam_feature_layer(model);
  } else {
    layer = f.layer.empty() ? viz::default_gradcam_layer(model) : viz::resolve_value(model.graph, f.layer);
    viz::check_cam_layer(model, layer);
  }
  const auto backend = backend_from_flags(f.model);
  const std::vector<PreparedImage> images = load_images(f.images, model);
  const int C = model.channels, H = model.height, W = model.width;
  Session session(model.graph, *backend, Shape{1, C, H, W});

  std::vector<viz::CamResult> results;
  for (const PreparedImage& image : images) {
    Tensor input = image.input.clone();
    input.reshape({1, C, H, W});
    if (f.method == "cam") results.push_back(viz::class_activation_map(session, model, input, f.cls));
    else if (f.method == "gradcam") results.push_back(viz::grad_cam(session, model, input, f.cls, layer));
    else results.push_back(viz::guided_grad_cam(session, model, input, f.cls, layer));
  }

  const std::string overlay_base = f.overlay.empty() ? overlay_path_for(f.out) : f.overlay;
  for (size_t n = 0; n < images.size(); ++n) {
    const viz::CamResult& r = results[n];
    const Tensor& map = f.method == "guided-gradcam" ? r.guided_map : r.map;
    const std::string out = output_path(f.out, f.images[n], images.size());
    const std::string over = output_path(overlay_base, f.images[n], images.size());
    write_png(out, upscale_nearest(viz::render_heatmap(map.data(), H, W), f.upscale));
    write_png(over, upscale_nearest(viz::render_overlay(images[n].display, map.data()), f.upscale));
    const Shape& s = session.shape(layer);
    std::cout << f.images[n] << ": class " << r.cls << " (" << model.label(r.cls) << "), score " << r.score
              << ", method " << f.method << " on '" << model.graph.value(layer).name << "' ("
              << s[1] << " channels, " << s[2] << "x" << s[3] << ")\n  heat map  " << out << "\n  overlay   " << over
              << "\n";
    if (!f.raw.empty()) {
      const std::string raw = output_path(f.raw, f.images[n], images.size());
      write_npy(raw, map.data(), {H, W});
      std::cout << "  raw map   " << raw << " (float32 " << H << "x" << W << ")\n";
    }
  }
}

}  // namespace

void register_cam(CLI::App& app, std::function<void()>& run) {
  auto flags = std::make_shared<CamFlags>();
  CLI::App* cmd = app.add_subcommand("cam", "class activation maps: CAM, Grad-CAM, Guided Grad-CAM");
  add_model_flags(cmd, flags->model);
  cmd->add_option("--image,-i", flags->images, "image file(s)")->required();
  cmd->add_option("--class,-c", flags->cls, "class to explain (default: each image's top-1)");
  cmd->add_option("--method", flags->method,
                  "cam (nets ending in global average pooling) | gradcam | guided-gradcam")
      ->capture_default_str();
  cmd->add_option("--layer", flags->layer,
                  "gradcam: the 4-D value (or node) whose activations are weighted (default: the last 4-D value "
                  "with more than one position before the scores)");
  cmd->add_option("--out,-o", flags->out, "heat map PNG (with several images: OUT_<image stem>.png)")->required();
  cmd->add_option("--overlay", flags->overlay, "overlay PNG (default: OUT_overlay.png)");
  cmd->add_option("--raw", flags->raw, "raw float32 map as .npy (H x W)");
  cmd->add_option("--upscale", flags->upscale, "enlarge the PNGs by this integer factor (small inputs)")
      ->capture_default_str();
  cmd->callback([flags, &run] { run = [flags] { run_cam(*flags); }; });
}

}  // namespace deepinside::cli
