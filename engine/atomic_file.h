#pragma once
// Output files are written whole or not at all: bytes go to a temporary file beside the target,
// which is renamed over it only when complete. A failed run never leaves a half-written output.
#include <string>
#include <vector>

namespace deepinside {

void write_file_atomic(const std::string& path, const std::string& bytes);

// All the outputs of one run, or none of them. While an OutputRun is alive (on this thread), every
// write_file_atomic also records its path; when the run ends without commit() (an error was thrown
// after some outputs were already written), those files are removed again, so a command that writes
// a heat map, an overlay and a raw map never leaves one of them behind without the others.
class OutputRun {
 public:
  OutputRun();
  ~OutputRun();
  OutputRun(const OutputRun&) = delete;
  OutputRun& operator=(const OutputRun&) = delete;

  void commit() { committed_ = true; }
  const std::vector<std::string>& written() const { return written_; }

 private:
  friend void write_file_atomic(const std::string& path, const std::string& bytes);
  std::vector<std::string> written_;
  OutputRun* enclosing_;
  bool committed_ = false;
};

}  // namespace deepinside
