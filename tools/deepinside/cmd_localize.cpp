// deepinside localize: the paper's weakly supervised object localisation (Sec. 3.2) for the top classes
// of an image: saliency -> GMM colour models -> GraphCut -> largest component -> box. Writes JSON, one
// mask PNG per class and a picture with the boxes drawn.
// deepinside eval-localization: the ILSVRC localisation metric on a data set with ground-truth boxes
// (tools/make_fashion_scenes.py), for GraphCut and the baselines, as a table or JSON.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/atomic_file.h"
#include "engine/error.h"
#include "engine/image.h"
#include "engine/session.h"
#include "tools/deepinside/commands.h"
#include "tools/deepinside/common.h"
#include "viz/cam.h"
#include "viz/localize.h"
#include "viz/localize_eval.h"
#include "viz/scores.h"

namespace deepinside::cli {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

nlohmann::json box_json(const viz::Box& b) { return nlohmann::json::array({b.x0, b.y0, b.x1, b.y1}); }

void add_graphcut_flags(CLI::App* cmd, viz::GraphCutOptions& o) {
  cmd->add_option("--fg-quantile", o.fg_quantile, "foreground colour model from pixels with saliency >= this quantile")
      ->capture_default_str();
  cmd->add_option("--bg-quantile", o.bg_quantile, "background colour model from pixels with saliency <= this quantile")
      ->capture_default_str();
  cmd->add_option("--components", o.components, "Gaussians per colour model (EM)")->capture_default_str();
  cmd->add_option("--gamma", o.gamma, "pairwise weight: gamma / dist * exp(-beta |z_p - z_q|^2) (GrabCut)")
      ->capture_default_str();
  cmd->add_option("--neighbours", o.neighbours, "4 or 8: the GraphCut's neighbourhood and the component's connectivity")
      ->capture_default_str();
  cmd->add_option("--iterations", o.iterations, "colour models re-estimated from the cut this many times (GrabCut); 1 = the paper")
      ->capture_default_str();
  cmd->add_option("--gmm-seed", o.seed, "seed of the mixtures' k-means++ start")->capture_default_str();
  cmd->add_option("--em-iterations", o.em_iterations, "EM iterations per colour model at most")->capture_default_str();
  cmd->add_option("--em-tolerance", o.em_tolerance, "EM stops when the mean log-likelihood gains less than this")
      ->capture_default_str();
}

// A picture at `upscale` times the input size: the top-1 mask tinted in its colour, every box outlined.
Image boxes_picture(const Image& display, const std::vector<viz::Box>& boxes, const std::vector<uint8_t>* tint_mask,
                    int upscale) {
  std::string note;
  Image base = display.channels == 3 ? display : convert_channels(display, 3, &note);
  if (tint_mask) {
    const viz::DrawnBox c = viz::box_colour({}, 0);
    for (size_t i = 0; i < tint_mask->size(); ++i)
      if ((*tint_mask)[i]) {
        uint8_t* p = &base.pixels[i * 3];
        p[0] = uint8_t((p[0] * 3 + c.r * 2) / 5), p[1] = uint8_t((p[1] * 3 + c.g * 2) / 5), p[2] = uint8_t((p[2] * 3 + c.b * 2) / 5);
      }
  }
  base = upscale_nearest(base, upscale);
  std::vector<viz::DrawnBox> drawn;
  for (int r = int(boxes.size()) - 1; r >= 0; --r) {  // rank 1 last, so on top
    const viz::Box& b = boxes[r];
    drawn.push_back(viz::box_colour({b.x0 * upscale, b.y0 * upscale, b.x1 * upscale, b.y1 * upscale}, r));
  }
  return viz::draw_boxes(base, drawn, std::max(1, upscale / 2));
}

// ---- localize ------------------------------------------------------------------------------------

struct LocalizeFlags {
  ModelFlags model;
  std::vector<std::string> images;
  int cls = -1, top = 5, upscale = 1;
  std::string out, overlay;
  viz::GraphCutOptions graphcut;
};

std::string sibling(const std::string& out, const std::string& suffix) {
  const std::filesystem::path p(out);
  return (p.parent_path() / (p.stem().string() + suffix)).string();
}

// Fails before any work when an output's folder is missing, so a typo costs no evaluation time.
void require_output_folder(const std::string& path) {
  const std::filesystem::path folder = std::filesystem::path(path).parent_path();
  require(folder.empty() || std::filesystem::is_directory(folder),
          "cannot write '" + path + "': the folder '" + folder.string() + "' does not exist");
}

// Every output of a run, encoded in memory first, then written all or none: each file atomically, and
// when one write fails the files this run already wrote are removed before the error goes on.
struct PendingFile {
  std::string path, bytes;
};
void write_all_or_none(const std::vector<PendingFile>& files) {
  for (const PendingFile& f : files) require_output_folder(f.path);
  size_t written = 0;
  try {
    for (; written < files.size(); ++written) write_file_atomic(files[written].path, files[written].bytes);
  } catch (...) {
    for (size_t i = 0; i < written; ++i) std::filesystem::remove(files[i].path);
    throw;
  }
}

void run_localize(const LocalizeFlags& f) {
  require(f.top >= 1, "--top must be >= 1");
  require(f.upscale >= 1 && f.upscale <= 64, "--upscale must be between 1 and 64");
  viz::check_graphcut_options(f.graphcut);
  const Model model = load_model_from_flags(f.model);
  if (f.cls != -1) viz::check_class_index(f.cls, model);
  const auto backend = backend_from_flags(f.model);
  const std::vector<PreparedImage> images = load_images(f.images, model);
  for (const std::string& path : f.images) {
    require_output_folder(output_path(f.out, path, images.size()));
    if (!f.overlay.empty()) require_output_folder(output_path(f.overlay, path, images.size()));
  }
  std::vector<std::pair<int, int>> sizes;  // each image's own width and height, for box_image
  for (const std::string& path : f.images) {
    const Image img = load_image(path);
    sizes.emplace_back(img.width, img.height);
  }
  std::vector<Tensor> items;
  for (const PreparedImage& p : images) items.push_back(p.input.clone());
  const Tensor batch = stack_batch(items);
  // Only the scores and the input gradient are read, so the session may fuse (docs/fusion.md).
  Session session(model.graph, *backend, batch.shape(), SessionOptions{true, {model.scores_value}});
  session.forward(batch);
  const int N = int(images.size()), H = model.height, W = model.width;
  std::vector<std::vector<viz::ClassScore>> tops(N);
  std::vector<std::vector<int>> classes(N);
  for (int n = 0; n < N; ++n) {
    const std::vector<float> s = viz::image_scores(session, model, n);
    if (f.cls >= 0) {
      const std::vector<float> p = viz::softmax(s);
      tops[n] = {viz::ClassScore{f.cls, model.label(f.cls), s[f.cls], p[f.cls]}};
    } else {
      tops[n] = viz::top_classes(s, f.top, model);
    }
    for (const auto& t : tops[n]) classes[n].push_back(t.cls);
  }
  const viz::ClassMaps maps = viz::class_maps(session, model, classes, {});
  const int k = maps.k;
  std::vector<viz::Localization> result(size_t(N) * k);
#pragma omp parallel for schedule(dynamic)
  for (int t = 0; t < N * k; ++t)
    result[t] = viz::localize_graphcut(images[t / k].display, maps.saliency_at(t / k, t % k), f.graphcut);

  // Everything is computed; now the files, encoded first and written together.
  std::vector<PendingFile> files;
  std::ostringstream report;  // printed once the files are there
  for (int n = 0; n < N; ++n) {
    const std::string out = output_path(f.out, f.images[n], images.size());
    const std::string picture =
        f.overlay.empty() ? sibling(out, "_boxes.png") : output_path(f.overlay, f.images[n], images.size());
    const viz::InputGeometry geo = viz::input_geometry(sizes[n].first, sizes[n].second, model);
    nlohmann::json j = {{"image", f.images[n]},
                        {"model", f.model.model},
                        {"input_size", {W, H}},
                        {"image_size", {sizes[n].first, sizes[n].second}},
                        {"box_format", "[x0, y0, x1, y1], x1 and y1 exclusive; box: network-input pixels, "
                                       "box_image: the image's own pixels"},
                        {"boxes_picture", picture},
                        {"options",
                         {{"fg_quantile", f.graphcut.fg_quantile},
                          {"bg_quantile", f.graphcut.bg_quantile},
                          {"components", f.graphcut.components},
                          {"gamma", f.graphcut.gamma},
                          {"neighbours", f.graphcut.neighbours},
                          {"iterations", f.graphcut.iterations},
                          {"gmm_seed", f.graphcut.seed},
                          {"em_iterations", f.graphcut.em_iterations},
                          {"em_tolerance", f.graphcut.em_tolerance}}},
                        {"classes", nlohmann::json::array()}};
    std::vector<viz::Box> boxes;
    report << f.images[n] << "\n";
    for (int r = 0; r < k; ++r) {
      const viz::Localization& loc = result[size_t(n) * k + r];
      const viz::ClassScore& t = tops[n][r];
      const std::string mask_path = sibling(out, "_mask" + std::to_string(r + 1) + ".png");
      files.push_back({mask_path, encode_png(upscale_nearest(viz::mask_image(loc.mask, W, H), f.upscale))});
      boxes.push_back(loc.box);
      j["classes"].push_back({{"rank", r + 1},
                              {"class", t.cls},
                              {"label", t.label},
                              {"score", t.score},
                              {"prob", t.prob},
                              {"box", box_json(loc.box)},
                              {"box_image", box_json(viz::box_to_image(loc.box, geo))},
                              {"mask_area", loc.mask_area},
                              {"mask", mask_path},
                              {"fg_seeds", loc.fg_seeds},
                              {"bg_seeds", loc.bg_seeds},
                              {"degenerate", loc.degenerate}});
      report << "  " << r + 1 << ". class " << t.cls << " (" << t.label << "), score " << t.score << ", prob "
             << std::fixed << std::setprecision(4) << t.prob << std::defaultfloat << ": box [" << loc.box.x0 << ", "
             << loc.box.y0 << ", " << loc.box.x1 << ", " << loc.box.y1 << "), mask " << loc.mask_area << " px"
             << (loc.degenerate ? " (degenerate: the whole image)" : "") << "\n";
    }
    files.push_back({picture, encode_png(boxes_picture(images[n].display, boxes, &result[size_t(n) * k].mask, f.upscale))});
    files.push_back({out, j.dump(2) + "\n"});
    report << "  json   " << out << "\n  boxes  " << picture << "\n  masks  " << sibling(out, "_mask<rank>.png")
           << "\n";
  }
  write_all_or_none(files);
  std::cout << report.str();
}

// ---- eval-localization ---------------------------------------------------------------------------

const std::vector<std::string> kAllMethods = {"graphcut", "saliency-threshold", "cam", "gradcam", "full-image",
                                              "centre-box"};

struct EvalFlags {
  ModelFlags model;
  std::string data, methods, per_image, centre_box;
  int limit = 0, batch_size = 32, top = 5;
  double min_iou = 0.5;
  bool json = false, all_boxes = false;
  viz::GraphCutOptions graphcut;
  // The baselines' thresholds: the best on the validation split (docs/tune_localisation.py; never the test
  // images), so that GraphCut is compared with each baseline at its best, not at a guess.
  viz::ThresholdBoxOptions saliency_box{0.7, 14.0}, cam_box{0.35, 0.0};
  CLI::Option* methods_opt = nullptr;
};

std::vector<std::string> parse_methods(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string m;
  while (std::getline(in, m, ',')) {
    require(std::find(kAllMethods.begin(), kAllMethods.end(), m) != kAllMethods.end(),
            "unknown method '" + m + "' in --methods (use graphcut, saliency-threshold, cam, gradcam, full-image, centre-box)");
    if (std::find(out.begin(), out.end(), m) == out.end()) out.push_back(m);
  }
  require(!out.empty(), "--methods is empty");
  return out;
}

struct ImageOutcome {
  std::vector<int> classes;                         // the top-k predicted classes
  std::vector<std::vector<viz::Box>> boxes;         // [method][rank], in the image's pixels
  std::vector<int> computed;                        // the ranks whose boxes were computed
  int width = 0, height = 0;
};

void run_eval(const EvalFlags& f) {
  const Clock::time_point t_start = Clock::now();
  require(f.limit >= 0, "--limit must be >= 0");
  require(f.batch_size >= 1 && f.batch_size <= 4096, "--batch-size must be between 1 and 4096");
  require(f.top >= 1 && f.top <= 5, "--top must be between 1 and 5 (the metric looks at five guesses at most)");
  require(f.min_iou > 0.0 && f.min_iou <= 1.0, "--min-iou must be in (0, 1]");
  viz::check_graphcut_options(f.graphcut);
  require(f.saliency_box.threshold >= 0.0 && f.saliency_box.threshold <= 1.0, "--saliency-threshold must be in [0, 1]");
  require(f.saliency_box.blur_sigma >= 0.0 && std::isfinite(f.saliency_box.blur_sigma), "--saliency-blur must be >= 0");
  require(f.cam_box.threshold >= 0.0 && f.cam_box.threshold <= 1.0, "--cam-threshold must be in [0, 1]");
  if (!f.per_image.empty()) require_output_folder(f.per_image);
  const bool explicit_methods = f.methods_opt && f.methods_opt->count();
  std::vector<std::string> methods = parse_methods(explicit_methods ? f.methods : "graphcut,saliency-threshold,cam,gradcam,full-image,centre-box");
  std::pair<int, int> centre_size{0, 0};
  if (!f.centre_box.empty()) centre_size = parse_size(f.centre_box, "--centre-box");

  const Model model = load_model_from_flags(f.model);
  const auto has = [&](const std::string& m) { return std::find(methods.begin(), methods.end(), m) != methods.end(); };
  std::vector<std::string> notes;
  if (has("cam")) {
    try {
      viz::cam_feature_layer(model);
    } catch (const Error& e) {
      if (explicit_methods) throw;
      methods.erase(std::find(methods.begin(), methods.end(), "cam"));
      notes.push_back(std::string("cam left out: ") + e.what());
    }
  }
  std::vector<viz::LabelledImage> data = viz::read_ground_truth(f.data);
  if (f.limit > 0 && size_t(f.limit) < data.size()) data.resize(f.limit);
  for (const auto& d : data) viz::check_class_index(d.cls, model);
  const auto backend = backend_from_flags(f.model);
  const int k = std::min(f.top, model.classes), H = model.height, W = model.width;
  const int M = int(methods.size());
  viz::ClassMapOptions map_options;
  map_options.saliency = has("graphcut") || has("saliency-threshold");
  map_options.cam = has("cam");
  map_options.gradcam = has("gradcam");

  std::vector<ImageOutcome> outcomes(data.size());
  double t_decode = 0, t_net = 0, t_boxes = 0;
  int64_t degenerate = 0;
  std::unique_ptr<Session> session;
  for (size_t start = 0; start < data.size(); start += size_t(f.batch_size)) {
    const int count = int(std::min(data.size() - start, size_t(f.batch_size)));
    Clock::time_point t = Clock::now();
    std::vector<PreparedImage> prepared(count);
    std::vector<std::string> errors(count);
#pragma omp parallel for schedule(dynamic)
    for (int i = 0; i < count; ++i) {
      try {
        const Image img = load_image(data[start + i].file);
        outcomes[start + i].width = img.width, outcomes[start + i].height = img.height;
        prepared[i] = prepare_image(img, model.preprocessing(), model.channels, H, W);
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    }
    for (const std::string& e : errors) require(e.empty(), e);
    std::vector<Tensor> items;
    for (const PreparedImage& p : prepared) items.push_back(p.input.clone());
    const Tensor batch = stack_batch(items);
    t_decode += seconds_since(t);

    t = Clock::now();
    if (!session || session->input_shape() != batch.shape())
      session = std::make_unique<Session>(model.graph, *backend, batch.shape());
    session->forward(batch);
    // The (image, rank) pairs that get boxes: every rank with --all-boxes; otherwise only the rank that
    // can count, the one holding the true class (none when it is not in the top k). Boxes of the other
    // ranks cannot change the metric, so both modes give the same errors.
    std::vector<std::pair<int, int>> tasks;
    std::vector<std::vector<int>> seeds(count);  // the classes class_maps differentiates, per image
    std::vector<std::vector<int>> slot(count, std::vector<int>(k, -1));  // rank -> index in seeds
    for (int i = 0; i < count; ++i) {
      std::vector<int>& top = outcomes[start + i].classes;
      for (const auto& c : viz::top_classes(viz::image_scores(*session, model, i), k, model)) top.push_back(c.cls);
      for (int j = 0; j < k; ++j)
        if (f.all_boxes || top[j] == data[start + i].cls) {
          slot[i][j] = int(seeds[i].size());
          seeds[i].push_back(top[j]);
          tasks.emplace_back(i, j);
        }
    }
    // class_maps wants the same number of classes per image: pad with the top-1 (computed, never used).
    size_t seeds_per_image = 0;
    for (const auto& sd : seeds) seeds_per_image = std::max(seeds_per_image, sd.size());
    for (int i = 0; i < count; ++i)
      while (seeds[i].size() < seeds_per_image) seeds[i].push_back(outcomes[start + i].classes[0]);
    viz::ClassMaps maps;
    if (seeds_per_image > 0) maps = viz::class_maps(*session, model, seeds, map_options);
    t_net += seconds_since(t);

    t = Clock::now();
    std::vector<std::string> task_errors(tasks.size());
    std::vector<std::vector<viz::Box>> boxes(tasks.size(), std::vector<viz::Box>(M));
    std::vector<char> task_degenerate(tasks.size(), 0);
#pragma omp parallel for schedule(dynamic)
    for (int task = 0; task < int(tasks.size()); ++task) {
      const int i = tasks[task].first, s = slot[i][tasks[task].second];
      try {
        for (int m = 0; m < M; ++m) {
          viz::Box& b = boxes[task][m];
          if (methods[m] == "graphcut") {
            const viz::Localization loc = viz::localize_graphcut(prepared[i].display, maps.saliency_at(i, s), f.graphcut);
            b = loc.box;
            task_degenerate[task] = loc.degenerate;
          } else if (methods[m] == "saliency-threshold") {
            b = viz::threshold_box(maps.saliency_at(i, s), W, H, f.saliency_box);
          } else if (methods[m] == "cam") {
            b = viz::threshold_box(maps.cam_at(i, s), W, H, f.cam_box);
          } else if (methods[m] == "gradcam") {
            b = viz::threshold_box(maps.gradcam_at(i, s), W, H, f.cam_box);
          } else {
            continue;  // full-image and centre-box are set below, in the image's own pixels
          }
          b = viz::box_to_image(b, viz::input_geometry(outcomes[start + i].width, outcomes[start + i].height, model));
        }
      } catch (const std::exception& e) {
        task_errors[task] = data[start + i].file + ": " + e.what();
      }
    }
    for (const std::string& e : task_errors) require(e.empty(), e);
    for (int i = 0; i < count; ++i) outcomes[start + i].boxes.assign(M, std::vector<viz::Box>(k));
    for (size_t task = 0; task < tasks.size(); ++task) {
      const auto [i, j] = tasks[task];
      for (int m = 0; m < M; ++m) outcomes[start + i].boxes[m][j] = boxes[task][m];
      outcomes[start + i].computed.push_back(j);
      degenerate += task_degenerate[task];
    }
    t_boxes += seconds_since(t);
  }

  // Class-agnostic baselines, in each image's own pixels: the whole image, and a centred box of the
  // mean ground-truth size (relative to the image; --centre-box WxH gives it in pixels instead).
  double mean_w = 0, mean_h = 0;
  for (size_t i = 0; i < data.size(); ++i) {
    mean_w += double(data[i].box.x1 - data[i].box.x0) / outcomes[i].width;
    mean_h += double(data[i].box.y1 - data[i].box.y0) / outcomes[i].height;
  }
  mean_w /= double(data.size()), mean_h /= double(data.size());
  for (size_t i = 0; i < data.size(); ++i) {
    ImageOutcome& o = outcomes[i];
    for (int m = 0; m < M; ++m) {
      viz::Box b;
      if (methods[m] == "full-image") {
        b = viz::Box{0, 0, o.width, o.height};
      } else if (methods[m] == "centre-box") {
        const double bw = centre_size.first ? centre_size.second : mean_w * o.width;  // parse_size gives (h, w)
        const double bh = centre_size.first ? centre_size.first : mean_h * o.height;
        b = viz::Box{int(std::lround((o.width - bw) / 2)), int(std::lround((o.height - bh) / 2)),
                     int(std::lround((o.width + bw) / 2)), int(std::lround((o.height + bh) / 2))};
      } else {
        continue;
      }
      std::fill(o.boxes[m].begin(), o.boxes[m].end(), b);
    }
  }

  std::vector<viz::LocalizationTally> tallies(M);
  int64_t cls_top1 = 0, cls_top5 = 0;
  nlohmann::json per_image = nlohmann::json::array();
  for (size_t i = 0; i < data.size(); ++i) {
    const ImageOutcome& o = outcomes[i];
    cls_top1 += o.classes[0] == data[i].cls;
    cls_top5 += std::find(o.classes.begin(), o.classes.end(), data[i].cls) != o.classes.end();
    nlohmann::json row = {{"file", data[i].file}, {"class", data[i].cls}, {"box", box_json(data[i].box)},
                          {"top", o.classes}, {"iou", nlohmann::json::object()}, {"boxes", nlohmann::json::object()}};
    for (int m = 0; m < M; ++m) {
      tallies[m].add(o.classes, o.boxes[m], data[i].cls, data[i].box, f.min_iou);
      const bool agnostic = methods[m] == "full-image" || methods[m] == "centre-box";
      nlohmann::json bs = nlohmann::json::array();
      for (int j = 0; j < k; ++j)
        bs.push_back(agnostic || std::count(o.computed.begin(), o.computed.end(), j) ? box_json(o.boxes[m][j])
                                                                                      : nlohmann::json(nullptr));
      row["boxes"][methods[m]] = bs;
      const auto at = std::find(o.classes.begin(), o.classes.end(), data[i].cls);
      row["iou"][methods[m]] = at == o.classes.end() ? nlohmann::json(nullptr)
                                                     : nlohmann::json(viz::iou(o.boxes[m][at - o.classes.begin()], data[i].box));
    }
    per_image.push_back(row);
  }
  const double n = double(data.size());
  const double total = seconds_since(t_start);
  if (!f.per_image.empty()) {
    std::string text;
    for (const auto& row : per_image) text += row.dump() + "\n";
    write_file_atomic(f.per_image, text);
  }
  if (f.json) {
    nlohmann::json j = {{"data", f.data},
                        {"model", f.model.model},
                        {"images", data.size()},
                        {"min_iou", f.min_iou},
                        {"classification", {{"top1_error", 1.0 - cls_top1 / n}, {"top5_error", 1.0 - cls_top5 / n}}},
                        {"methods", nlohmann::json::object()},
                        {"graphcut_degenerate", degenerate},
                        {"seconds", {{"total", total}, {"decode", t_decode}, {"network", t_net}, {"boxes", t_boxes}}},
                        {"notes", notes}};
    for (int m = 0; m < M; ++m)
      j["methods"][methods[m]] = {{"top1_error", tallies[m].top1_error()}, {"top5_error", tallies[m].top5_error()}};
    std::cout << j.dump(2) << "\n";
    return;
  }
  for (const std::string& note : notes) std::cerr << "deepinside: note: " << note << "\n";
  std::cout << "localisation on " << data.size() << " images of " << f.data << " (IoU >= " << f.min_iou << ")\n\n"
            << "  method                top-1 error   top-5 error\n";
  std::cout << std::fixed << std::setprecision(3);
  for (int m = 0; m < M; ++m)
    std::cout << "  " << std::left << std::setw(20) << methods[m] << std::right << std::setw(13)
              << tallies[m].top1_error() << std::setw(14) << tallies[m].top5_error() << "\n";
  std::cout << "  " << std::left << std::setw(20) << "(classification)" << std::right << std::setw(13)
            << 1.0 - cls_top1 / n << std::setw(14) << 1.0 - cls_top5 / n << "\n\n";
  std::cout << std::setprecision(1) << "time " << total << " s: decoding " << t_decode << " s, network passes "
            << t_net << " s, boxes " << t_boxes << " s";
  if (degenerate) std::cout << "; " << degenerate << " GraphCut maps degenerate (whole-image box)";
  std::cout << "\n";
}

}  // namespace

void register_localize(CLI::App& app, std::function<void()>& run) {
  auto flags = std::make_shared<LocalizeFlags>();
  CLI::App* cmd = app.add_subcommand("localize", "weakly supervised object localisation: saliency + GraphCut (paper Sec. 3.2)");
  add_model_flags(cmd, flags->model);
  cmd->add_option("--image,-i", flags->images, "image file(s); several are one batched pass")->required();
  cmd->add_option("--class,-c", flags->cls, "localise this class only (default: each image's top classes)");
  cmd->add_option("--top", flags->top, "how many of the top classes to localise")->capture_default_str();
  cmd->add_option("--out,-o", flags->out,
                  "JSON result; OUT_mask<rank>.png and OUT_boxes.png are written beside it (several images: "
                  "OUT_<image stem>.json ...)")
      ->required();
  cmd->add_option("--overlay", flags->overlay, "the picture with the boxes (default: OUT_boxes.png)");
  cmd->add_option("--upscale", flags->upscale, "enlarge the PNGs by this integer factor (small inputs)")
      ->capture_default_str();
  add_graphcut_flags(cmd, flags->graphcut);
  cmd->callback([flags, &run] { run = [flags] { run_localize(*flags); }; });
}

void register_eval_localization(CLI::App& app, std::function<void()>& run) {
  auto flags = std::make_shared<EvalFlags>();
  CLI::App* cmd = app.add_subcommand("eval-localization",
                                     "ILSVRC localisation error (top-1, top-5) of GraphCut and baselines on a data set "
                                     "with ground-truth boxes");
  add_model_flags(cmd, flags->model);
  cmd->add_option("--data", flags->data, "folder with ground_truth.json and the images (tools/make_fashion_scenes.py)")
      ->required();
  cmd->add_option("--limit", flags->limit, "the first N images only (0: all)")->capture_default_str();
  flags->methods_opt = cmd->add_option("--methods", flags->methods,
                                       "comma-separated: graphcut, saliency-threshold, cam, gradcam, full-image, "
                                       "centre-box (default: all; cam only where the model has a global average pool)");
  cmd->add_option("--top", flags->top, "predicted classes per image (the metric's five guesses)")->capture_default_str();
  cmd->add_option("--min-iou", flags->min_iou, "IoU a box needs to count as correct")->capture_default_str();
  cmd->add_option("--batch-size", flags->batch_size, "images per forward pass (and per backward pass per rank)")
      ->capture_default_str();
  cmd->add_flag("--json", flags->json, "print the results as one JSON object");
  cmd->add_flag("--all-boxes", flags->all_boxes,
                "box every one of the top classes (default: only the true class's, when it is among them: the "
                "other boxes cannot change the metric)");
  cmd->add_option("--per-image", flags->per_image, "write one JSON line per image (classes, boxes, IoU) to this file");
  cmd->add_option("--saliency-threshold", flags->saliency_box.threshold,
                  "saliency-threshold: keep the blurred map >= this fraction of its maximum")
      ->capture_default_str();
  cmd->add_option("--saliency-blur", flags->saliency_box.blur_sigma,
                  "saliency-threshold: Gaussian blur sigma in pixels before thresholding")
      ->capture_default_str();
  cmd->add_option("--cam-threshold", flags->cam_box.threshold,
                  "cam, gradcam: keep the map >= this fraction of its maximum (Zhou et al. used 0.2)")
      ->capture_default_str();
  cmd->add_option("--centre-box", flags->centre_box,
                  "centre-box: its size HxW in pixels (default: the mean ground-truth box, relative to each image)");
  add_graphcut_flags(cmd, flags->graphcut);
  cmd->callback([flags, &run] { run = [flags] { run_eval(*flags); }; });
}

}  // namespace deepinside::cli
