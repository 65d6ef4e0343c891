// The tool's default OpenMP wait policy (tools/deepinside/thread_wait.h): with no wait variable in
// the environment libgomp must start with GOMP_SPINCOUNT=10000 (the tool re-executes itself once to
// get it there); a user's GOMP_SPINCOUNT or OMP_WAIT_POLICY is left alone. What libgomp really
// uses is read from its own report (OMP_DISPLAY_ENV=verbose prints its settings at start-up).
#include <cstdlib>
#include <regex>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "cli_support.h"

using namespace deepinside::test;

namespace {

struct Started {
  int exit_code;
  std::string out;
  std::vector<std::string> spin_counts;  // GOMP_SPINCOUNT of each libgomp start-up, in order
};

// Runs `env -u ... ENV deepinside info --help` with libgomp's report on stderr.
Started start_with(const std::string& env, const TempDir& dir) {
  const std::string out_file = dir / "out.txt", err_file = dir / "err.txt";
  const std::string command = "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u DEEPINSIDE_DEFAULT_SPINCOUNT " + env +
                              " OMP_DISPLAY_ENV=verbose " + DEEPINSIDE_BINARY + " info --help >" + out_file +
                              " 2>" + err_file;
  const int status = std::system(command.c_str());
  Started s{WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out_file), {}};
  const std::string err = slurp(err_file);
  const std::regex spin("GOMP_SPINCOUNT = '([0-9]+)'");
  for (auto it = std::sregex_iterator(err.begin(), err.end(), spin); it != std::sregex_iterator(); ++it)
    s.spin_counts.push_back((*it)[1]);
  return s;
}

}  // namespace

TEST_CASE("with no wait policy set, libgomp runs with the tool's spin count, and the command runs once") {
  TempDir dir;
  const Started s = start_with("", dir);
  INFO("stdout: " << s.out);
  REQUIRE(s.exit_code == 0);
  REQUIRE(!s.spin_counts.empty());
  REQUIRE(s.spin_counts.back() == "10000");
  // The help text appears once: the first process re-executed itself before doing anything.
  const std::string usage = "Usage:";
  REQUIRE(s.out.find(usage) != std::string::npos);
  REQUIRE(s.out.find(usage, s.out.find(usage) + 1) == std::string::npos);
}

TEST_CASE("a user's GOMP_SPINCOUNT or OMP_WAIT_POLICY is kept, without a re-exec") {
  TempDir dir;
  const Started own = start_with("GOMP_SPINCOUNT=1234", dir);
  REQUIRE(own.exit_code == 0);
  REQUIRE(own.spin_counts == std::vector<std::string>{"1234"});
  const Started passive = start_with("OMP_WAIT_POLICY=passive", dir);
  REQUIRE(passive.exit_code == 0);
  REQUIRE(passive.spin_counts == std::vector<std::string>{"0"});
}
