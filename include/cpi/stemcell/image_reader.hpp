#pragma once
// Streaming read of a stemcell's `image` file (a gzip tar holding one `root.img`): no temporary
// copy, memory bounded by libarchive's buffers. Logs progress (percent, MB/s) every few seconds
// while it is read. Sparse members (GNU tar -S, GNU and PAX sparse formats) are read by their
// data blocks: the holes between and after them, up to the member's size, are reported by
// hole_ahead() so that a sparse upload skips them unread (read() returns them as zeros).

#include <archive.h>

#include <cstdint>
#include <memory>
#include <string>

#include "cpi/util/byte_source.hpp"

namespace cpi::stemcell {

class ImageReader final : public util::ByteSource {
 public:
  // Opens `image_path` and positions at `root.img` (also accepted: `./root.img`). Reads the
  // first bytes to detect the format and checks them (stemcell/image_format.hpp). Throws
  // CloudError naming the file for an unreadable or corrupt archive, a missing root.img, and
  // any image inspect_image() refuses.
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
  // The bytes of the hole (a run the archive stores no data for) at the current position, 0
  // in data or at the end.
  std::uint64_t hole_ahead() override;
  // Moves past up to `bytes` of the hole at the current position.
  void skip(std::uint64_t bytes) override;

 private:
  struct ArchiveCloser {
    void operator()(archive* a) const noexcept;
  };
  std::unique_ptr<archive, ArchiveCloser> m_archive;
  std::string m_path;
  std::string m_format;
  std::uint64_t m_size = 0;
  std::uint64_t m_virtual_size = 0;
  // Reads the next data block of root.img (or notes its end) once the current one is used up.
  void next_block_if_used();
  // Up to `size` bytes at m_done (> 0 before m_size), from the archive; m_done is not moved.
  std::size_t read_stored(char* buffer, std::size_t size);
  void progress();

  std::string m_head;          // bytes read ahead for format detection, served first
  std::uint64_t m_done = 0;    // position in root.img: bytes handed out or skipped
  // The current data block, in libarchive's buffer: [m_block_offset, + m_block_size) of root.img.
  const char* m_block = nullptr;
  std::size_t m_block_size = 0;
  std::uint64_t m_block_offset = 0;
  bool m_eof = false;          // no block follows; the rest up to m_size is a hole
  std::int64_t m_started_ns = 0;
  std::int64_t m_last_log_ns = 0;
};

}  // namespace cpi::stemcell
