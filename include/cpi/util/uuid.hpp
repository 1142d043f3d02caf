#pragma once

#include <string>

namespace cpi::util {

// A random RFC 4122 version-4 UUID in lowercase, from the kernel's CSPRNG.
std::string uuid4();

// `count` random lowercase hex digits.
std::string random_hex(std::size_t count);

}  // namespace cpi::util
