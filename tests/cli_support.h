#pragma once
// Shared helpers of the tests that run the built `deepinside` binary (DEEPINSIDE_BINARY): a scratch
// folder per test, running the tool with its stdout and stderr captured, and the two verdicts every
// CLI test states (success; or exactly one clear error line, exit 1 and no output left behind).
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

extern char** environ;

namespace deepinside::test {

struct RunResult {
  int exit_code;  // 128 + signal number when the tool was killed by a signal (a crash)
  std::string out, err;
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A fresh, empty folder per test, removed afterwards.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           ("deepinside_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

// The tool's OpenMP threads wait passively unless the caller says otherwise: tests share two cores
// and libgomp's spinning then makes many small passes 10-20x slower (tests/CMakeLists.txt); results
// do not depend on it.
inline void passive_openmp_for_children() { setenv("OMP_WAIT_POLICY", "passive", 0); }

// Runs `deepinside ARGS` through the shell; stderr goes to a file in dir that is removed again, so
// that dir holds only what the tool wrote.
inline RunResult run(const std::string& args, const TempDir& dir) {
  passive_openmp_for_children();
  const std::string err_file = dir / "stderr.txt";
  const std::string command = std::string(DEEPINSIDE_BINARY) + " " + args + " 2>" + err_file;
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  const int status = pclose(pipe);
  RunResult r{WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), out, slurp(err_file)};
  std::filesystem::remove(err_file);
  return r;
}

inline void require_ok(const RunResult& r) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
}

// Every file in dir must be one of allowed (no half-written output left behind).
inline void require_no_files_but(const TempDir& dir, const std::vector<std::string>& allowed = {}) {
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir.path)) {
    if (entry.is_directory()) continue;
    INFO("unexpected file " << entry.path());
    REQUIRE(std::find(allowed.begin(), allowed.end(), entry.path().filename().string()) != allowed.end());
  }
}

// Exactly one error line naming the problem; exit 1 (not a crash or a signal).
inline void require_clean_failure(const RunResult& r, const std::string& must_mention) {
  INFO("stderr: " << r.err);
  REQUIRE(r.exit_code == 1);
  REQUIRE(r.err.rfind("deepinside: error: ", 0) == 0);
  REQUIRE(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  REQUIRE(r.err.find(must_mention) != std::string::npos);
}

// The same, and nothing written in dir.
inline void require_clean_failure(const RunResult& r, const std::string& must_mention, const TempDir& dir) {
  require_clean_failure(r, must_mention);
  require_no_files_but(dir);
}

// Runs the tool with its output discarded and returns the exit status and the peak resident set size
// of that child alone (getrusage's ru_maxrss through wait4), in KiB.
inline std::pair<int, long> run_peak_rss(const std::vector<std::string>& args) {
  passive_openmp_for_children();
  std::vector<std::string> all{DEEPINSIDE_BINARY};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, all[0].c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE(spawned == 0);
  int status = 0;
  struct rusage usage {};
  REQUIRE(wait4(pid, &status, 0, &usage) == pid);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), usage.ru_maxrss};
}

}  // namespace deepinside::test
