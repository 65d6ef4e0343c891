// deepinside predict: the top classes of each image, as text or JSON lines.
#include <iomanip>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/session.h"
#include "tools/deepinside/commands.h"
#include "tools/deepinside/common.h"
#include "viz/scores.h"

namespace deepinside::cli {

namespace {

struct PredictFlags {
  ModelFlags model;
  std::vector<std::string> images;
  int top = 5;
  int batch_size = 16;
  bool json = false;
};

void run_predict(const PredictFlags& f) {
  require(f.top >= 1, "--top must be >= 1");
  require(f.batch_size >= 1, "--batch-size must be >= 1");
  const Model model = load_model_from_flags(f.model);
  const auto backend = backend_from_flags(f.model);
  const std::vector<PreparedImage> images = load_images(f.images, model);
  std::unique_ptr<Session> session;
  for (size_t start = 0; start < images.size(); start += size_t(f.batch_size)) {
    const size_t count = std::min(images.size() - start, size_t(f.batch_size));
    std::vector<Tensor> items;
    for (size_t i = 0; i < count; ++i) items.push_back(images[start + i].input.clone());
    const Tensor batch = stack_batch(items);
    if (!session || session->input_shape() != batch.shape())
      session = std::make_unique<Session>(model.graph, *backend, batch.shape(),
                                          SessionOptions{true, {model.scores_value}});  // scores only
    session->forward(batch);
    for (size_t i = 0; i < count; ++i) {
      const std::string& path = f.images[start + i];
      const auto top = viz::top_classes(viz::image_scores(*session, model, int(i)), f.top, model);
      if (f.json) {
        nlohmann::json j = {{"image", path}, {"top", nlohmann::json::array()}};
        for (const auto& t : top)
          j["top"].push_back({{"class", t.cls}, {"label", t.label}, {"score", t.score}, {"prob", t.prob}});
        std::cout << j.dump() << "\n";
      } else {
        std::cout << path << "\n";
        for (const auto& t : top)
          std::cout << "  " << std::setw(5) << t.cls << "  " << std::fixed << std::setprecision(4) << t.prob
                    << "  score " << std::setprecision(3) << std::setw(8) << t.score << "  " << t.label << "\n";
      }
    }
  }
}

}  // namespace

void register_predict(CLI::App& app, std::function<void()>& run) {
  auto flags = std::make_shared<PredictFlags>();
  CLI::App* cmd = app.add_subcommand("predict", "top classes of each image");
  add_model_flags(cmd, flags->model);
  cmd->add_option("images", flags->images, "image files (JPEG, PNG, BMP, ...)")->required();
  cmd->add_option("--top", flags->top, "how many classes to show")->capture_default_str();
  cmd->add_option("--batch-size", flags->batch_size, "images per forward pass")->capture_default_str();
  cmd->add_flag("--json", flags->json, "one JSON object per image: {image, top: [{class, label, score, prob}]}");
  cmd->callback([flags, &run] { run = [flags] { run_predict(*flags); }; });
}

}  // namespace deepinside::cli
