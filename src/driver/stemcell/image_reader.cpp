#include "cpi/stemcell/image_reader.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "cpi/errors.hpp"
#include "cpi/stemcell/image_format.hpp"

namespace cpi::stemcell {

namespace {

constexpr std::string_view k_entry = "root.img";
constexpr std::string_view k_dot_entry = "./root.img";
constexpr std::size_t k_block_size = 1024 * 1024;  // read(2) size of the compressed file
constexpr std::size_t k_names_listed = 10;         // names shown when root.img is missing
constexpr std::int64_t k_log_interval_ns = 5'000'000'000;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// "512 MiB", "1.2 GiB", "700 B": one decimal below 10 units, none above.
std::string human_bytes(std::uint64_t bytes) {
  static constexpr const char* k_units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  auto value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < std::size(k_units)) {
    value /= 1024.0;
    ++unit;
  }
  if (unit == 0 || value >= 10.0) {
    return fmt::format("{:.0f} {}", value, k_units[unit]);
  }
  return fmt::format("{:.1f} {}", value, k_units[unit]);
}

// Decimal megabytes per second, as tools print throughput.
double mb_per_s(std::uint64_t bytes, std::int64_t elapsed_ns) {
  if (elapsed_ns <= 0) {
    return 0.0;
  }
  return static_cast<double>(bytes) * 1000.0 / static_cast<double>(elapsed_ns);
}

std::string archive_message(archive* a) {
  const char* message = archive_error_string(a);
  return message != nullptr ? message : "unknown libarchive error";
}

// "a, b, c" or "a, ..., j and 5 more" or "nothing".
std::string list_names(const std::vector<std::string>& names, std::size_t total) {
  if (total == 0) {
    return "nothing";
  }
  std::string text;
  for (const std::string& name : names) {
    if (!text.empty()) {
      text += ", ";
    }
    text += name.empty() ? "''" : name;
  }
  if (total > names.size()) {
    text += " and " + std::to_string(total - names.size()) + " more";
  }
  return text;
}

// `root.img` or `./root.img`; a trailing slash (a directory of that name) matches too, so that
// it is reported as not a regular file rather than as missing.
bool is_root_img(const char* pathname) {
  if (pathname == nullptr) {
    return false;
  }
  std::string_view name{pathname};
  if (!name.empty() && name.back() == '/') {
    name.remove_suffix(1);
  }
  return name == k_entry || name == k_dot_entry;
}

// Advances `a` to the root.img entry and returns it, checked to be a regular file of known size.
archive_entry* find_root_img(archive* a, const std::string& context) {
  std::vector<std::string> names;
  std::size_t total = 0;
  archive_entry* entry = nullptr;
  for (;;) {
    const int rc = archive_read_next_header(a, &entry);
    if (rc == ARCHIVE_EOF) {
      throw CloudError(context + std::string{k_entry} +
                       " not found (the archive holds: " + list_names(names, total) + ")");
    }
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
      throw CloudError(context + archive_message(a));
    }
    const char* pathname = archive_entry_pathname(entry);
    if (is_root_img(pathname)) {
      break;
    }
    if (names.size() < k_names_listed) {
      names.emplace_back(pathname != nullptr ? pathname : "");
    }
    ++total;
  }
  if (archive_entry_filetype(entry) != AE_IFREG || archive_entry_hardlink(entry) != nullptr) {
    throw CloudError(context + std::string{k_entry} + " is not a regular file");
  }
  if (archive_entry_size_is_set(entry) == 0 || archive_entry_size(entry) < 0) {
    throw CloudError(context + "the archive does not record the size of " + std::string{k_entry});
  }
  return entry;
}

}  // namespace

void ImageReader::ArchiveCloser::operator()(archive* a) const noexcept {
  archive_read_free(a);  // also closes; the result is dropped (nobody to tell)
}

ImageReader::ImageReader(const std::string& image_path)
    : m_archive(archive_read_new()), m_path(image_path) {
  const std::string context = "reading stemcell image '" + m_path + "': ";
  if (!m_archive) {
    throw CloudError(context + "cannot allocate a libarchive reader");
  }
  archive* a = m_archive.get();
  m_started_ns = now_ns();
  m_last_log_ns = m_started_ns;
  // filter_all answers ARCHIVE_WARN when some filter would need an external program: harmless.
  archive_read_support_filter_all(a);
  archive_read_support_format_tar(a);  // ustar, GNU tar (sparse, long names) and pax
  if (archive_read_open_filename(a, m_path.c_str(), k_block_size) != ARCHIVE_OK) {
    // For open(2) failures libarchive's text names the file but not the cause. EILSEQ and EINVAL
    // are its own codes for a bad format and bad use, already explained by the text.
    const int error = archive_errno(a);
    const bool system_error = error > 0 && error != EILSEQ && error != EINVAL;
    throw CloudError(context + archive_message(a) +
                     (system_error ? std::string{": "} + std::strerror(error) : std::string{}));
  }

  archive_entry* entry = find_root_img(a, context);
  m_size = static_cast<std::uint64_t>(archive_entry_size(entry));
  m_head.resize(static_cast<std::size_t>(std::min<std::uint64_t>(m_size, k_image_head_size)));
  while (m_done < m_head.size()) {  // holes read as zeros; read() serves these bytes first
    m_done += read_stored(m_head.data() + m_done, m_head.size() - m_done);
  }
  m_done = 0;
  const ImageFormat found = inspect_image(m_head, m_size, context);
  m_format = found.format;
  m_virtual_size = found.virtual_size;
  spdlog::debug("stemcell image '{}': {} is {}, {} stored, {} virtual", m_path, k_entry, m_format,
                human_bytes(m_size), human_bytes(m_virtual_size));
}

ImageReader::~ImageReader() = default;

void ImageReader::next_block_if_used() {
  while (!m_eof && m_done >= m_block_offset + m_block_size) {
    const void* block = nullptr;
    std::size_t size = 0;
    la_int64_t offset = 0;
    const int rc = archive_read_data_block(m_archive.get(), &block, &size, &offset);
    const auto context = [this] {  // built only on failure: this runs once per block
      return "reading stemcell image '" + m_path + "': " + std::string{k_entry} + " after " +
             std::to_string(m_done) + " bytes: ";
    };
    if (rc == ARCHIVE_EOF) {  // what is left up to the member's size is a hole
      m_eof = true;
      m_block = nullptr;
      m_block_size = 0;
      m_block_offset = m_size;
      return;
    }
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
      throw CloudError(context() + archive_message(m_archive.get()));
    }
    const auto start = static_cast<std::uint64_t>(offset);
    if (offset < 0 || start < m_block_offset + m_block_size || start > m_size ||
        size > m_size - start) {
      throw CloudError(context() + "the archive's sparse map is corrupt (a data block at " +
                       std::to_string(offset) + " of " + std::to_string(size) +
                       " bytes, outside " + std::to_string(m_size) + " bytes or out of order)");
    }
    m_block = static_cast<const char*>(block);
    m_block_size = size;
    m_block_offset = start;
  }
}

std::size_t ImageReader::read_stored(char* buffer, std::size_t size) {
  next_block_if_used();
  if (m_done < m_block_offset) {  // in a hole: zeros for a reader that does not skip it
    const auto got = static_cast<std::size_t>(std::min<std::uint64_t>(size, m_block_offset - m_done));
    std::memset(buffer, 0, got);
    return got;
  }
  // One copy, from libarchive's inflate output into the caller's buffer.
  const auto in_block = static_cast<std::size_t>(m_done - m_block_offset);
  const std::size_t got = std::min(size, m_block_size - in_block);
  std::memcpy(buffer, m_block + in_block, got);
  return got;
}

// Fills the whole buffer where it can (each read of a plain upload becomes one stream message),
// but stops where a hole starts, so that a sparse reader can skip the hole unread.
std::size_t ImageReader::read(char* buffer, std::size_t size) {
  std::size_t got = 0;
  while (got < size && m_done < m_size) {
    std::size_t n = 0;
    if (m_done < m_head.size()) {
      n = std::min(size - got, m_head.size() - static_cast<std::size_t>(m_done));
      std::memcpy(buffer + got, m_head.data() + m_done, n);
    } else {
      if (got > 0 && hole_ahead() > 0) break;
      n = read_stored(buffer + got, size - got);
    }
    m_done += n;
    got += n;
  }
  if (got > 0) progress();
  return got;
}

std::uint64_t ImageReader::hole_ahead() {
  if (m_done < m_head.size() || m_done >= m_size) {
    return 0;
  }
  next_block_if_used();
  return m_done < m_block_offset ? m_block_offset - m_done : 0;
}

void ImageReader::skip(std::uint64_t bytes) {
  m_done += std::min(bytes, hole_ahead());
  progress();
}

void ImageReader::progress() {
  const std::int64_t now = now_ns();
  if (m_done == m_size) {
    if (m_last_log_ns == -1) return;  // logged already
    const std::int64_t elapsed = now - m_started_ns;
    spdlog::info("imported stemcell {}: {} ({}) in {:.1f} s, {:.0f} MB/s", k_entry,
                 human_bytes(m_size), m_format, static_cast<double>(elapsed) / 1e9,
                 mb_per_s(m_size, elapsed));
    m_last_log_ns = -1;
  } else if (now - m_last_log_ns >= k_log_interval_ns) {
    m_last_log_ns = now;
    spdlog::info("importing stemcell: {}% ({} of {}), {:.0f} MB/s", m_done * 100 / m_size,
                 human_bytes(m_done), human_bytes(m_size), mb_per_s(m_done, now - m_started_ns));
  }
}

}  // namespace cpi::stemcell
