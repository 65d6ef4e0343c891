#pragma once
// The flags of the gradient-ascent subcommands (class-model, neuron, invert, dream), the progress bar
// on stderr, and small output helpers they share.
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "engine/image.h"
#include "viz/optimize.h"

namespace deepinside::cli {

struct AscentFlags {
  viz::AscentSettings settings;  // holds the command's defaults until the flags overwrite them
  bool quiet = false;
};

// Adds --steps, --lr, --lambda, --normalize-step/--fixed-step, --jitter, --blur-every, --blur-sigma,
// --tv, --tv-beta, --clip-norm, --clamp/--no-clamp, --octaves, --octave-scale, --seed, --quiet, with
// f.settings' current values shown as the defaults.
void add_ascent_flags(CLI::App* cmd, AscentFlags& f);

// Prints a progress bar (a line every 10 % when stderr is not a terminal) with the mean and the
// lowest objective over the batch.
class ProgressBar {
 public:
  ProgressBar(std::string what, bool quiet) : what_(std::move(what)), quiet_(quiet) {}
  void operator()(const viz::AscentProgress& p);
  void done();

 private:
  std::string what_;
  bool quiet_;
  int last_printed_ = -1;
  bool open_line_ = false;
};

// The output folder: created when missing; an Error when it is a file. Call before computing, so a
// bad path fails before the work, and nothing is written there until everything is computed.
void prepare_out_dir(const std::string& dir);
// A value name made safe for a file name: "/fires.3/Concat_output_0" -> "fires.3_Concat_output_0".
std::string file_safe(const std::string& name);
// "1,5,9" or repeated flags -> integers; throws Error naming the flag.
std::vector<int> parse_ints(const std::vector<std::string>& items, const std::string& flag);
// A grid tile: the picture resized (antialiased) so that its longer side is `side` pixels (0: as is).
Image grid_tile(const Image& picture, int side);
// Writes the picture, enlarged by upscale.
void write_picture(const std::string& path, const Image& image, int upscale);
std::string settings_json(const viz::AscentSettings& s);  // for summary.json files

}  // namespace deepinside::cli
