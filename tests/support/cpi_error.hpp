#pragma once
// Small assertions shared by the unit tests that check CpiError messages.

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "cpi/errors.hpp"

namespace cpi::testing {

// The CpiError message `action` throws; fails the test when it throws nothing.
inline std::string cpi_error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const CpiError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a CpiError";
  return {};
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace cpi::testing
