#pragma once
// One exception type for the library: it throws, only tools/ turn errors into exit codes.
#include <stdexcept>
#include <string>

namespace deepinside {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Throws Error(message) when the condition is false. Used for user-facing checks
// (bad models, bad images, bad flags), so the message must name the problem.
inline void require(bool condition, const std::string& message) {
  if (!condition) throw Error(message);
}

}  // namespace deepinside
