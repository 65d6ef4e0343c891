// deepinside saliency: the paper's image-specific class saliency map, written as a heat map PNG, an
// overlay PNG on the preprocessed input and, on request, the raw float32 map (.npy). --method adds the
// paper's ten crops and flips, SmoothGrad, gradient x input and Integrated Gradients (docs/methods.md).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include "engine/error.h"
#include "engine/image.h"
#include "engine/npy.h"
#include "engine/session.h"
#include "tools/deepinside/commands.h"
#include "tools/deepinside/common.h"
#include "viz/render.h"
#include "viz/saliency.h"
#include "viz/saliency_extras.h"
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
  std::string method = "gradient";
  int samples = 50, steps = 50, batch_size = 16;
  float noise = 0.15f;
  uint64_t seed = 0;
  std::string baseline = "zero";
  CLI::Option *samples_opt = nullptr, *noise_opt = nullptr, *seed_opt = nullptr, *steps_opt = nullptr,
              *baseline_opt = nullptr;
};

// What one image's method computed: the map, the picture it is drawn over, and a line for the user.
struct MethodOutput {
  Tensor map;     // (h,w)
  Image display;  // the pixels the map lies on (the network input, or the full resized image for tencrop)
  std::string summary;
};

void check_method_flags(const SaliencyFlags& f) {
  static const std::vector<std::string> methods = {"gradient", "tencrop", "smoothgrad", "gradxinput", "ig"};
  require(std::find(methods.begin(), methods.end(), f.method) != methods.end(),
          "unknown --method '" + f.method + "' (use gradient, tencrop, smoothgrad, gradxinput or ig)");
  const auto only_for = [&](CLI::Option* opt, const char* flag, const char* method) {
    require(!opt->count() || f.method == method,
            std::string(flag) + " applies to --method " + method + ", not " + f.method);
  };
  only_for(f.samples_opt, "--samples", "smoothgrad");
  only_for(f.noise_opt, "--noise", "smoothgrad");
  only_for(f.seed_opt, "--seed", "smoothgrad");
  only_for(f.steps_opt, "--steps", "ig");
  only_for(f.baseline_opt, "--baseline", "ig");
  require(f.batch_size >= 1 && f.batch_size <= 4096, "--batch-size must be between 1 and 4096");
  require(f.samples >= 1 && f.samples <= 1000000, "--samples must be between 1 and 1000000");
  require(f.steps >= 1 && f.steps <= 1000000, "--steps must be between 1 and 1000000");
  require(std::isfinite(f.noise) && f.noise >= 0.0f, "--noise must be a number >= 0");
  require(f.baseline == "zero" || f.baseline == "black", "--baseline must be zero or black, got '" + f.baseline + "'");
}

// The ten crops' full picture: the image resized so that its shorter side is the card's resize_shorter
// (or, for cards that resize straight to the input size, 8/7 of the input's larger side, the ImageNet
// 256/224 ratio), not cropped. docs/methods.md.
Image ten_crop_full_image(const std::string& path, const Model& model) {
  std::string note;
  Image img = convert_channels(load_image(path), model.channels, &note);
  if (!note.empty()) std::cerr << "deepinside: note: " << path << ": " << note << "\n";
  const int H = model.height, W = model.width;
  const int shorter = model.preprocessing().resize_shorter > 0
                          ? model.preprocessing().resize_shorter
                          : int(std::ceil(std::max(H, W) * 8.0 / 7.0));
  const double s = double(shorter) / std::min(img.width, img.height);
  int w = std::max(1, int(std::lround(img.width * s))), h = std::max(1, int(std::lround(img.height * s)));
  if (img.width <= img.height) w = shorter; else h = shorter;
  require(w >= W && h >= H, "after resizing the shorter side to " + std::to_string(shorter) + " the image is " +
                                std::to_string(w) + "x" + std::to_string(h) + ", smaller than the " +
                                std::to_string(W) + "x" + std::to_string(H) + " crops");
  return resize_image(img, w, h);
}

MethodOutput run_method(const SaliencyFlags& f, const Model& model, Backend& backend, const std::string& path,
                        const PreparedImage& image, BackwardRule rule) {
  const int C = model.channels, H = model.height, W = model.width;
  std::ostringstream line;
  line << std::setprecision(6);
  MethodOutput out;
  if (f.method == "tencrop") {
    Image full = ten_crop_full_image(path, model);
    viz::BatchedGradients runner(model, backend, viz::balanced_batch(10, f.batch_size), /*fuse=*/true);
    const viz::MakeCrop make = [&](const viz::CropSpec& spec, float* chw) {
      Image crop = crop_image(full, spec.x0, spec.y0, W, H);
      if (spec.flip)
        for (int y = 0; y < H; ++y)
          for (int x = 0; x < W / 2; ++x)
            for (int c = 0; c < crop.channels; ++c)
              std::swap(crop.pixels[(size_t(y) * W + x) * crop.channels + c],
                        crop.pixels[(size_t(y) * W + (W - 1 - x)) * crop.channels + c]);
      const Tensor t = pixels_to_tensor(crop, model.preprocessing());
      std::memcpy(chw, t.data(), sizeof(float) * t.numel());
    };
    const viz::TenCropResult r = viz::ten_crop_saliency(runner, full.height, full.width, make, f.cls, rule);
    line << "class " << r.cls << " (" << model.label(r.cls) << "), mean probability over the 10 crops "
         << r.probability << ", method tencrop (" << full.width << "x" << full.height << " image, 10 crops of " << W
         << "x" << H << ", batch " << runner.batch() << "), rule " << rule_name(rule);
    out.map = r.map.clone();
    out.display = std::move(full);
  } else if (f.method == "smoothgrad") {
    viz::BatchedGradients runner(model, backend, viz::balanced_batch(f.samples, f.batch_size), /*fuse=*/true);
    viz::SmoothGradOptions o;
    o.samples = f.samples;
    o.noise = f.noise;
    o.seed = f.seed;
    o.rule = rule;
    const viz::Attribution r = viz::smoothgrad(runner, image.input, f.cls, o);
    line << "class " << r.cls << " (" << model.label(r.cls) << "), score " << r.score << ", method smoothgrad ("
         << f.samples << " samples, noise " << f.noise << ", batch " << runner.batch() << "), rule " << rule_name(rule);
    out.map = r.map.clone();
  } else if (f.method == "gradxinput") {
    viz::BatchedGradients runner(model, backend, 1, /*fuse=*/true);
    const viz::Attribution r = viz::gradient_x_input(runner, image.input, f.cls, rule);
    line << "class " << r.cls << " (" << model.label(r.cls) << "), score " << r.score
         << ", method gradxinput, rule " << rule_name(rule);
    out.map = r.map.clone();
  } else {  // ig
    viz::BatchedGradients runner(model, backend, viz::balanced_batch(f.steps, f.batch_size), /*fuse=*/true);
    Tensor baseline(Shape{C, H, W});
    if (f.baseline == "black")
      baseline = pixels_to_tensor(Image{W, H, C, std::vector<uint8_t>(size_t(W) * H * C, 0)}, model.preprocessing());
    viz::IntegratedGradientsOptions o;
    o.steps = f.steps;
    o.rule = rule;
    const viz::Attribution r = viz::integrated_gradients(runner, image.input, baseline, f.cls, o);
    line << "class " << r.cls << " (" << model.label(r.cls) << "), score " << r.score << ", method ig (" << f.steps
         << " steps, " << f.baseline << " baseline, batch " << runner.batch() << "), rule " << rule_name(rule)
         << "\n  completeness: sum of attributions " << r.attribution_sum << ", S_c(x) - S_c(baseline) "
         << r.score_difference;
    out.map = r.map.clone();
  }
  if (out.display.pixels.empty()) out.display = image.display;
  out.summary = line.str();
  return out;
}

std::string default_overlay_path(const std::string& out) {
  std::filesystem::path p(out);
  return (p.parent_path() / (p.stem().string() + "_overlay" + p.extension().string())).string();
}

void run_saliency(const SaliencyFlags& f) {
  require(f.upscale >= 1 && f.upscale <= 64, "--upscale must be between 1 and 64");
  check_method_flags(f);
  const BackwardRule rule = parse_rule(f.rule);
  const Model model = load_model_from_flags(f.model);
  if (f.cls >= 0 || f.cls < -1) viz::check_class_index(f.cls, model);
  const auto backend = backend_from_flags(f.model);
  const std::vector<PreparedImage> images = load_images(f.images, model);
  if (f.method != "gradient") {
    // One image at a time, each through batches of at most --batch-size inputs; every output is
    // computed before the first file is written.
    std::vector<MethodOutput> results;
    for (size_t n = 0; n < images.size(); ++n)
      results.push_back(run_method(f, model, *backend, f.images[n], images[n], rule));
    const std::string overlay_base = f.overlay.empty() ? default_overlay_path(f.out) : f.overlay;
    for (size_t n = 0; n < images.size(); ++n) {
      const MethodOutput& r = results[n];
      const int h = int(r.map.dim(0)), w = int(r.map.dim(1));
      const std::string out = output_path(f.out, f.images[n], images.size());
      const std::string over = output_path(overlay_base, f.images[n], images.size());
      write_png(out, upscale_nearest(viz::render_heatmap(r.map.data(), h, w), f.upscale));
      write_png(over, upscale_nearest(viz::render_overlay(r.display, r.map.data()), f.upscale));
      std::cout << f.images[n] << ": " << r.summary << "\n  heat map  " << out << "\n  overlay   " << over << "\n";
      if (!f.raw.empty()) {
        const std::string raw = output_path(f.raw, f.images[n], images.size());
        write_npy(raw, r.map.data(), {h, w});
        std::cout << "  raw map   " << raw << " (float32 " << h << "x" << w << ")\n";
      }
    }
    return;
  }

  std::vector<Tensor> items;
  for (const PreparedImage& p : images) items.push_back(p.input.clone());
  const Tensor batch = stack_batch(items);
  // Only the scores and the input gradient are read: the session may fuse (docs/fusion.md).
  Session session(model.graph, *backend, batch.shape(), SessionOptions{true, {model.scores_value}});
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
  cmd->add_option("--method", flags->method,
                  "gradient (the paper's map) | tencrop (10 crops and flips, averaged) | smoothgrad | gradxinput "
                  "(gradient x input) | ig (Integrated Gradients); docs/methods.md")
      ->capture_default_str();
  flags->samples_opt = cmd->add_option("--samples", flags->samples, "smoothgrad: noisy copies averaged")
                           ->capture_default_str();
  flags->noise_opt = cmd->add_option("--noise", flags->noise,
                                     "smoothgrad: noise sigma as a fraction of the input's range (max - min)")
                         ->capture_default_str();
  flags->seed_opt = cmd->add_option("--seed", flags->seed, "smoothgrad: seed of the noise")->capture_default_str();
  flags->steps_opt = cmd->add_option("--steps", flags->steps, "ig: points on the path from the baseline (midpoint rule)")
                         ->capture_default_str();
  flags->baseline_opt = cmd->add_option("--baseline", flags->baseline,
                                        "ig: zero (the mean image: a zero input tensor) | black (black pixels)")
                            ->capture_default_str();
  cmd->add_option("--batch-size", flags->batch_size,
                  "most inputs per forward/backward pass (bounds memory whatever --samples or --steps)")
      ->capture_default_str();
  cmd->callback([flags, &run] { run = [flags] { run_saliency(*flags); }; });
}

}  // namespace deepinside::cli
