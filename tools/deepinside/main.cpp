// deepinside: one binary, subcommands. The library throws; here errors become one message on
// stderr and a non-zero exit.
#include <exception>
#include <iostream>

#include <CLI/CLI.hpp>

#include "engine/atomic_file.h"
#include "engine/error.h"
#include "tools/deepinside/commands.h"
#include "tools/deepinside/thread_wait.h"

int main(int argc, char** argv) {
  deepinside::cli::apply_default_spin_count(argv);  // may re-execute this binary (once)
  CLI::App app{"deepinside: what a trained image classifier looks at (Simonyan et al. 2013 and after)"};
  app.require_subcommand(1);
  std::function<void()> run;
  deepinside::cli::register_predict(app, run);
  deepinside::cli::register_saliency(app, run);
  deepinside::cli::register_info(app, run);
  deepinside::cli::register_bench(app, run);
  deepinside::cli::register_cam(app, run);
  deepinside::cli::register_reconstruct(app, run);
  deepinside::cli::register_sanity(app, run);
  deepinside::cli::register_class_model(app, run);
  deepinside::cli::register_neuron(app, run);
  deepinside::cli::register_invert(app, run);
  deepinside::cli::register_dream(app, run);
  deepinside::cli::register_lrp(app, run);
  deepinside::cli::register_localize(app, run);
  deepinside::cli::register_eval_localization(app, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);  // --help
    // A usage error reads like every other error: one line, exit status 1 (not CLI11's two lines
    // and its own exit codes).
    std::cerr << "deepinside: error: " << e.what() << " (see --help)\n";
    return 1;
  }
  try {
    // A subcommand that fails after writing some of its outputs leaves none of them behind.
    deepinside::OutputRun outputs;
    run();
    outputs.commit();
  } catch (const deepinside::Error& e) {
    std::cerr << "deepinside: error: " << e.what() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "deepinside: error: out of memory\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "deepinside: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
