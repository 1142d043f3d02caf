// cpi: reads one CPI request on stdin, writes one JSON response on stdout, logs to stderr.

#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>

#include "cpi/cloud/driver_loader.hpp"
#include "cpi/rpc/dispatcher.hpp"
#include "cpi/util/log.hpp"

int main(int argc, char** argv) {
  cpi::util::init_logging();  // before anything can log: spdlog's default writes to stdout

  CLI::App app{"BOSH external CPI for libvirt: one request on stdin, one response on stdout"};
  std::optional<std::string> config_path;
  app.add_option("-c,--config", config_path, "CPI config file (JSON); defaults apply without it");
  app.set_version_flag("-v,--version", std::string{"bosh-libvirt-cpi "} + CPI_VERSION);
  CLI11_PARSE(app, argc, argv);

  std::string input{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};

  cpi::rpc::DispatchOptions options;
  if (config_path) options.config_path = *config_path;
  options.cloud_factory = cpi::cloud::driver_module_factory();

  const std::string response = cpi::rpc::dispatch(input, options);
  std::fwrite(response.data(), 1, response.size(), stdout);
  std::fputc('\n', stdout);
  return std::fflush(stdout) == 0 ? 0 : 1;
}
