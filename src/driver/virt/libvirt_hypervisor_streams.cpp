// LibvirtHypervisor: the byte streams into and out of volumes (upload, download, copy), with
// the sparse feeders that send zero runs and a source's holes as holes.

#include <libvirt/virterror.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "cpi/virt/error.hpp"
#include "cpi/virt/libvirt_hypervisor.hpp"
#include "object_names.hpp"

namespace cpi::virt {
namespace {

// Zero detection for sparse uploads: the source is read in blocks; all-zero blocks are holes.
constexpr std::size_t k_chunk = 1U << 20;   // 1 MiB per read
constexpr std::size_t k_block = 64U << 10;  // hole granularity

bool all_zero(const char* data, std::size_t size) {
  static const char k_zeros[k_block] = {};
  while (size > 0) {
    const std::size_t n = std::min(size, k_block);
    if (std::memcmp(data, k_zeros, n) != 0) {
      return false;
    }
    data += n;
    size -= n;
  }
  return true;
}

// Feeds virStreamSparseSendAll from a ByteSource, reporting zero blocks as holes.
class SparseFeeder {
 public:
  SparseFeeder(ByteSource& source, std::uint64_t length) : m_source(source), m_left(length) {
    m_buffer.resize(k_chunk);
  }

  static int data(virStreamPtr, char* bytes, size_t nbytes, void* opaque) {
    return static_cast<SparseFeeder*>(opaque)->on_data(bytes, nbytes);
  }
  static int hole(virStreamPtr, int* in_data, long long* length, void* opaque) {
    return static_cast<SparseFeeder*>(opaque)->on_hole(in_data, length);
  }
  static int skip(virStreamPtr, long long length, void* opaque) {
    return static_cast<SparseFeeder*>(opaque)->on_skip(length);
  }

  std::string failure;

 private:
  bool fill() {
    if (m_pos < m_size) return true;
    m_pos = 0;
    m_size = 0;
    if (m_left == 0) return false;
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(m_left, k_chunk));
    while (m_size < want) {
      const std::size_t got = m_source.read(m_buffer.data() + m_size, want - m_size);
      if (got == 0) break;
      m_size += got;
    }
    m_left -= m_size;
    if (m_size == 0) m_left = 0;
    return m_size > 0;
  }

  // Length of the run at m_pos that is all data or all zero, in whole blocks of the chunk.
  std::size_t run(bool zero) const {
    std::size_t p = m_pos;
    while (p < m_size) {
      const std::size_t n = std::min(k_block, m_size - p);
      if (all_zero(m_buffer.data() + p, n) != zero) break;
      p += n;
    }
    return p - m_pos;
  }

  // Serves the data section on_hole announced. libvirt asks in pieces of its own size (not a
  // multiple of k_block), so the section is counted down rather than re-scanned from a
  // misaligned position, where a window of zeros inside the section would end the stream early.
  int on_data(char* bytes, size_t nbytes) {
    try {
      const std::size_t n = std::min({nbytes, m_section, m_size - m_pos});
      std::memcpy(bytes, m_buffer.data() + m_pos, n);
      m_pos += n;
      m_section -= n;
      return static_cast<int>(n);
    } catch (const std::exception& e) {
      failure = e.what();
      return -1;
    }
  }

  int on_hole(int* in_data, long long* length) {
    try {
      m_source_hole = 0;
      if (m_pos >= m_size && m_left > 0) {  // a hole the source knows of: skipped unread
        m_source_hole = std::min(m_source.hole_ahead(), m_left);
        if (m_source_hole > 0) {
          *in_data = 0;
          *length = static_cast<long long>(m_source_hole);
          return 0;
        }
      }
      if (!fill()) {
        *in_data = 0;
        *length = 0;
        return 0;
      }
      const std::size_t zeros = run(true);
      if (zeros > 0) {
        *in_data = 0;
        *length = static_cast<long long>(zeros);
      } else {
        m_section = run(false);
        *in_data = 1;
        *length = static_cast<long long>(m_section);
      }
      return 0;
    } catch (const std::exception& e) {
      failure = e.what();
      return -1;
    }
  }

  int on_skip(long long length) {
    try {
      if (m_source_hole > 0) {
        const auto n = std::min(static_cast<std::uint64_t>(length), m_source_hole);
        m_source.skip(n);
        m_left -= n;
        m_source_hole -= n;
        return 0;
      }
      m_pos += static_cast<std::size_t>(length);
      return 0;
    } catch (const std::exception& e) {
      failure = e.what();
      return -1;
    }
  }

  ByteSource& m_source;
  std::uint64_t m_left;
  std::vector<char> m_buffer;
  std::size_t m_pos = 0;
  std::size_t m_size = 0;
  std::size_t m_section = 0;        // bytes left of the data section on_hole announced
  std::uint64_t m_source_hole = 0;  // the source's hole on_hole announced, not yet skipped
};

struct PlainFeeder {
  ByteSource& source;
  std::string failure;
  static int data(virStreamPtr, char* bytes, size_t nbytes, void* opaque) {
    auto* self = static_cast<PlainFeeder*>(opaque);
    try {
      return static_cast<int>(self->source.read(bytes, nbytes));
    } catch (const std::exception& e) {
      self->failure = e.what();
      return -1;
    }
  }
};

// A failed virStream*SendAll: the source's own failure when it had one (libvirt then reports only
// that a callback failed), else libvirt's error.
[[noreturn]] void fail_send(const std::string& what, const std::string& source_failure) {
  if (source_failure.empty()) fail(what);
  take_last_error();  // reset: the source's failure says more
  throw LibvirtError(VIR_ERR_INTERNAL_ERROR, what + ": " + source_failure);
}

}  // namespace

void LibvirtHypervisor::upload_volume(virStorageVol& volume, ByteSource& source,
                                      std::uint64_t length, bool sparse) {
  const std::string what = "uploading into volume '" + name_of(volume) + "'";
  Stream stream{virStreamNew(&m_conn, 0)};
  if (stream.get() == nullptr) fail(what);
  const unsigned int flags =
      sparse ? static_cast<unsigned int>(VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM) : 0U;
  if (virStorageVolUpload(&volume, stream.get(), 0, length, flags) < 0) {
    fail(what);
  }
  if (sparse) {
    SparseFeeder feeder{source, length};
    if (virStreamSparseSendAll(stream.get(), &SparseFeeder::data, &SparseFeeder::hole,
                               &SparseFeeder::skip, &feeder) < 0) {
      stream.mark_aborted();
      fail_send(what, feeder.failure);
    }
  } else {
    PlainFeeder feeder{source, {}};
    if (virStreamSendAll(stream.get(), &PlainFeeder::data, &feeder) < 0) {
      stream.mark_aborted();
      fail_send(what, feeder.failure);
    }
  }
  stream.finish(what);
}

std::string LibvirtHypervisor::download_volume(virStorageVol& volume, std::uint64_t max_bytes) {
  const std::string what = "downloading volume '" + name_of(volume) + "'";
  Stream stream{virStreamNew(&m_conn, 0)};
  if (stream.get() == nullptr) fail(what);
  const auto capacity = volume_info(volume).capacity;
  const auto length = std::min(capacity, max_bytes);
  if (virStorageVolDownload(&volume, stream.get(), 0, length, 0) < 0) fail(what);
  std::string out;
  std::vector<char> buffer(256U << 10);
  for (;;) {
    const int got = virStreamRecv(stream.get(), buffer.data(), buffer.size());
    if (got < 0) fail(what);
    if (got == 0) break;
    out.append(buffer.data(), static_cast<std::size_t>(got));
  }
  stream.finish(what);
  return out;
}

// Sparse streams both ways: holes in the source are sent as holes, so a mostly empty image is
// copied in the time of its data and stays sparse (libvirt's own clone of a raw file writes it
// out in full).
void LibvirtHypervisor::copy_volume_bytes(virStorageVol& from, virStorageVol& to) {
  const std::string what = "copying volume '" + name_of(from) + "' into '" + name_of(to) + "'";
  Stream in{virStreamNew(&m_conn, 0)};
  if (in.get() == nullptr) fail(what);
  if (virStorageVolDownload(&from, in.get(), 0, 0, VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM) < 0) {
    fail(what);  // offset and length 0: all of it
  }
  Stream out{virStreamNew(&m_conn, 0)};
  if (out.get() == nullptr) fail(what);
  if (virStorageVolUpload(&to, out.get(), 0, 0, VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM) < 0) {
    fail(what);
  }
  std::vector<char> buffer(256U << 10);
  for (;;) {
    const int got =
        virStreamRecvFlags(in.get(), buffer.data(), buffer.size(), VIR_STREAM_RECV_STOP_AT_HOLE);
    if (got == -3) {  // a hole: pass it on
      long long length = 0;
      if (virStreamRecvHole(in.get(), &length, 0) < 0) fail(what);
      if (length > 0 && virStreamSendHole(out.get(), length, 0) < 0) fail(what);
      continue;
    }
    if (got < 0) fail(what);
    if (got == 0) break;
    for (int sent = 0; sent < got;) {
      const int n = virStreamSend(out.get(), buffer.data() + sent, static_cast<size_t>(got - sent));
      if (n < 0) fail(what);
      sent += n;
    }
  }
  in.finish(what);
  out.finish(what);
}

}  // namespace cpi::virt
