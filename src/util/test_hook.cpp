#include "cpi/util/test_hook.hpp"

#include <csignal>
#include <cstdlib>
#include <cstring>

namespace cpi::util {

void stop_point(const char* step) noexcept {
#if CPI_TEST_HOOKS
  const char* wanted = std::getenv("CPI_TEST_STOP_AT");
  if (wanted != nullptr && std::strcmp(wanted, step) == 0) std::raise(SIGKILL);
#else
  (void)step;
#endif
}

}  // namespace cpi::util
