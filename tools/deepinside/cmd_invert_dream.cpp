// deepinside invert: feature inversion (an image whose activations at a layer match a photo's, found
// from noise); deepinside dream: Deep Dream (a photo whose layer activations are amplified over
// octaves). Both are the gradient ascent of viz/optimize.h; docs/inversion-dream.md.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/atomic_file.h"
#include "engine/error.h"
#include "engine/preprocess.h"
#include "tools/deepinside/ascent_flags.h"
#include "tools/deepinside/commands.h"
#include "tools/deepinside/common.h"
#include "viz/class_model.h"
#include "viz/dream.h"
#include "viz/grid.h"
#include "viz/layers.h"
#include "viz/invert.h"

namespace deepinside::cli {

namespace {

std::string path_in(const std::string& dir, const std::string& file) {
  return (std::filesystem::path(dir) / file).string();
}

std::string stem(const std::string& path) { return std::filesystem::path(path).stem().string(); }

std::vector<std::string> split_layers(const std::vector<std::string>& items) {
  std::vector<std::string> out;
  for (const std::string& item : items) {
    std::stringstream in(item);
    std::string part;
    while (std::getline(in, part, ','))
      if (!part.empty()) out.push_back(part);
  }
  require(!out.empty(), "--layer is empty");
  return out;
}

struct InvertFlags {
  ModelFlags model;
  AscentFlags ascent{viz::invert_defaults()};
  std::vector<std::string> images, layers;
  float init_noise = 8.0f;
  std::string out;
  int upscale = 1, grid_tile = 0;
};

void run_invert(const InvertFlags& f) {
  require(f.upscale >= 1 && f.upscale <= 64, "--upscale must be between 1 and 64");
  viz::check_settings(f.ascent.settings);
  const Model model = load_model_from_flags(f.model);
  std::vector<int> layers;
  for (const std::string& name : split_layers(f.layers)) {
    layers.push_back(viz::resolve_value(model.graph, name));
    viz::layer_shape(model, layers.back());
    viz::check_octaves(model, layers.back(), f.ascent.settings, model.height, model.width);
  }
  require(f.init_noise >= 0.0f, "--init-noise must be >= 0");
  const auto backend = backend_from_flags(f.model);
  const std::vector<PreparedImage> images = load_images(f.images, model);
  std::vector<Tensor> items;
  for (const PreparedImage& p : images) items.push_back(p.input.clone());
  const viz::LevelSpace levels = viz::LevelSpace::from(model.preprocessing(), model.channels);
  const Tensor target = levels.to_levels(stack_batch(items));
  prepare_out_dir(f.out);

  std::vector<viz::AscentResult> results;
  for (int layer : layers) {
    const std::string name = model.graph.value(layer).name;
    if (!f.ascent.quiet) std::cerr << "inverting " << name << "\n";
    ProgressBar bar("-loss", f.ascent.quiet);
    results.push_back(viz::invert_features(model, *backend, layer, target, f.init_noise, f.ascent.settings,
                                           [&](const viz::AscentProgress& p) { bar(p); }));
    bar.done();
  }

  const int N = int(images.size()), H = model.height, W = model.width;
  const int64_t per = int64_t(model.channels) * H * W;
  std::vector<Image> tiles;
  std::vector<std::string> labels;
  nlohmann::json j = {{"model", f.model.model},
                      {"objective", "-1/2 ||phi(I) - phi(I0)||^2 / ||phi(I0)||^2"},
                      {"settings", nlohmann::json::parse(settings_json(f.ascent.settings))},
                      {"init_noise", f.init_noise},
                      {"results", nlohmann::json::array()}};
  std::ostringstream csv;
  csv << "layer,step";
  for (int n = 0; n < N; ++n) csv << "," << stem(f.images[n]);
  csv << "\n";
  for (int n = 0; n < N; ++n) {
    const Image input = levels.to_image(target.data() + n * per, H, W);
    write_picture(path_in(f.out, stem(f.images[n]) + "_input.png"), input, f.upscale);
    tiles.push_back(grid_tile(upscale_nearest(input, f.upscale), f.grid_tile));
    labels.push_back(stem(f.images[n]) + "\ninput");
    for (size_t l = 0; l < layers.size(); ++l) {
      const std::string name = model.graph.value(layers[l]).name;
      const std::string file = stem(f.images[n]) + "_" + file_safe(name) + ".png";
      const Image img = levels.to_image(results[l].levels.data() + n * per, H, W);
      write_picture(path_in(f.out, file), img, f.upscale);
      tiles.push_back(grid_tile(upscale_nearest(img, f.upscale), f.grid_tile));
      const double loss = -results[l].final_objective[n];
      std::ostringstream label;
      label << name << "\nloss " << std::setprecision(3) << loss;
      labels.push_back(label.str());
      j["results"].push_back({{"image", f.images[n]}, {"layer", name}, {"file", file}, {"relative_loss", loss}});
      std::cout << f.images[n] << " from " << name << ": relative loss ||phi - phi0||^2 / ||phi0||^2 / 2 = " << loss
                << " -> " << file << "\n";
    }
  }
  for (size_t l = 0; l < layers.size(); ++l)
    for (size_t t = 0; t < results[l].curve.size(); ++t) {
      csv << model.graph.value(layers[l]).name << "," << t;
      for (double v : results[l].curve[t]) csv << "," << -v;
      csv << "\n";
    }
  write_png(path_in(f.out, "grid.png"), viz::labelled_grid(tiles, labels, int(layers.size()) + 1));
  write_file_atomic(path_in(f.out, "curve.csv"), csv.str());
  write_file_atomic(path_in(f.out, "summary.json"), j.dump(2) + "\n");
  std::cout << "wrote the reconstructions, grid.png, curve.csv and summary.json to " << f.out << "\n";
}

struct DreamFlags {
  ModelFlags model;
  AscentFlags ascent{viz::dream_defaults()};
  std::vector<std::string> images;
  std::string layer, out;
  int max_side = 0;
};

// The photo in grey levels: as the model card prepares it, or (max_side > 0) whole, resized so that
// its longer side is max_side.
Tensor photo_levels(const std::string& path, const Model& model, const viz::LevelSpace& levels, int max_side) {
  if (max_side <= 0) {
    std::vector<Tensor> items;
    items.push_back(load_images({path}, model)[0].input.clone());
    return levels.to_levels(stack_batch(items));
  }
  require(!model.preprocessing().mean_image,
          "--max-side needs a per-channel mean: this model subtracts a mean image of a fixed size");
  std::string note;
  Image img = convert_channels(load_image(path), model.channels, &note);
  const double s = double(max_side) / std::max(img.width, img.height);
  img = resize_image(img, std::max(1, int(std::lround(img.width * s))), std::max(1, int(std::lround(img.height * s))));
  std::vector<Tensor> items;
  items.push_back(pixels_to_tensor(img, model.preprocessing()));
  return levels.to_levels(stack_batch(items));
}

void run_dream(const DreamFlags& f) {
  viz::check_settings(f.ascent.settings);
  require(f.max_side >= 0 && f.max_side <= 4096, "--max-side must be between 0 and 4096");
  const Model model = load_model_from_flags(f.model);
  const int layer = viz::resolve_value(model.graph, f.layer);
  viz::layer_shape(model, layer);
  const auto backend = backend_from_flags(f.model);
  const viz::LevelSpace levels = viz::LevelSpace::from(model.preprocessing(), model.channels);
  std::vector<Tensor> photos;
  for (const std::string& path : f.images) {
    photos.push_back(photo_levels(path, model, levels, f.max_side));
    viz::check_octaves(model, layer, f.ascent.settings, int(photos.back().dim(2)), int(photos.back().dim(3)));
  }
  prepare_out_dir(f.out);

  const std::string name = model.graph.value(layer).name;
  std::vector<viz::AscentResult> results;
  for (size_t i = 0; i < photos.size(); ++i) {
    ProgressBar bar("energy", f.ascent.quiet);
    results.push_back(viz::deep_dream(model, *backend, layer, photos[i], f.ascent.settings,
                                      [&](const viz::AscentProgress& p) { bar(p); }));
    bar.done();
  }
  std::ostringstream csv;
  csv << "image,step,energy\n";
  nlohmann::json j = {{"model", f.model.model},
                      {"layer", name},
                      {"objective", "1/2 ||phi(I)||^2"},
                      {"settings", nlohmann::json::parse(settings_json(f.ascent.settings))},
                      {"results", nlohmann::json::array()}};
  for (size_t i = 0; i < photos.size(); ++i) {
    const viz::AscentResult& r = results[i];
    const int H = int(r.levels.dim(2)), W = int(r.levels.dim(3));
    const std::string file = stem(f.images[i]) + "_dream.png";
    write_png(path_in(f.out, file), levels.to_image(r.levels.data(), H, W));
    for (size_t t = 0; t < r.curve.size(); ++t) csv << stem(f.images[i]) << "," << t << "," << r.curve[t][0] << "\n";
    j["results"].push_back({{"image", f.images[i]}, {"file", file}, {"size", {H, W}},
                            {"energy_start", r.curve.front()[0]}, {"energy", r.final_objective[0]}});
    std::cout << f.images[i] << ": " << name << " energy 1/2||phi||^2 " << r.curve.front()[0] << " at the photo -> "
              << r.final_objective[0] << "; " << file << " (" << W << "x" << H << ")\n";
  }
  write_file_atomic(path_in(f.out, "curve.csv"), csv.str());
  write_file_atomic(path_in(f.out, "summary.json"), j.dump(2) + "\n");
}

}  // namespace

void register_invert(CLI::App& app, std::function<void()>& run) {
  auto f = std::make_shared<InvertFlags>();
  CLI::App* cmd = app.add_subcommand("invert", "feature inversion: an image whose activations at a layer match a photo's");
  add_model_flags(cmd, f->model);
  cmd->add_option("--image,-i", f->images, "image file(s) to invert; several are one batch")->required();
  cmd->add_option("--layer,-l", f->layers, "value or node name(s), comma-separated or repeated (one run each)")->required();
  cmd->add_option("--init-noise", f->init_noise, "std of the start image's noise in grey levels (0: the mean image)")
      ->capture_default_str();
  add_ascent_flags(cmd, f->ascent);
  cmd->add_option("--out,-o", f->out, "output folder: <image>_input.png, <image>_<layer>.png, grid.png, curve.csv, summary.json")
      ->required();
  cmd->add_option("--upscale", f->upscale, "enlarge the PNGs by this integer factor (small inputs)")->capture_default_str();
  cmd->add_option("--grid-tile", f->grid_tile, "longer side of each picture in grid.png, in pixels (0: as written)")
      ->capture_default_str();
  cmd->callback([f, &run] { run = [f] { run_invert(*f); }; });
}

void register_dream(CLI::App& app, std::function<void()>& run) {
  auto f = std::make_shared<DreamFlags>();
  CLI::App* cmd = app.add_subcommand("dream", "Deep Dream: amplify a layer's activations in a photo, over octaves");
  add_model_flags(cmd, f->model);
  cmd->add_option("--image,-i", f->images, "photo(s), each dreamt on separately")->required();
  cmd->add_option("--layer,-l", f->layer, "value or node name (`deepinside info` lists them)")->required();
  cmd->add_option("--max-side", f->max_side,
                  "dream on the whole photo resized to this longer side (0: the model's preprocessed crop)")
      ->capture_default_str();
  add_ascent_flags(cmd, f->ascent);
  cmd->add_option("--out,-o", f->out, "output folder: <image>_dream.png, curve.csv, summary.json")->required();
  cmd->callback([f, &run] { run = [f] { run_dream(*f); }; });
}

}  // namespace deepinside::cli
