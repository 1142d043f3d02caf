#pragma once
// Streaming read of a stemcell's `image` file (a gzip tar holding one `root.img`): no temporary
// copy, memory bounded by libarchive's buffers. Logs progress (percent, MB/s) every few seconds
// while it is read.

#include <archive.h>

#include <cstdint>
#include <memory>
#include <string>

#include "cpi/virt/hypervisor.hpp"

namespace cpi::stemcell {

class ImageReader final : public virt::ByteSource {
 public:
  // Opens `image_path` and positions at `root.img` (also accepted: `./root.img`). Reads the
  // first bytes to detect the format. Throws CloudError naming the file for an unreadable or
  // corrupt archive or a missing root.img.
  explicit ImageReader(const std::string& image_path);
  ~ImageReader() override;
  ImageReader(const ImageReader&) = delete;
  ImageReader& operator=(const ImageReader&) = delete;

  // "qcow2" when root.img starts with the qcow2 magic, else "raw".
  const std::string& detected_format() const { return m_format; }
  // Bytes of root.img as stored (what the upload sends).
  std::uint64_t size() const { return m_size; }
  // The disk's virtual size: the qcow2 header's size field, or size() for raw.
  std::uint64_t virtual_size() const { return m_virtual_size; }

  // Streams root.img; 0 at its end. Throws CloudError on a corrupt or truncated archive.
  std::size_t read(char* buffer, std::size_t size) override;

 private:
  struct ArchiveCloser {
    void operator()(archive* a) const noexcept;
  };
  std::unique_ptr<archive, ArchiveCloser> m_archive;
  std::string m_path;
  std::string m_format;
  std::uint64_t m_size = 0;
  std::uint64_t m_virtual_size = 0;
  std::string m_head;          // bytes read ahead for format detection, served first
  std::size_t m_head_pos = 0;
  std::uint64_t m_done = 0;    // bytes handed out
  std::int64_t m_started_ns = 0;
  std::int64_t m_last_log_ns = 0;
};

}  // namespace cpi::stemcell
