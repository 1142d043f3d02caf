#pragma once
// Small assertions shared by the tests that check CpiError and CloudError messages.

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "cpi/errors.hpp"

namespace cpi::testing {

// The message of the `Error` (CpiError, CloudError, ...) `action` throws; fails the test when it
// throws nothing.
template <typename Error>
std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a " << ::testing::internal::GetTypeName<Error>();
  return {};
}

inline std::string cpi_error_of(const std::function<void()>& action) {
  return error_of<CpiError>(action);
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace cpi::testing
