#include "tools/deepinside/ascent_flags.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/error.h"

namespace deepinside::cli {

void add_ascent_flags(CLI::App* cmd, AscentFlags& f) {
  viz::AscentSettings& s = f.settings;
  cmd->add_option("--steps", s.steps, "gradient steps (per octave)")->capture_default_str();
  cmd->add_option("--lr", s.lr, "step size: grey levels per unit of gradient (per step with --normalize-step)")
      ->capture_default_str();
  cmd->add_option("--lambda", s.l2, "L2 weight: lambda ||I||^2 on the zero-centred image in grey levels")
      ->capture_default_str();
  cmd->add_flag("--normalize-step,!--fixed-step", s.normalize_step,
                "divide the objective's gradient by its mean |g| (Deep Dream) instead of the paper's fixed step")
      ->capture_default_str();
  cmd->add_option("--jitter", s.jitter, "random shift of up to N pixels before each step (0: off)")->capture_default_str();
  cmd->add_option("--blur-every", s.blur_every, "Gaussian blur of the image every K steps (0: off)")->capture_default_str();
  cmd->add_option("--blur-sigma", s.blur_sigma, "the blur's sigma in pixels")->capture_default_str();
  cmd->add_option("--tv", s.tv, "weight of the total variation regulariser (0: off)")->capture_default_str();
  cmd->add_option("--tv-beta", s.tv_beta, "exponent beta of TV = sum((dx^2 + dy^2)^(beta/2))")->capture_default_str();
  cmd->add_option("--clip-norm", s.clip_percentile,
                  "zero the pixels whose norm is in this lowest percentile after each step (0: off)")
      ->capture_default_str();
  cmd->add_flag("--clamp,!--no-clamp", s.clamp_range, "keep every pixel showable (0..255 once the mean is added)")
      ->capture_default_str();
  cmd->add_option("--octaves", s.octaves, "optimise at K image sizes, smallest first (1: off)")->capture_default_str();
  cmd->add_option("--octave-scale", s.octave_scale, "size ratio between octaves")->capture_default_str();
  cmd->add_option("--seed", s.seed, "random seed (jitter, start noise)")->capture_default_str();
  cmd->add_flag("--quiet,-q", f.quiet, "no progress bar");
}

void ProgressBar::operator()(const viz::AscentProgress& p) {
  if (quiet_) return;
  const int total = p.octaves * p.steps, done = p.octave * p.steps + p.step + 1;
  const int percent = int(100.0 * done / total);
  const bool tty = isatty(2);
  if (!tty && percent / 10 == last_printed_ / 10 && done != 1) return;
  last_printed_ = percent;
  double mean = 0.0, low = INFINITY;
  for (double v : *p.objective) {
    mean += v;
    low = std::min(low, v);
  }
  mean /= double(p.objective->size());
  const int width = 24, filled = width * done / total;
  std::ostringstream line;
  line << "[" << std::string(filled, '#') << std::string(width - filled, '.') << "] ";
  if (p.octaves > 1) line << "octave " << p.octave + 1 << "/" << p.octaves << " (" << p.height << "x" << p.width << ") ";
  line << "step " << std::setw(4) << p.step + 1 << "/" << p.steps << "  " << what_ << " mean " << std::setprecision(5)
       << mean << ", lowest " << low;
  if (tty) {
    std::cerr << "\r" << line.str() << "\033[K" << std::flush;
    open_line_ = true;
  } else {
    std::cerr << line.str() << "\n";
  }
}

void ProgressBar::done() {
  if (open_line_) std::cerr << "\n";
  open_line_ = false;
}

void prepare_out_dir(const std::string& dir) {
  require(!dir.empty(), "--out needs a folder");
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    require(fs::is_directory(dir, ec), "--out '" + dir + "' exists and is not a folder");
    return;
  }
  fs::create_directories(dir, ec);
  require(!ec, "cannot create the output folder '" + dir + "': " + ec.message());
}

std::string file_safe(const std::string& name) {
  std::string out;
  for (char c : name) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
    out += ok ? c : '_';
  }
  const size_t first = out.find_first_not_of('_');
  return first == std::string::npos ? "layer" : out.substr(first);
}

std::vector<int> parse_ints(const std::vector<std::string>& items, const std::string& flag) {
  std::vector<int> out;
  for (const std::string& item : items) {
    std::stringstream in(item);
    std::string part;
    while (std::getline(in, part, ',')) {
      try {
        size_t used = 0;
        out.push_back(std::stoi(part, &used));
        if (used != part.size()) throw std::invalid_argument(part);
      } catch (const std::exception&) {
        throw Error(flag + " must be integers separated by commas, got '" + item + "'");
      }
    }
  }
  require(!out.empty(), flag + " is empty");
  return out;
}

Image grid_tile(const Image& picture, int side) {
  require(side >= 0 && side <= 4096, "--grid-tile must be between 0 and 4096");
  if (side == 0 || side == std::max(picture.width, picture.height)) return picture;
  const double s = double(side) / std::max(picture.width, picture.height);
  return resize_image(picture, std::max(1, int(std::lround(picture.width * s))),
                      std::max(1, int(std::lround(picture.height * s))));
}

void write_picture(const std::string& path, const Image& image, int upscale) {
  write_png(path, upscale > 1 ? upscale_nearest(image, upscale) : image);
}

std::string settings_json(const viz::AscentSettings& s) {
  nlohmann::json j = {{"steps", s.steps},
                      {"lr", s.lr},
                      {"lambda", s.l2},
                      {"step", s.normalize_step ? "normalized" : "fixed"},
                      {"jitter", s.jitter},
                      {"blur_every", s.blur_every},
                      {"blur_sigma", s.blur_sigma},
                      {"tv", s.tv},
                      {"tv_beta", s.tv_beta},
                      {"clip_norm_percentile", s.clip_percentile},
                      {"clamp", s.clamp_range},
                      {"octaves", s.octaves},
                      {"octave_scale", s.octave_scale},
                      {"seed", s.seed}};
  return j.dump();
}

}  // namespace deepinside::cli
