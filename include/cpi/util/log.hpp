#pragma once
// Logging set-up. All log output goes to stderr (stdout carries the one JSON response), through a
// sink that scrubs secrets (util::redact) from every line.

#include <string>
#include <string_view>

namespace cpi::util {

// Replaces spdlog's default logger (which writes to stdout) with a redacting stderr logger at
// level `info`. Call first thing in main().
void init_logging();

// Tags every following line with `[request_id method]`.
void set_log_context(std::string_view request_id, std::string_view method);

// Sets the level from a name (debug|info|warn|error); CPI_LOG_LEVEL in the environment wins.
// Throws CpiError naming `field` for an unknown name.
void set_log_level(const std::string& name, std::string_view field = "log_level");

}  // namespace cpi::util
