#include "cpi/util/uuid.hpp"

#include <array>
#include <random>

namespace cpi::util {
namespace {

std::array<unsigned char, 16> random_bytes() {
  std::random_device device;  // /dev/urandom on glibc
  std::array<unsigned char, 16> bytes{};
  for (std::size_t i = 0; i < bytes.size(); i += 4) {
    const unsigned int word = device();
    for (std::size_t j = 0; j < 4; ++j) {
      bytes[i + j] = static_cast<unsigned char>((word >> (8 * j)) & 0xffU);
    }
  }
  return bytes;
}

constexpr char k_hex[] = "0123456789abcdef";

}  // namespace

std::string uuid4() {
  auto bytes = random_bytes();
  bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0fU) | 0x40U);
  bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3fU) | 0x80U);
  std::string out;
  out.reserve(36);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) {
      out += '-';
    }
    out += k_hex[bytes[i] >> 4U];
    out += k_hex[bytes[i] & 0x0fU];
  }
  return out;
}

std::string random_hex(std::size_t count) {
  std::string out;
  out.reserve(count);
  while (out.size() < count) {
    for (unsigned char byte : random_bytes()) {
      out += k_hex[byte >> 4U];
      out += k_hex[byte & 0x0fU];
    }
  }
  out.resize(count);
  return out;
}

}  // namespace cpi::util
