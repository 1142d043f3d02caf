#pragma once
// A test-only crash point. With the environment variable CPI_TEST_STOP_AT set to a step name
// (`attach:after-hotplug` ...), the process kills itself with SIGKILL when it reaches that step,
// as a host crash or an OOM kill would, so that tests can check what the next call finds.
// Inert when the variable is unset, and compiled out entirely when the CMake option
// CPI_TEST_HOOKS is OFF (release builds of the BOSH package turn it off).

namespace cpi::util {

void stop_point(const char* step) noexcept;

}  // namespace cpi::util
