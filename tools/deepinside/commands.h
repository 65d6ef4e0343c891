#pragma once
// Each subcommand adds itself to the app and sets `run` to its action when it is the one chosen.
#include <functional>

#include <CLI/CLI.hpp>

namespace deepinside::cli {

void register_predict(CLI::App& app, std::function<void()>& run);
void register_saliency(CLI::App& app, std::function<void()>& run);
void register_info(CLI::App& app, std::function<void()>& run);
void register_bench(CLI::App& app, std::function<void()>& run);
void register_cam(CLI::App& app, std::function<void()>& run);
void register_reconstruct(CLI::App& app, std::function<void()>& run);
void register_sanity(CLI::App& app, std::function<void()>& run);
void register_class_model(CLI::App& app, std::function<void()>& run);
void register_neuron(CLI::App& app, std::function<void()>& run);
void register_invert(CLI::App& app, std::function<void()>& run);
void register_dream(CLI::App& app, std::function<void()>& run);
void register_lrp(CLI::App& app, std::function<void()>& run);
void register_localize(CLI::App& app, std::function<void()>& run);
void register_eval_localization(CLI::App& app, std::function<void()>& run);

}  // namespace deepinside::cli
