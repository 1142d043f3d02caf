#include "cpi/util/log.hpp"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>

#include "cpi/errors.hpp"
#include "cpi/util/redact.hpp"

namespace cpi::util {
namespace {

class RedactingStderrSink : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    const std::string clean = redact(std::string_view{formatted.data(), formatted.size()});
    std::fwrite(clean.data(), 1, clean.size(), stderr);
  }
  void flush_() override { std::fflush(stderr); }
};

std::string escape_pattern(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '%') {
      out += "%%";
    } else if (static_cast<unsigned char>(c) >= 0x20) {
      out += c;
    }
  }
  return out;
}

constexpr const char* k_pattern_head = "%Y-%m-%dT%H:%M:%S.%e %l ";

}  // namespace

void init_logging() {
  auto logger = std::make_shared<spdlog::logger>("cpi", std::make_shared<RedactingStderrSink>());
  logger->set_pattern(std::string{k_pattern_head} + "[cpi] %v");
  logger->set_level(spdlog::level::info);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
}

void set_log_context(std::string_view request_id, std::string_view method) {
  std::string tag = escape_pattern(request_id.empty() ? "-" : request_id);
  if (!method.empty()) {
    tag += " " + escape_pattern(method);
  }
  spdlog::default_logger()->set_pattern(std::string{k_pattern_head} + "[" + tag + "] %v");
}

void set_log_level(const std::string& name, std::string_view field) {
  std::string level = name;
  std::string source{field};
  if (const char* env = std::getenv("CPI_LOG_LEVEL"); env != nullptr && *env != '\0') {
    level = env;
    source = "CPI_LOG_LEVEL";
  }
  spdlog::level::level_enum value;
  if (level == "debug") {
    value = spdlog::level::debug;
  } else if (level == "info") {
    value = spdlog::level::info;
  } else if (level == "warn") {
    value = spdlog::level::warn;
  } else if (level == "error") {
    value = spdlog::level::err;
  } else {
    throw CpiError(source + ": unknown log level '" + level + "' (accepted: debug, info, warn, error)");
  }
  spdlog::set_level(value);
}

}  // namespace cpi::util
