// deepinside saliency: the paper's image-specific class saliency map, written as a heat map PNG, an
// overlay PNG on the preprocessed input and, on request, the raw float32 map (.npy).
#include <filesystem>
#include <iostream>
#include <memory>

#include "engine/error.h"
#include "engine/image.h"
#include "engine/npy.h"
#include "engine/session.h"
#include "tools/deepinside/commands.h"
#include "tools/deepinside/common.h"
#include "viz/render.h"
#include "viz/saliency.h"
#include "viz/scores.h"

namespace deepinside::cli {

namespace {

struct SaliencyFlags {
  ModelFlags model;
  std::vector<std::string> images;
  int cls = -1;
  std::string rule = "gradient";
  std::string out, overlay, raw;
  int upscale = 1;
};

std::string default_overlay_path(const std::string& out) {
  std::filesystem::path p(out);
  return (p.parent_path() / (p.stem().string() + "_overlay" + p.extension().string())).string();
}

void run_saliency(const SaliencyFlags& f) {
  require(f.upscale >= 1 && f.upscale <= 64, "--upscale must be between 1 and 64");
  const BackwardRule rule = parse_rule(f.rule);
  const Model model = load_model_from_flags(f.model);
  if (f.cls >= 0 || f.cls < -1) viz::check_class_index(f.cls, model);
  const auto backend = backend_from_flags(f.model);
  const std::vector<PreparedImage> images = load_images(f.images, model);

  std::vector<Tensor> items;
  for (const PreparedImage& p : images) items.push_back(p.input.clone());
  const Tensor batch = stack_batch(items);
  Session session(model.graph, *backend, batch.shape());
  const viz::SaliencyResult r =
      viz::compute_saliency(session, model, batch, std::vector<int>(images.size(), f.cls), rule);

  // Everything is computed before the first file is written.
  const int H = model.height, W = model.width;
  const std::string overlay_base = f.overlay.empty() ? default_overlay_path(f.out) : f.overlay;
  for (size_t n = 0; n < images.size(); ++n) {
    const float* map = r.map.data() + int64_t(n) * H * W;
    const std::string out = output_path(f.out, f.images[n], images.size());
    const std::string over = output_path(overlay_base, f.images[n], images.size());
    write_png(out, upscale_nearest(viz::render_heatmap(map, H, W), f.upscale));
    write_png(over, upscale_nearest(viz::render_overlay(images[n].display, map), f.upscale));
    std::cout << f.images[n] << ": class " << r.classes[n] << " (" << model.label(r.classes[n]) << "), score "
              << r.scores[n] << ", rule " << rule_name(rule) << "\n  heat map  " << out << "\n  overlay   "
              << over << "\n";
    if (!f.raw.empty()) {
      const std::string raw = output_path(f.raw, f.images[n], images.size());
      write_npy(raw, map, {H, W});
      std::cout << "  raw map   " << raw << " (float32 " << H << "x" << W << ")\n";
    }
  }
}

}  // namespace

void register_saliency(CLI::App& app, std::function<void()>& run) {
  auto flags = std::make_shared<SaliencyFlags>();
  CLI::App* cmd = app.add_subcommand("saliency", "image-specific class saliency map (paper Sec. 3)");
  add_model_flags(cmd, flags->model);
  cmd->add_option("--image,-i", flags->images, "image file(s); several are one batched pass")->required();
  cmd->add_option("--class,-c", flags->cls, "class to explain (default: each image's top-1)");
  cmd->add_option("--rule", flags->rule, "gradient|deconvnet|guided (the rectifier's backward rule)")
      ->capture_default_str();
  cmd->add_option("--out,-o", flags->out, "heat map PNG (with several images: OUT_<image stem>.png)")->required();
  cmd->add_option("--overlay", flags->overlay, "overlay PNG (default: OUT_overlay.png)");
  cmd->add_option("--raw", flags->raw, "raw float32 map as .npy (H x W)");
  cmd->add_option("--upscale", flags->upscale, "enlarge the PNGs by this integer factor (small inputs)")
      ->capture_default_str();
  cmd->callback([flags, &run] { run = [flags] { run_saliency(*flags); }; });
}

}  // namespace deepinside::cli
