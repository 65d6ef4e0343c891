#pragma once
// Each subcommand adds itself to the app and sets `run` to its action when it is the one chosen.
#include <functional>

#include <CLI/CLI.hpp>

namespace deepinside::cli {

void register_predict(CLI::App& app, std::function<void()>& run);
void register_saliency(CLI::App& app, std::function<void()>& run);
void register_info(CLI::App& app, std::function<void()>& run);

}  // namespace deepinside::cli
