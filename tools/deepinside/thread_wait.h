#pragma once
// How long an idle OpenMP thread of this process spins before it sleeps (libgomp's GOMP_SPINCOUNT).
// libgomp reads its environment once, before main() runs, so a different default needs a re-exec.
// See docs/benchmarks.md, "Idle threads: spin, then sleep", for the measurements behind it.
#include <string>

namespace deepinside::cli {

// The spin count the tool runs with when neither GOMP_SPINCOUNT nor OMP_WAIT_POLICY was set.
inline constexpr const char* kDefaultSpinCount = "10000";

// Set (to the default) in the environment of the re-executed process, so that it and the bench
// know that the spin count is the tool's choice, not the user's.
inline constexpr const char* kSpinCountMarker = "DEEPINSIDE_DEFAULT_SPINCOUNT";

// Called first in main(): when the user set neither variable, sets GOMP_SPINCOUNT to the default
// and re-executes this binary with the same arguments (about 5 ms), so that libgomp starts with it.
// Returns (without re-executing) when a variable is set or the exec fails.
void apply_default_spin_count(char** argv);

// True when this process runs with the tool's default spin count.
bool spin_count_defaulted();

// One line for reports: the wait policy in effect and who chose it, e.g.
// "GOMP_SPINCOUNT=10000 (deepinside default)" or "OMP_WAIT_POLICY=active (environment)".
std::string thread_wait_description();

}  // namespace deepinside::cli
