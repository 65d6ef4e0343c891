// deepinside reconstruct: one neuron (or the k most activated) of a layer back-projected to the input
// under the gradient, DeconvNet and guided rules (paper Sec. 4, docs/reconstructions.md), written side by
// side with the input, with numbers that compare the three.
#include <cmath>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/image.h"
#include "engine/session.h"
#include "tools/deepinside/commands.h"
#include "tools/deepinside/common.h"
#include "viz/layers.h"
#include "viz/mosaic.h"
#include "viz/reconstruct.h"

namespace deepinside::cli {

namespace {

struct ReconstructFlags {
  ModelFlags model;
  std::string image, layer, out;
  int channel = -1, x = -1, y = -1, top_k = 0, upscale = 1;
  bool json = false, crop = false;
  CLI::Option *channel_opt = nullptr, *x_opt = nullptr, *y_opt = nullptr, *top_opt = nullptr;
};

nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

std::string fixed(double v) {
  if (!std::isfinite(v)) return "n/a";
  std::ostringstream s;
  s << std::fixed << std::setprecision(4) << v;
  return s.str();
}

void run_reconstruct(const ReconstructFlags& f) {
  require(f.upscale >= 1 && f.upscale <= 64, "--upscale must be between 1 and 64");
  require(f.channel_opt->count() + f.top_opt->count() == 1, "give either --channel K (a neuron) or --top-k K");
  require(f.x_opt->count() == f.y_opt->count(), "--x and --y go together");
  require(!f.x_opt->count() || f.channel_opt->count(), "--x and --y need --channel");
  const Model model = load_model_from_flags(f.model);
  const int layer = viz::resolve_value(model.graph, f.layer);
  const auto backend = backend_from_flags(f.model);
  const std::vector<PreparedImage> images = load_images({f.image}, model);
  const int C = model.channels, H = model.height, W = model.width;
  Session session(model.graph, *backend, Shape{1, C, H, W});
  viz::check_reconstruct_layer(session, layer);
  Tensor input = images[0].input.clone();
  input.reshape({1, C, H, W});
  session.forward(input);

  std::vector<viz::Neuron> neurons =
      f.top_opt->count() ? viz::top_neurons(session, layer, f.top_k)
                         : std::vector<viz::Neuron>{viz::find_neuron(session, layer, f.channel, f.y, f.x)};
  std::vector<viz::Reconstruction> recs;
  for (const viz::Neuron& n : neurons) recs.push_back(viz::reconstruct(session, layer, n));

  // The picture: one row per neuron, input (receptive field outlined) | gradient | deconvnet | guided.
  // With --crop every panel shows only the receptive field (nothing of any rule lies outside it).
  std::vector<std::vector<Image>> rows;
  for (const viz::Reconstruction& r : recs) {
    Image in = viz::to_rgb(images[0].display);
    const viz::Box& b = r.receptive_field;
    const auto panel = [&](const Image& img) {
      return upscale_nearest(f.crop ? crop_image(img, b.x0, b.y0, b.x1 - b.x0 + 1, b.y1 - b.y0 + 1) : img, f.upscale);
    };
    if (!f.crop && (b.y0 > 0 || b.x0 > 0 || b.y1 < H - 1 || b.x1 < W - 1))
      viz::draw_box(in, b.y0, b.x0, b.y1, b.x1, 0, 255, 0);
    std::vector<Image> row{panel(in)};
    for (const Tensor& t : r.images) row.push_back(panel(viz::render_signed(t.data(), C, H, W, model.preprocessing())));
    rows.push_back(std::move(row));
  }
  const Image picture = viz::tile_grid(rows);

  const std::string layer_name = model.graph.value(layer).name;
  if (f.json) {
    nlohmann::json j = {{"image", f.image}, {"layer", layer_name}, {"out", f.out},
                        {"rules", {"gradient", "deconvnet", "guided"}}, {"neurons", nlohmann::json::array()}};
    for (const viz::Reconstruction& r : recs) {
      nlohmann::json n = {{"channel", r.neuron.channel}, {"activation", r.neuron.activation},
                          {"receptive_field", {{"x0", r.receptive_field.x0}, {"y0", r.receptive_field.y0},
                                               {"x1", r.receptive_field.x1}, {"y1", r.receptive_field.y1}}}};
      if (r.neuron.y >= 0) n["x"] = r.neuron.x, n["y"] = r.neuron.y;
      n["energy_outside_receptive_field"] = {number(r.energy_outside[0]), number(r.energy_outside[1]),
                                             number(r.energy_outside[2])};
      n["pairs"] = nlohmann::json::array();
      for (const viz::RulePair& p : r.pairs)
        n["pairs"].push_back({{"a", rule_name(viz::kRules[p.a])}, {"b", rule_name(viz::kRules[p.b])},
                              {"pearson", number(p.pearson)}, {"sign_agreement", number(p.sign_agreement)}});
      j["neurons"].push_back(n);
    }
    write_png(f.out, picture);
    std::cout << j.dump() << "\n";
    return;
  }
  write_png(f.out, picture);
  std::cout << f.image << ": layer '" << layer_name << "' " << shape_to_string(session.shape(layer)) << "\n";
  for (const viz::Reconstruction& r : recs) {
    const viz::Box& b = r.receptive_field;
    std::cout << "  channel " << r.neuron.channel;
    if (r.neuron.y >= 0) std::cout << " at x " << r.neuron.x << ", y " << r.neuron.y;
    std::cout << ", activation " << r.neuron.activation << ", receptive field x " << b.x0 << ".." << b.x1 << ", y "
              << b.y0 << ".." << b.y1 << "\n    energy outside it: gradient " << fixed(r.energy_outside[0])
              << ", deconvnet " << fixed(r.energy_outside[1]) << ", guided " << fixed(r.energy_outside[2]) << "\n";
    for (const viz::RulePair& p : r.pairs)
      std::cout << "    " << std::left << std::setw(22)
                << (std::string(rule_name(viz::kRules[p.a])) + " vs " + rule_name(viz::kRules[p.b]))
                << std::right << " correlation " << fixed(p.pearson) << ", sign agreement " << fixed(p.sign_agreement)
                << "\n";
  }
  std::cout << "  picture   " << f.out << " (input | gradient | deconvnet | guided)\n";
}

}  // namespace

void register_reconstruct(CLI::App& app, std::function<void()>& run) {
  auto flags = std::make_shared<ReconstructFlags>();
  CLI::App* cmd = app.add_subcommand(
      "reconstruct", "a layer's neuron back-projected to the input: gradient vs DeconvNet vs guided (paper Sec. 4)");
  add_model_flags(cmd, flags->model);
  cmd->add_option("--image,-i", flags->image, "image file")->required();
  cmd->add_option("--layer", flags->layer, "the value (or node) holding the neuron (deepinside info lists them)")
      ->required();
  flags->channel_opt = cmd->add_option("--channel", flags->channel, "the neuron's channel (unit of a 2-D layer)");
  flags->x_opt = cmd->add_option("--x", flags->x, "the neuron's column (default: the channel's strongest)");
  flags->y_opt = cmd->add_option("--y", flags->y, "the neuron's row (default: the channel's strongest)");
  flags->top_opt = cmd->add_option("--top-k", flags->top_k,
                                   "the k channels with the highest activation, each at its strongest position");
  cmd->add_option("--out,-o", flags->out, "side-by-side PNG: input | gradient | deconvnet | guided")->required();
  cmd->add_option("--upscale", flags->upscale, "enlarge the panels by this integer factor (small inputs)")
      ->capture_default_str();
  cmd->add_flag("--crop", flags->crop, "show only each neuron's receptive field (else outlined in green)");
  cmd->add_flag("--json", flags->json, "print the numbers as one JSON object");
  cmd->callback([flags, &run] { run = [flags] { run_reconstruct(*flags); }; });
}

}  // namespace deepinside::cli
