// Why a re-exec: libgomp parses GOMP_SPINCOUNT in its own initialiser, which the dynamic linker runs
// before main(); glibc resets the environment after an executable's .preinit_array functions run,
// so setting the variable any earlier in this process is lost. The default only applies to this
// executable: a program that links the libraries itself keeps libgomp's default unless it sets one.
#include "tools/deepinside/thread_wait.h"

#include <unistd.h>

#include <cstdlib>

namespace deepinside::cli {

void apply_default_spin_count(char** argv) {
  if (std::getenv("GOMP_SPINCOUNT") || std::getenv("OMP_WAIT_POLICY")) return;
  if (setenv("GOMP_SPINCOUNT", kDefaultSpinCount, 1) != 0 || setenv(kSpinCountMarker, kDefaultSpinCount, 1) != 0)
    return;
  execv("/proc/self/exe", argv);
  // The exec failed (no /proc, say): go on with libgomp's default, and say so in reports.
  unsetenv("GOMP_SPINCOUNT");
  unsetenv(kSpinCountMarker);
}

bool spin_count_defaulted() {
  const char* marker = std::getenv(kSpinCountMarker);
  const char* spin = std::getenv("GOMP_SPINCOUNT");
  return marker && spin && std::string(marker) == spin;
}

std::string thread_wait_description() {
  if (spin_count_defaulted()) return std::string("GOMP_SPINCOUNT=") + std::getenv("GOMP_SPINCOUNT") + " (deepinside default)";
  std::string out;
  for (const char* name : {"GOMP_SPINCOUNT", "OMP_WAIT_POLICY"})
    if (const char* v = std::getenv(name)) out += (out.empty() ? "" : ", ") + std::string(name) + "=" + v;
  return out.empty() ? "libgomp default" : out + " (environment)";
}

}  // namespace deepinside::cli
