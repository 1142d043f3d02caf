#include "cpi/util/rollback.hpp"

#include <spdlog/spdlog.h>

namespace cpi::util {

Rollback::~Rollback() { run(); }

void Rollback::add(std::string description, std::function<void()> undo) {
  m_steps.emplace_back(std::move(description), std::move(undo));
}

void Rollback::run() noexcept {
  while (!m_steps.empty()) {
    auto step = std::move(m_steps.back());
    m_steps.pop_back();
    try {
      spdlog::info("rolling back: {}", step.first);
      step.second();
    } catch (const std::exception& e) {
      spdlog::warn("rollback step '{}' failed: {}", step.first, e.what());
    } catch (...) {
      spdlog::warn("rollback step '{}' failed", step.first);
    }
  }
}

}  // namespace cpi::util
