#include "cpi/agent/iso_image.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <sys/types.h>

#include <array>
#include <ctime>
#include <memory>
#include <string>

#include "cpi/errors.hpp"

namespace cpi::agent {
namespace {

using nlohmann::json;

struct WriteDeleter {
  void operator()(archive* handle) const noexcept { archive_write_free(handle); }
};
struct ReadDeleter {
  void operator()(archive* handle) const noexcept { archive_read_free(handle); }
};
struct EntryDeleter {
  void operator()(archive_entry* entry) const noexcept { archive_entry_free(entry); }
};
using ArchiveWriter = std::unique_ptr<archive, WriteDeleter>;
using ArchiveReader = std::unique_ptr<archive, ReadDeleter>;
using ArchiveEntry = std::unique_ptr<archive_entry, EntryDeleter>;

// nova configdrive.py's layout; the agent reads the ec2 pair (docs/architecture.md, "Protocol").
constexpr std::array<const char*, 4> k_directories = {"ec2", "ec2/latest", "openstack",
                                                      "openstack/latest"};
constexpr const char* k_ec2_meta_data = "ec2/latest/meta-data.json";
constexpr const char* k_ec2_user_data = "ec2/latest/user-data";
constexpr const char* k_openstack_meta_data = "openstack/latest/meta_data.json";
constexpr const char* k_openstack_user_data = "openstack/latest/user_data";

// Volume id `config-2` (the Joliet copy keeps it lowercase), Joliet and Rock Ridge
// for lowercase long names, and the trailing 300 KiB pad that old CD readers expect.
constexpr const char* k_iso_options =
    "iso9660:volume-id=config-2,iso9660:joliet,iso9660:rockridge,iso9660:pad";

[[noreturn]] void throw_write_error(archive* handle) {
  const char* message = archive_error_string(handle);
  throw CloudError(std::string("writing the config drive image: ") +
                   (message != nullptr ? message : "unknown libarchive error"));
}

[[noreturn]] void throw_read_error(archive* handle) {
  const char* message = archive_error_string(handle);
  throw CloudError(std::string("reading the config drive image: ") +
                   (message != nullptr ? message : "unknown libarchive error"));
}

la_ssize_t append_to_string(archive* /*handle*/, void* client, const void* buffer, size_t length) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buffer), length);
  return static_cast<la_ssize_t>(length);
}

std::string dump(const json& document) {
  return document.dump(-1, ' ', false, json::error_handler_t::replace);
}

void write_header(archive* writer, const std::string& path, mode_t type, mode_t permissions,
                  la_int64_t size, std::time_t now) {
  ArchiveEntry entry{archive_entry_new()};
  if (!entry) {
    throw CloudError("writing the config drive image: out of memory");
  }
  archive_entry_set_pathname(entry.get(), path.c_str());
  archive_entry_set_filetype(entry.get(), type);
  archive_entry_set_perm(entry.get(), permissions);
  archive_entry_set_size(entry.get(), size);
  archive_entry_set_mtime(entry.get(), now, 0);
  if (archive_write_header(writer, entry.get()) != ARCHIVE_OK) {
    throw_write_error(writer);
  }
}

void write_file(archive* writer, const std::string& path, const std::string& content,
                std::time_t now) {
  write_header(writer, path, AE_IFREG, 0644, static_cast<la_int64_t>(content.size()), now);
  std::size_t offset = 0;
  while (offset < content.size()) {
    const la_ssize_t written =
        archive_write_data(writer, content.data() + offset, content.size() - offset);
    if (written <= 0) {
      throw_write_error(writer);
    }
    offset += static_cast<std::size_t>(written);
  }
}

}  // namespace

std::string config_drive_iso(const json& meta_data, const json& user_data) {
  ArchiveWriter writer{archive_write_new()};
  if (!writer) {
    throw CloudError("writing the config drive image: out of memory");
  }
  if (archive_write_set_format_iso9660(writer.get()) != ARCHIVE_OK ||
      archive_write_set_options(writer.get(), k_iso_options) != ARCHIVE_OK ||
      archive_write_set_bytes_in_last_block(writer.get(), 1) != ARCHIVE_OK) {
    throw_write_error(writer.get());
  }
  std::string image;
  if (archive_write_open(writer.get(), &image, nullptr, &append_to_string, nullptr) != ARCHIVE_OK) {
    throw_write_error(writer.get());
  }

  const std::time_t now = std::time(nullptr);
  for (const char* directory : k_directories) {
    write_header(writer.get(), directory, AE_IFDIR, 0755, 0, now);
  }
  const std::string meta = dump(meta_data);
  const std::string user = dump(user_data);
  write_file(writer.get(), k_ec2_meta_data, meta, now);
  write_file(writer.get(), k_ec2_user_data, user, now);
  write_file(writer.get(), k_openstack_meta_data, meta, now);
  write_file(writer.get(), k_openstack_user_data, user, now);

  // The ISO writer lays out the whole image only on close.
  if (archive_write_close(writer.get()) != ARCHIVE_OK) {
    throw_write_error(writer.get());
  }
  return image;
}

std::map<std::string, std::string> read_iso_files(std::string_view iso) {
  ArchiveReader reader{archive_read_new()};
  if (!reader) {
    throw CloudError("reading the config drive image: out of memory");
  }
  if (archive_read_support_format_iso9660(reader.get()) != ARCHIVE_OK ||
      archive_read_open_memory(reader.get(), iso.data(), iso.size()) != ARCHIVE_OK) {
    throw_read_error(reader.get());
  }

  std::map<std::string, std::string> files;
  archive_entry* entry = nullptr;  // owned by the reader
  for (;;) {
    const int status = archive_read_next_header(reader.get(), &entry);
    if (status == ARCHIVE_EOF) {
      break;
    }
    if (status != ARCHIVE_OK && status != ARCHIVE_WARN) {
      throw_read_error(reader.get());
    }
    if (archive_entry_filetype(entry) != AE_IFREG) {
      continue;
    }
    const char* raw_path = archive_entry_pathname(entry);
    std::string path = raw_path != nullptr ? raw_path : "";
    if (path.rfind("./", 0) == 0) {
      path.erase(0, 2);
    }
    std::string content;
    std::array<char, 16384> buffer{};
    for (;;) {
      const la_ssize_t got = archive_read_data(reader.get(), buffer.data(), buffer.size());
      if (got < 0) {
        throw_read_error(reader.get());
      }
      if (got == 0) {
        break;
      }
      content.append(buffer.data(), static_cast<std::size_t>(got));
    }
    files[path] = std::move(content);
  }
  return files;
}

json read_user_data(std::string_view iso) {
  const auto files = read_iso_files(iso);
  const auto found = files.find(k_ec2_user_data);
  if (found == files.end()) {
    throw CloudError(std::string("reading the config drive image: no ") + k_ec2_user_data);
  }
  json settings = json::parse(found->second, nullptr, false);
  if (settings.is_discarded()) {
    throw CloudError(std::string("reading the config drive image: ") + k_ec2_user_data +
                     " is not valid JSON");
  }
  return settings;
}

}  // namespace cpi::agent
