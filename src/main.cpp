// cpi: reads one CPI request on stdin, writes one JSON response on stdout, logs to stderr.
// `cpi doctor|inspect|cleanup` are operator tools (cpi/tools/cli.hpp), run by the driver module.
// Requests for methods that need libvirt are answered by the driver module too.

#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>

#include "cpi/actions/action_table.hpp"
#include "cpi/cloud/driver_loader.hpp"
#include "cpi/rpc/dispatcher.hpp"
#include "cpi/tools/cli.hpp"
#include "cpi/util/log.hpp"

int main(int argc, char** argv) {
  cpi::util::init_logging();  // before anything can log: spdlog's default writes to stdout
  // A libvirtd that dies mid-call closes the socket under a write: without this the process
  // dies of SIGPIPE and prints nothing. Ignored, the write fails with EPIPE, libvirt reports an
  // error, the call rolls back and answers one JSON error.
  std::signal(SIGPIPE, SIG_IGN);

  CLI::App app{"BOSH external CPI for libvirt: one request on stdin, one response on stdout"};
  std::optional<std::string> config_path;
  app.add_option("-c,--config", config_path, "CPI config file (JSON); defaults apply without it");
  app.set_version_flag("-v,--version", std::string{"bosh-libvirt-cpi "} + CPI_VERSION);
  cpi::tools::ToolRequest tool;
  cpi::tools::add_tool_commands(app, tool);
  CLI11_PARSE(app, argc, argv);
  if (!tool.tool.empty()) {
    if (!tool.config_path) tool.config_path = config_path;  // `cpi --config F doctor`
    return cpi::tools::run_tool_command(tool);
  }

  std::string input{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};

  // info and the other methods that need no libvirt are answered here; every other request
  // goes, as text, to the driver module (docs/architecture.md, "Two binaries").
  cpi::rpc::DispatchOptions options;
  if (config_path) options.config_path = *config_path;
  options.tables = {&cpi::actions::local_actions()};
  options.forward = [&options](std::string_view request) {
    return cpi::cloud::dispatch_in_driver_module(request, options.config_path);
  };

  const std::string response = cpi::rpc::dispatch(input, options);
  std::fwrite(response.data(), 1, response.size(), stdout);
  std::fputc('\n', stdout);
  return std::fflush(stdout) == 0 ? 0 : 1;
}
