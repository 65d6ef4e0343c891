#pragma once
// Output files are written whole or not at all: bytes go to a temporary file beside the target,
// which is renamed over it only when complete. A failed run never leaves a half-written output.
#include <string>

namespace deepinside {

void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace deepinside
