#pragma once
// Data for an upload, read front to back: what a stemcell image, an ext4 image or a config drive
// hands the hypervisor's volume upload. No libvirt here, so the stemcell readers need none.

#include <algorithm>
#include <cstdint>
#include <string>

namespace cpi::util {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Fills up to `size` bytes; 0 at the end. Throws on failure.
  virtual std::size_t read(char* buffer, std::size_t size) = 0;
  // Bytes of zeros known to follow the current position without reading them (a sparse file's
  // hole), which a sparse upload sends as a hole after skip(). 0 when unknown.
  virtual std::uint64_t hole_ahead() { return 0; }
  // Moves past `bytes` that hole_ahead() reported.
  virtual void skip(std::uint64_t bytes) { (void)bytes; }
};

// A ByteSource over bytes in memory (config drives, .meta volumes); `bytes` must outlive it.
class StringSource final : public ByteSource {
 public:
  explicit StringSource(const std::string& bytes) : m_bytes(bytes) {}
  std::size_t read(char* buffer, std::size_t size) override {
    const std::size_t n = std::min(size, m_bytes.size() - m_pos);
    m_bytes.copy(buffer, n, m_pos);
    m_pos += n;
    return n;
  }

 private:
  const std::string& m_bytes;
  std::size_t m_pos = 0;
};

}  // namespace cpi::util
