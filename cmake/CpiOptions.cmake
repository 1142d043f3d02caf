# Build policy for our own targets only (never third-party): standard, warnings, sanitizers.
add_library(cpi_options INTERFACE)
target_compile_features(cpi_options INTERFACE cxx_std_20)
set(CMAKE_CXX_EXTENSIONS OFF)
target_compile_options(cpi_options INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wconversion)
if(CPI_WARNINGS_AS_ERRORS)
  target_compile_options(cpi_options INTERFACE -Werror)
endif()
if(CPI_SANITIZE)
  target_compile_options(cpi_options INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer
                                               -fno-sanitize-recover=undefined)
  target_link_options(cpi_options INTERFACE -fsanitize=address,undefined)
endif()
