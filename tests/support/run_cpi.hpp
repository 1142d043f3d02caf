#pragma once
// Runs the built `cpi` binary the way BOSH does (docs/architecture.md, "Protocol"): one process per call,
// the request JSON on stdin with no trailing newline, then stdin closed; stdout is read whole and
// parsed as one JSON object; stderr is the log. Like the director, the child gets only PATH,
// HOME and TMPDIR (plus CPI_LOG_LEVEL when the test process has it).

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace cpi::testing {

struct CpiRun {
  int exit_code = -1;  // -1: killed by a signal
  std::string out;     // stdout
  std::string err;     // stderr
  double seconds = 0;  // process start to exit
};

// Runs `binary args...` with `input` on stdin. Throws std::runtime_error when it cannot run it,
// or kills it and throws when it runs longer than `timeout`.
inline CpiRun run_process(const std::string& binary, const std::vector<std::string>& args,
                          const std::string& input, const std::vector<std::string>& env,
                          std::chrono::seconds timeout = std::chrono::seconds(600)) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string{"pipe: "} + std::strerror(errno));
  }
  std::vector<std::string> argv_s{binary};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv, envp;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s = env;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string{"fork: "} + std::strerror(errno));
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::execve(binary.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  ::fcntl(in[1], F_SETFL, O_NONBLOCK);

  CpiRun run;
  std::size_t written = 0;
  int stdin_fd = in[1];
  if (input.empty()) {
    ::close(stdin_fd);
    stdin_fd = -1;
  }
  bool out_open = true, err_open = true;
  char buffer[65536];
  while (out_open || err_open || stdin_fd >= 0) {
    pollfd fds[3] = {{stdin_fd, POLLOUT, 0},
                     {out_open ? out[0] : -1, POLLIN, 0},
                     {err_open ? err[0] : -1, POLLIN, 0}};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        start + timeout - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      throw std::runtime_error(binary + " ran longer than " + std::to_string(timeout.count()) +
                               " s and was killed; stderr so far:\n" + run.err);
    }
    if (::poll(fds, 3, static_cast<int>(std::min<long long>(left.count(), 1000))) < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string{"poll: "} + std::strerror(errno));
    }
    if (stdin_fd >= 0 && (fds[0].revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
      const ssize_t n = ::write(stdin_fd, input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<std::size_t>(n);
      if (n < 0 && errno != EAGAIN && errno != EINTR) written = input.size();  // EPIPE: child quit
      if (written == input.size()) {
        ::close(stdin_fd);  // EOF: the request is complete
        stdin_fd = -1;
      }
    }
    for (int i = 1; i <= 2; ++i) {
      bool& open = i == 1 ? out_open : err_open;
      if (!open || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        (i == 1 ? run.out : run.err).append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        open = false;
      }
    }
  }
  ::close(out[0]);
  ::close(err[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

// The director's environment for the CPI, with TMPDIR set to `tmpdir`.
inline std::vector<std::string> director_env(const std::string& tmpdir) {
  std::vector<std::string> env{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
                               "TMPDIR=" + tmpdir};
  if (const char* level = std::getenv("CPI_LOG_LEVEL")) {
    env.push_back(std::string{"CPI_LOG_LEVEL="} + level);
  }
  return env;
}

// One CPI request as BOSH serialises it: compact JSON, no trailing newline.
inline std::string cpi_request(const std::string& method, const nlohmann::json& arguments,
                               const nlohmann::json& context, int api_version) {
  nlohmann::json request{{"method", method}, {"arguments", arguments}, {"context", context}};
  if (api_version > 0) request["api_version"] = api_version;
  return request.dump();
}

// Checks the envelope of `run` (exit 0, one JSON object with result, error and a string log)
// and returns it parsed; throws std::runtime_error describing what is wrong, with stderr.
inline nlohmann::json parse_cpi_response(const CpiRun& run) {
  auto fail = [&](const std::string& why) {
    throw std::runtime_error(why + "\n--- stdout:\n" + run.out + "\n--- stderr:\n" + run.err);
  };
  if (run.exit_code != 0) fail("cpi exited with " + std::to_string(run.exit_code));
  auto response = nlohmann::json::parse(run.out, nullptr, false);
  if (!response.is_object()) fail("stdout is not one JSON object");
  for (const char* key : {"result", "error", "log"}) {
    if (!response.contains(key)) fail(std::string{"response has no '"} + key + "'");
  }
  if (!response["log"].is_string()) fail("response 'log' is not a string");
  return response;
}

}  // namespace cpi::testing
