#include "engine/atomic_file.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "engine/error.h"

namespace deepinside {

namespace {
thread_local OutputRun* current_output_run = nullptr;
}  // namespace

OutputRun::OutputRun() : enclosing_(current_output_run) { current_output_run = this; }

OutputRun::~OutputRun() {
  current_output_run = enclosing_;
  if (committed_) {
    // An enclosing run still owns these files: it removes them if it fails in turn.
    if (enclosing_) enclosing_->written_.insert(enclosing_->written_.end(), written_.begin(), written_.end());
    return;
  }
  std::error_code ignored;
  for (const std::string& path : written_) std::filesystem::remove(path, ignored);
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    require(bool(out), "cannot write '" + path + "' (is the folder there and writable?)");
    out.write(bytes.data(), std::streamsize(bytes.size()));
    out.flush();
    if (!out) {
      std::remove(temp.c_str());
      throw Error("cannot write '" + path + "' (disk full?)");
    }
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    std::remove(temp.c_str());
    throw Error("cannot write '" + path + "'");
  }
  if (current_output_run) current_output_run->written_.push_back(path);
}

}  // namespace deepinside
