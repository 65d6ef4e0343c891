// deepinside class-model: the paper's class model visualisation (Sec. 2), many classes as one batch;
// deepinside neuron: the same ascent on a channel or a unit of any layer (activation maximisation).
// Both write one PNG per image, a labelled grid, the objective curve (CSV) and a summary (JSON).
#include <filesystem>
#include <iomanip>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/atomic_file.h"
#include "engine/error.h"
#include "tools/deepinside/ascent_flags.h"
#include "tools/deepinside/commands.h"
#include "tools/deepinside/common.h"
#include "viz/class_model.h"
#include "viz/grid.h"
#include "viz/layers.h"
#include "viz/scores.h"

namespace deepinside::cli {

namespace {

std::string path_in(const std::string& dir, const std::string& file) {
  return (std::filesystem::path(dir) / file).string();
}

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

struct ClassModelFlags {
  ModelFlags model;
  AscentFlags ascent{viz::class_model_defaults()};
  std::vector<std::string> classes;
  std::string objective = "score";
  std::string out;
  int upscale = 1, columns = 0, grid_tile = 0;
};

void run_class_model(const ClassModelFlags& f) {
  require(f.upscale >= 1 && f.upscale <= 64, "--upscale must be between 1 and 64");
  const viz::ClassObjectiveKind kind = viz::parse_class_objective(f.objective);
  viz::check_settings(f.ascent.settings);
  const Model model = load_model_from_flags(f.model);
  const std::vector<int> classes = parse_ints(f.classes, "--class");
  for (int c : classes) viz::check_class_index(c, model);
  viz::check_octaves(model, model.scores_value, f.ascent.settings, model.height, model.width);
  const auto backend = backend_from_flags(f.model);
  prepare_out_dir(f.out);

  ProgressBar bar(viz::class_objective_name(kind), f.ascent.quiet);
  const viz::ClassModelResult r = viz::class_model_visualisation(
      model, *backend, classes, kind, f.ascent.settings, [&](const viz::AscentProgress& p) { bar(p); });
  bar.done();

  // Everything is computed; now the files.
  const viz::LevelSpace levels = viz::LevelSpace::from(model.preprocessing(), model.channels);
  const int N = int(classes.size()), H = model.height, W = model.width;
  const int64_t per = int64_t(model.channels) * H * W;
  std::vector<Image> tiles;
  std::vector<std::string> labels;
  for (int n = 0; n < N; ++n) {
    Image img = levels.to_image(r.ascent.levels.data() + n * per, H, W);
    write_picture(path_in(f.out, "class_" + std::to_string(classes[n]) + ".png"), img, f.upscale);
    tiles.push_back(grid_tile(upscale_nearest(img, f.upscale), f.grid_tile));
    labels.push_back(std::to_string(classes[n]) + " " + viz::short_label(model.label(classes[n])) + "\nS " +
                     fixed(r.result.score[n], 1) + "  P " + fixed(r.picture.prob[n], 3));
  }
  write_png(path_in(f.out, "grid.png"), viz::labelled_grid(tiles, labels, f.columns));

  std::ostringstream csv;
  csv << "step";
  for (int c : classes) csv << ",score_" << c << ",prob_" << c;
  csv << "\n";
  for (size_t t = 0; t < r.score_curve.size(); ++t) {
    csv << t;
    for (int n = 0; n < N; ++n) csv << "," << r.score_curve[t][n] << "," << r.prob_curve[t][n];
    csv << "\n";
  }
  write_file_atomic(path_in(f.out, "scores.csv"), csv.str());

  nlohmann::json j = {{"model", f.model.model},
                      {"objective", viz::class_objective_name(kind)},
                      {"settings", nlohmann::json::parse(settings_json(f.ascent.settings))},
                      {"classes", nlohmann::json::array()}};
  for (int n = 0; n < N; ++n)
    j["classes"].push_back({{"class", classes[n]},
                            {"label", model.label(classes[n])},
                            {"file", "class_" + std::to_string(classes[n]) + ".png"},
                            {"score_start", r.start.score[n]},
                            {"score", r.result.score[n]},
                            {"prob", r.result.prob[n]},
                            {"top1", r.result.top1[n]},
                            {"picture_prob", r.picture.prob[n]},
                            {"picture_top1", r.picture.top1[n]},
                            {"zero_gradient_at_start", bool(r.ascent.zero_start_gradient[n])}});
  write_file_atomic(path_in(f.out, "summary.json"), j.dump(2) + "\n");

  for (int n = 0; n < N; ++n) {
    std::cout << "class " << classes[n] << " (" << model.label(classes[n]) << "): score " << fixed(r.start.score[n], 3)
              << " -> " << fixed(r.result.score[n], 3) << ", prob " << fixed(r.result.prob[n], 4) << ", top-1 "
              << r.result.top1[n] << "; as 8-bit picture: prob " << fixed(r.picture.prob[n], 4) << ", top-1 "
              << r.picture.top1[n] << "\n";
    if (r.ascent.zero_start_gradient[n])
      std::cerr << "deepinside: warning: class " << classes[n] << " has a zero gradient at the mean image (its score "
                << "is switched off there), so the ascent could not move; try --octaves or another model\n";
  }
  std::cout << "wrote " << N << " class models, grid.png, scores.csv and summary.json to " << f.out << "\n";
}

struct NeuronFlags {
  ModelFlags model;
  AscentFlags ascent{viz::neuron_defaults()};
  std::string layer;
  std::vector<std::string> channels;
  int x = -1, y = -1;
  float init_noise = 8.0f;
  std::string out;
  int upscale = 1, columns = 0, grid_tile = 0;
};

void run_neuron(const NeuronFlags& f) {
  require(f.upscale >= 1 && f.upscale <= 64, "--upscale must be between 1 and 64");
  require((f.x < 0) == (f.y < 0), "a single unit needs both --x and --y");
  viz::check_settings(f.ascent.settings);
  const Model model = load_model_from_flags(f.model);
  const int layer = viz::resolve_value(model.graph, f.layer);
  const std::vector<int> channels = parse_ints(f.channels, "--channel");
  const auto backend = backend_from_flags(f.model);
  const std::string name = model.graph.value(layer).name;
  viz::check_unit(model, layer, channels, f.y, f.x, f.ascent.settings.octaves);  // before anything is created
  viz::check_octaves(model, layer, f.ascent.settings, model.height, model.width);
  prepare_out_dir(f.out);

  ProgressBar bar("activation", f.ascent.quiet);
  const viz::AscentResult r = viz::activation_maximisation(model, *backend, layer, channels, f.y, f.x, f.init_noise,
                                                           f.ascent.settings, [&](const viz::AscentProgress& p) { bar(p); });
  bar.done();

  const viz::LevelSpace levels = viz::LevelSpace::from(model.preprocessing(), model.channels);
  const int N = int(channels.size()), H = model.height, W = model.width;
  const int64_t per = int64_t(model.channels) * H * W;
  const std::string unit = f.x >= 0 ? "_y" + std::to_string(f.y) + "_x" + std::to_string(f.x) : "";
  std::vector<Image> tiles;
  std::vector<std::string> labels;
  nlohmann::json j = {{"model", f.model.model},
                      {"layer", name},
                      {"objective", f.x >= 0 ? "unit value[n, k, y, x]" : "channel mean over positions"},
                      {"settings", nlohmann::json::parse(settings_json(f.ascent.settings))},
                      {"init_noise", f.init_noise},
                      {"channels", nlohmann::json::array()}};
  for (int n = 0; n < N; ++n) {
    const std::string file = "channel_" + std::to_string(channels[n]) + unit + ".png";
    Image img = levels.to_image(r.levels.data() + n * per, H, W);
    write_picture(path_in(f.out, file), img, f.upscale);
    tiles.push_back(grid_tile(upscale_nearest(img, f.upscale), f.grid_tile));
    labels.push_back("ch " + std::to_string(channels[n]) + (f.x >= 0 ? " (" + std::to_string(f.x) + "," +
                                                                           std::to_string(f.y) + ")" : "") +
                     "\nact " + fixed(r.final_objective[n], 2));
    j["channels"].push_back({{"channel", channels[n]},
                             {"file", file},
                             {"activation_start", r.curve.front()[n]},
                             {"activation", r.final_objective[n]},
                             {"zero_gradient_at_start", bool(r.zero_start_gradient[n])}});
  }
  write_png(path_in(f.out, "grid.png"), viz::labelled_grid(tiles, labels, f.columns));
  std::ostringstream csv;
  csv << "step";
  for (int k : channels) csv << ",channel_" << k;
  csv << "\n";
  for (size_t t = 0; t < r.curve.size(); ++t) {
    csv << t;
    for (double v : r.curve[t]) csv << "," << v;
    csv << "\n";
  }
  write_file_atomic(path_in(f.out, "curve.csv"), csv.str());
  write_file_atomic(path_in(f.out, "summary.json"), j.dump(2) + "\n");
  for (int n = 0; n < N; ++n) {
    std::cout << name << " channel " << channels[n] << unit << ": activation " << fixed(r.curve.front()[n], 4) << " -> "
              << fixed(r.final_objective[n], 4) << "\n";
    if (r.zero_start_gradient[n])
      std::cerr << "deepinside: warning: channel " << channels[n] << " has a zero gradient at the start image; "
                << "raise --init-noise\n";
  }
  std::cout << "wrote " << N << " pictures, grid.png, curve.csv and summary.json to " << f.out << "\n";
}

}  // namespace

void register_class_model(CLI::App& app, std::function<void()>& run) {
  auto f = std::make_shared<ClassModelFlags>();
  CLI::App* cmd = app.add_subcommand("class-model", "class model visualisation: an image maximising a class score (paper Sec. 2)");
  add_model_flags(cmd, f->model);
  cmd->add_option("--class,-c", f->classes, "class index(es), e.g. 1,9,130 (one image each, one batch)")->required();
  cmd->add_option("--objective", f->objective, "score (the paper: unnormalised S_c) | logprob (log softmax) | prob (softmax)")
      ->capture_default_str();
  add_ascent_flags(cmd, f->ascent);
  cmd->add_option("--out,-o", f->out, "output folder: class_<c>.png, grid.png, scores.csv, summary.json")->required();
  cmd->add_option("--upscale", f->upscale, "enlarge the PNGs by this integer factor (small inputs)")->capture_default_str();
  cmd->add_option("--columns", f->columns, "grid columns (0: about square)")->capture_default_str();
  cmd->add_option("--grid-tile", f->grid_tile, "longer side of each picture in grid.png, in pixels (0: as written)")
      ->capture_default_str();
  cmd->callback([f, &run] { run = [f] { run_class_model(*f); }; });
}

void register_neuron(CLI::App& app, std::function<void()>& run) {
  auto f = std::make_shared<NeuronFlags>();
  CLI::App* cmd = app.add_subcommand("neuron", "activation maximisation: an image maximising a channel or unit of any layer");
  add_model_flags(cmd, f->model);
  cmd->add_option("--layer,-l", f->layer, "value or node name (`deepinside info` lists them)")->required();
  cmd->add_option("--channel,-k", f->channels, "channel index(es), e.g. 3,17 (one image each, one batch)")->required();
  cmd->add_option("--x", f->x, "column of a single unit (with --y); default: the channel's mean over positions");
  cmd->add_option("--y", f->y, "row of a single unit (with --x)");
  cmd->add_option("--init-noise", f->init_noise, "std of the start image's noise in grey levels (0: the mean image)")
      ->capture_default_str();
  add_ascent_flags(cmd, f->ascent);
  cmd->add_option("--out,-o", f->out, "output folder: channel_<k>.png, grid.png, curve.csv, summary.json")->required();
  cmd->add_option("--upscale", f->upscale, "enlarge the PNGs by this integer factor (small inputs)")->capture_default_str();
  cmd->add_option("--columns", f->columns, "grid columns (0: about square)")->capture_default_str();
  cmd->add_option("--grid-tile", f->grid_tile, "longer side of each picture in grid.png, in pixels (0: as written)")
      ->capture_default_str();
  cmd->callback([f, &run] { run = [f] { run_neuron(*f); }; });
}

}  // namespace deepinside::cli
