// deepinside sanity: Adebayo et al.'s cascading randomisation (docs/sanity.md). The weights are
// randomised layer by layer from the top; after each layer, each method's map is compared with its map on
// the trained weights by Spearman's rank correlation.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/image.h"
#include "tools/deepinside/commands.h"
#include "tools/deepinside/common.h"
#include "viz/cam.h"
#include "viz/layers.h"
#include "viz/mosaic.h"
#include "viz/render.h"
#include "viz/sanity.h"
#include "viz/scores.h"

namespace deepinside::cli {

namespace {

struct SanityFlags {
  ModelFlags model;
  std::string image, methods = "gradient,guided,smoothgrad,gradxinput,gradcam,guided-gradcam", layer, out;
  int cls = -1, depth = -1, samples = 16, steps = 16, batch_size = 16, cell = 96;
  float noise = 0.15f;
  uint64_t seed = 0;
  bool json = false;
};

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

// The steps shown in the picture: the trained weights, then 1, 2, 4, 8, ... layers randomised, and the last.
std::set<int> picture_steps(int depth) {
  std::set<int> s{0, depth};
  for (int k = 1; k < depth; k *= 2) s.insert(k);
  return s;
}

void run_sanity(const SanityFlags& f) {
  viz::SanityOptions o;
  o.methods = split_list(f.methods);
  require(!o.methods.empty(), "--methods is empty");
  for (const std::string& m : o.methods)
    require(std::count(viz::sanity_method_names().begin(), viz::sanity_method_names().end(), m) == 1,
            "unknown method '" + m + "' in --methods (use gradient, deconvnet, guided, smoothgrad, gradxinput, ig, "
            "gradcam, guided-gradcam)");
  require(f.depth == -1 || f.depth >= 1, "--depth must be at least 1 (or -1: every layer)");
  require(f.samples >= 1 && f.steps >= 1, "--samples and --steps must be at least 1");
  require(f.batch_size >= 1 && f.batch_size <= 4096, "--batch-size must be between 1 and 4096");
  require(f.cell >= 16 && f.cell <= 1024, "--cell must be between 16 and 1024");
  require(std::isfinite(f.noise) && f.noise >= 0.0f, "--noise must be a number >= 0");
  o.depth = f.depth;
  o.seed = f.seed;
  o.batch = f.batch_size;
  o.smoothgrad.samples = f.samples;
  o.smoothgrad.noise = f.noise;
  o.smoothgrad.seed = f.seed;
  o.ig.steps = f.steps;

  Model model = load_model_from_flags(f.model);
  if (f.cls != -1) viz::check_class_index(f.cls, model);
  if (!f.layer.empty()) {
    o.gradcam_layer = viz::resolve_value(model.graph, f.layer);
    viz::check_cam_layer(model, o.gradcam_layer);
  } else if (std::count(o.methods.begin(), o.methods.end(), "gradcam") ||
             std::count(o.methods.begin(), o.methods.end(), "guided-gradcam")) {
    o.gradcam_layer = viz::default_gradcam_layer(model);
  }
  const auto backend = backend_from_flags(f.model);
  const std::vector<PreparedImage> images = load_images({f.image}, model);
  const int H = model.height, W = model.width;
  const int layers = int(viz::layers_top_down(model).size());
  const int depth = f.depth < 0 ? layers : std::min(f.depth, layers);
  const std::set<int> shown = picture_steps(depth);

  // Cells of the picture, one row per method, kept only for the steps shown.
  const int cell_w = W >= H ? f.cell : std::max(1, f.cell * W / H), cell_h = H >= W ? f.cell : std::max(1, f.cell * H / W);
  std::vector<std::vector<Image>> rows(o.methods.size());
  const auto t0 = std::chrono::steady_clock::now();
  const viz::SanityReport report = viz::cascading_randomization(
      model, *backend, images[0].input, f.cls, o, [&](int step, const std::vector<Tensor>& maps) {
        if (!f.json) std::cerr << "\r  step " << step << "/" << depth << std::flush;
        if (f.out.empty() || !shown.count(step)) return;
        for (size_t m = 0; m < maps.size(); ++m)
          rows[m].push_back(resize_image(viz::render_heatmap(maps[m].data(), H, W), cell_w, cell_h));
      });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!f.json) std::cerr << "\r";
  if (!f.out.empty()) write_png(f.out, viz::tile_grid(rows, 3));

  const auto rho_text = [](double v) {
    if (!std::isfinite(v)) return std::string("n/a");
    std::ostringstream s;
    s << std::fixed << std::setprecision(3) << v;
    return s.str();
  };
  if (f.json) {
    nlohmann::json j = {{"image", f.image}, {"class", report.cls}, {"label", model.label(report.cls)},
                        {"methods", report.methods}, {"seconds", seconds}, {"steps", nlohmann::json::array()}};
    if (o.gradcam_layer >= 0) j["gradcam_layer"] = model.graph.value(o.gradcam_layer).name;
    j["smoothgrad"] = {{"samples", f.samples}, {"noise", f.noise}};
    for (size_t s = 0; s < report.steps.size(); ++s) {
      nlohmann::json rho = nlohmann::json::object();
      for (size_t m = 0; m < report.methods.size(); ++m) {
        const double v = report.steps[s].rho[m];
        rho[report.methods[m]] = std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
      }
      j["steps"].push_back({{"randomised", int(s)}, {"layer", report.steps[s].layer}, {"spearman", rho}});
    }
    if (!f.out.empty()) j["picture"] = f.out;
    std::cout << j.dump() << "\n";
    return;
  }
  std::cout << f.image << ": class " << report.cls << " (" << model.label(report.cls)
            << "), Spearman rank correlation of each map with the trained model's, layers randomised from the top";
  if (o.gradcam_layer >= 0) std::cout << "; Grad-CAM on '" << model.graph.value(o.gradcam_layer).name << "'";
  std::cout << "\n\n  " << std::left << std::setw(4) << "#" << std::setw(34) << "layer randomised (cumulative)";
  for (const std::string& m : report.methods) std::cout << std::right << std::setw(15) << m;
  std::cout << "\n";
  for (size_t s = 0; s < report.steps.size(); ++s) {
    std::cout << "  " << std::left << std::setw(4) << s << std::setw(34)
              << (s == 0 ? std::string("(trained weights)") : report.steps[s].layer);
    for (double v : report.steps[s].rho) std::cout << std::right << std::setw(15) << rho_text(v);
    std::cout << "\n";
  }
  std::cout << "\n  " << std::fixed << std::setprecision(1) << seconds << " s";
  if (!f.out.empty()) std::cout << "; picture " << f.out << " (rows: methods; columns: steps "
                                << [&] {
                                     std::string t;
                                     for (int s : shown) t += (t.empty() ? "" : ", ") + std::to_string(s);
                                     return t;
                                   }() << ")";
  std::cout << "\n";
}

}  // namespace

void register_sanity(CLI::App& app, std::function<void()>& run) {
  auto flags = std::make_shared<SanityFlags>();
  CLI::App* cmd = app.add_subcommand(
      "sanity", "sanity check of saliency methods: cascading weight randomisation (Adebayo et al. 2018)");
  add_model_flags(cmd, flags->model);
  cmd->add_option("--image,-i", flags->image, "image file")->required();
  cmd->add_option("--class,-c", flags->cls, "class to explain (default: the trained model's top-1)");
  cmd->add_option("--methods", flags->methods,
                  "comma-separated: gradient, deconvnet, guided, smoothgrad, gradxinput, ig, gradcam, guided-gradcam")
      ->capture_default_str();
  cmd->add_option("--depth", flags->depth, "layers to randomise from the top (-1: all)")->capture_default_str();
  cmd->add_option("--layer", flags->layer, "Grad-CAM's layer (default: as deepinside cam)");
  cmd->add_option("--samples", flags->samples, "SmoothGrad's samples")->capture_default_str();
  cmd->add_option("--noise", flags->noise, "SmoothGrad's noise level")->capture_default_str();
  cmd->add_option("--steps", flags->steps, "Integrated Gradients' steps (zero baseline)")->capture_default_str();
  cmd->add_option("--batch-size", flags->batch_size, "most inputs per pass")->capture_default_str();
  cmd->add_option("--seed", flags->seed, "seed of the random weights and of SmoothGrad's noise")->capture_default_str();
  cmd->add_option("--out,-o", flags->out, "PNG of the maps: one row per method, columns = steps 0, 1, 2, 4, ..., last");
  cmd->add_option("--cell", flags->cell, "size of a map in the picture, in pixels")->capture_default_str();
  cmd->add_flag("--json", flags->json, "print the table as one JSON object");
  cmd->callback([flags, &run] { run = [flags] { run_sanity(*flags); }; });
}

}  // namespace deepinside::cli
