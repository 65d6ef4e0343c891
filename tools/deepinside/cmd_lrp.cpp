// deepinside lrp: layer-wise relevance propagation (docs/lrp.md). The class score S_c is
// redistributed down to the pixels by the epsilon or the z+ rule; the heat map is the relevance
// summed over the colour channels, red for positive, blue for negative. Prints the conservation
// ratio sum(R) / S_c.
#include <cmath>
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
#include "viz/diverging.h"
#include "viz/lrp.h"
#include "viz/scores.h"

namespace deepinside::cli {

namespace {

struct LrpFlags {
  ModelFlags model;
  std::vector<std::string> images;
  int cls = -1;
  std::string rule = "epsilon";
  float epsilon = 0.0f;
  bool zb = false, layers = false;
  std::string out, overlay, raw;
  int upscale = 1;
  CLI::Option* epsilon_opt = nullptr;
};

// The input's range per channel: the card's preprocessing applied to pixels 0 and 255.
void input_bounds(const Model& model, std::vector<float>& low, std::vector<float>& high) {
  const int C = model.channels;
  const Tensor black = pixels_to_tensor(Image{1, 1, C, std::vector<uint8_t>(C, 0)}, model.preprocessing());
  const Tensor white = pixels_to_tensor(Image{1, 1, C, std::vector<uint8_t>(C, 255)}, model.preprocessing());
  low.clear();
  high.clear();
  for (int c = 0; c < C; ++c) {
    low.push_back(std::min(black[c], white[c]));
    high.push_back(std::max(black[c], white[c]));
  }
}

void print_layers(const viz::Lrp& lrp, const Graph& graph, int n, float score) {
  std::cout << "  relevance per layer (sum at each node's output, as a fraction of S_c):\n";
  for (int node_index : lrp.nodes()) {
    const Node& node = graph.nodes()[node_index];
    const double sum = viz::per_image_sums(lrp.relevance(node.outputs[0])).at(n);
    std::cout << "    " << std::left << std::setw(40) << node.name << std::setw(20) << op_name(node.kind)
              << std::setw(8) << viz::lrp_step_name(lrp.step(node_index)) << std::right << std::setw(12) << sum
              << "  " << (score != 0.0f ? sum / score : 0.0) << "\n";
  }
}

void run_lrp(const LrpFlags& f) {
  require(f.upscale >= 1 && f.upscale <= 64, "--upscale must be between 1 and 64");
  viz::LrpOptions o;
  o.rule = viz::parse_lrp_rule(f.rule);
  require(!f.epsilon_opt->count() || o.rule == viz::LrpRule::epsilon, "--epsilon applies to --rule epsilon only");
  if (f.epsilon_opt->count()) o.epsilon = f.epsilon;  // else LrpOptions' default, 0.01
  require(std::isfinite(o.epsilon) && o.epsilon >= 0.0f, "--epsilon must be a number >= 0");
  const Model model = load_model_from_flags(f.model);
  if (f.cls >= 0 || f.cls < -1) viz::check_class_index(f.cls, model);
  if (f.zb) input_bounds(model, o.input_low, o.input_high);
  const auto backend = backend_from_flags(f.model);
  const std::vector<PreparedImage> images = load_images(f.images, model);

  std::vector<Tensor> items;
  for (const PreparedImage& p : images) items.push_back(p.input.clone());
  const Tensor batch = stack_batch(items);
  Session session(model.graph, *backend, batch.shape());
  viz::Lrp lrp(session, model.scores_value);  // refuses a net it has no rules for, before any work
  const viz::LrpResult r =
      viz::compute_lrp(lrp, session, model, batch, std::vector<int>(images.size(), f.cls), o);

  // Every picture is made before the first file is written.
  const int H = model.height, W = model.width;
  std::vector<Image> heat, over;
  for (size_t n = 0; n < images.size(); ++n) {
    const float* map = r.map.data() + int64_t(n) * H * W;
    heat.push_back(upscale_nearest(viz::render_diverging(map, H, W), f.upscale));
    if (!f.overlay.empty())
      over.push_back(upscale_nearest(viz::render_diverging_overlay(images[n].display, map), f.upscale));
  }
  std::ostringstream rule;
  rule << viz::lrp_rule_name(o.rule);
  if (o.rule == viz::LrpRule::epsilon) rule << " (epsilon " << o.epsilon << ")";
  if (f.zb) rule << ", first layer z^B";
  for (size_t n = 0; n < images.size(); ++n) {
    const float* map = r.map.data() + int64_t(n) * H * W;
    double positive = 0.0, negative = 0.0;
    const int64_t per = r.relevance.numel() / r.relevance.dim(0);
    for (int64_t i = 0; i < per; ++i) {
      const double v = r.relevance[int64_t(n) * per + i];
      (v > 0 ? positive : negative) += v;
    }
    const std::string out = output_path(f.out, f.images[n], images.size());
    write_png(out, heat[n]);
    std::cout << f.images[n] << ": class " << r.classes[n] << " (" << model.label(r.classes[n]) << "), score S_c "
              << r.scores[n] << ", LRP rule " << rule.str() << "\n  relevance: sum " << r.relevance_sum[n]
              << ", conservation ratio sum/S_c " << r.conservation[n] << " (positive " << positive << ", negative "
              << negative << ")\n  heat map  " << out << "\n";
    if (!f.overlay.empty()) {
      const std::string over_path = output_path(f.overlay, f.images[n], images.size());
      write_png(over_path, over[n]);
      std::cout << "  overlay   " << over_path << "\n";
    }
    if (!f.raw.empty()) {
      const std::string raw = output_path(f.raw, f.images[n], images.size());
      write_npy(raw, map, {H, W});
      std::cout << "  raw map   " << raw << " (float32 " << H << "x" << W << ", relevance summed over channels)\n";
    }
    if (f.layers) print_layers(lrp, model.graph, int(n), r.scores[n]);
  }
}

}  // namespace

void register_lrp(CLI::App& app, std::function<void()>& run) {
  auto flags = std::make_shared<LrpFlags>();
  CLI::App* cmd = app.add_subcommand("lrp", "layer-wise relevance propagation heat map (epsilon or z+ rule)");
  add_model_flags(cmd, flags->model);
  cmd->add_option("--image,-i", flags->images, "image file(s); several are one batched pass")->required();
  cmd->add_option("--class,-c", flags->cls, "class to explain (default: each image's top-1)");
  cmd->add_option("--rule", flags->rule, "epsilon | zplus (alpha1-beta0) for every linear layer")->capture_default_str();
  flags->epsilon_opt = cmd->add_option("--epsilon", flags->epsilon,
                                       "epsilon rule: s = R / (z + eps sign z) (default 0.01; 0 = LRP-0)");
  cmd->add_flag("--zb", flags->zb,
                "the layers reading the image use the z^B rule, bounded by the card's pixel range");
  cmd->add_option("--out,-o", flags->out, "heat map PNG, red positive, blue negative (several images: OUT_<stem>.png)")
      ->required();
  cmd->add_option("--overlay", flags->overlay, "also the heat map blended over the input, as a PNG");
  cmd->add_option("--raw", flags->raw, "raw float32 map as .npy (H x W, relevance summed over channels)");
  cmd->add_option("--upscale", flags->upscale, "enlarge the PNGs by this integer factor (small inputs)")
      ->capture_default_str();
  cmd->add_flag("--layers", flags->layers, "print the relevance that reaches each layer (conservation per layer)");
  cmd->callback([flags, &run] { run = [flags] { run_lrp(*flags); }; });
}

}  // namespace deepinside::cli
