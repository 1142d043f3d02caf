#include "cpi/agent/iso_image.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cpi/errors.hpp"
#include "cpi/util/private_dir.hpp"

namespace cpi::agent {
namespace {

using nlohmann::json;

constexpr std::size_t k_sector = 2048;
constexpr std::size_t k_descriptors = 16 * k_sector;  // system area, then volume descriptors

const json& sample_meta_data() {
  static const json meta = {{"instance-id", "vm-7f3c"},
                            {"hostname", "agent-1"},
                            {"public-keys", {{"0", {{"openssh-key", "ssh-ed25519 AAAA k"}}}}}};
  return meta;
}

const json& sample_user_data() {
  static const json user = json::parse(R"({
    "agent_id": "agent-1", "vm": {"name": "vm-7f3c"}, "server": {"name": "vm-7f3c"},
    "mbus": "nats://n:p@10.0.0.5:4222", "ntp": ["0.pool.ntp.org"],
    "networks": {"default": {"type": "manual", "ip": "10.0.0.10", "prefix": "24",
                             "mac": "52:54:00:ab:cd:ef", "default": ["dns", "gateway"]}},
    "disks": {"system": "/dev/vda", "ephemeral": null, "persistent": {}},
    "env": {"bosh": {"password": "*"}, "note": "h\u00e9llo \u2603"}
  })");
  return user;
}

// One volume descriptor of the image (type byte, identifier "CD001", ...), if present.
std::string_view descriptor(const std::string& image, std::size_t index) {
  const std::size_t offset = k_descriptors + index * k_sector;
  if (image.size() < offset + k_sector) {
    return {};
  }
  return std::string_view(image).substr(offset, k_sector);
}

// The Joliet supplementary volume descriptor: type 2 with a UCS-2 escape sequence at 88.
std::optional<std::string_view> joliet_descriptor(const std::string& image) {
  for (std::size_t index = 0;; ++index) {
    const std::string_view vd = descriptor(image, index);
    if (vd.empty() || vd.substr(1, 5) != "CD001" || static_cast<unsigned char>(vd[0]) == 255) {
      return std::nullopt;
    }
    const std::string_view escape = vd.substr(88, 3);
    if (vd[0] == 2 && (escape == "%/@" || escape == "%/C" || escape == "%/E")) {
      return vd;
    }
  }
}

// A UCS-2BE field with only ASCII in it, trailing spaces removed.
std::string ucs2_ascii(std::string_view field) {
  std::string text;
  for (std::size_t i = 0; i + 1 < field.size(); i += 2) {
    if (field[i] != 0) {
      return "<non-ascii>";
    }
    text.push_back(field[i + 1]);
  }
  return text.substr(0, text.find_last_not_of(' ') + 1);
}

// blkid on PATH, or where Debian puts it for root (/usr/sbin is not on a user's PATH).
std::optional<std::filesystem::path> find_blkid() {
  std::vector<std::filesystem::path> dirs;
  if (const char* path = std::getenv("PATH")) {
    std::string rest = path;
    for (std::size_t colon; (colon = rest.find(':')) != std::string::npos;) {
      dirs.emplace_back(rest.substr(0, colon));
      rest.erase(0, colon + 1);
    }
    dirs.emplace_back(rest);
  }
  dirs.emplace_back("/usr/sbin");
  dirs.emplace_back("/sbin");
  for (const auto& dir : dirs) {
    std::error_code error;
    const auto candidate = dir / "blkid";
    if (!dir.empty() && std::filesystem::is_regular_file(candidate, error)) {
      return candidate;
    }
  }
  return std::nullopt;
}

std::string run(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe{popen(command.c_str(), "r"), &pclose};
  if (!pipe) {
    return "<popen failed>";
  }
  std::string output;
  char buffer[256];
  while (std::fgets(buffer, sizeof buffer, pipe.get()) != nullptr) {
    output += buffer;
  }
  return output;
}

struct WriteFree {
  void operator()(archive* handle) const noexcept { archive_write_free(handle); }
};

// An ISO image with just `files` (path -> content), for inputs config_drive_iso never makes.
std::string iso_with(const std::map<std::string, std::string>& files) {
  std::unique_ptr<archive, WriteFree> writer{archive_write_new()};
  EXPECT_EQ(archive_write_set_format_iso9660(writer.get()), ARCHIVE_OK);
  std::string image;
  const auto append = [](archive*, void* client, const void* buffer, size_t length) {
    static_cast<std::string*>(client)->append(static_cast<const char*>(buffer), length);
    return static_cast<la_ssize_t>(length);
  };
  EXPECT_EQ(archive_write_open(writer.get(), &image, nullptr, append, nullptr), ARCHIVE_OK);
  for (const auto& [path, content] : files) {
    std::unique_ptr<archive_entry, void (*)(archive_entry*)> entry{archive_entry_new(),
                                                                   &archive_entry_free};
    archive_entry_set_pathname(entry.get(), path.c_str());
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    archive_entry_set_perm(entry.get(), 0644);
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(content.size()));
    EXPECT_EQ(archive_write_header(writer.get(), entry.get()), ARCHIVE_OK);
    EXPECT_EQ(archive_write_data(writer.get(), content.data(), content.size()),
              static_cast<la_ssize_t>(content.size()));
  }
  EXPECT_EQ(archive_write_close(writer.get()), ARCHIVE_OK);
  return image;
}

struct ReadFree {
  void operator()(archive* handle) const noexcept { archive_read_free(handle); }
};

struct EntryInfo {
  mode_t type;
  mode_t perm;
  std::time_t mtime;
};

// Every entry of the image with Rock Ridge ignored or used (Joliet names are read when off).
std::map<std::string, EntryInfo> list_entries(const std::string& image, bool rockridge) {
  std::unique_ptr<archive, ReadFree> reader{archive_read_new()};
  archive_read_support_format_iso9660(reader.get());
  if (!rockridge) {
    EXPECT_EQ(archive_read_set_options(reader.get(), "iso9660:!rockridge"), ARCHIVE_OK);
  }
  EXPECT_EQ(archive_read_open_memory(reader.get(), image.data(), image.size()), ARCHIVE_OK);
  std::map<std::string, EntryInfo> entries;
  archive_entry* entry = nullptr;
  while (archive_read_next_header(reader.get(), &entry) == ARCHIVE_OK) {
    std::string path = archive_entry_pathname(entry);
    if (!path.empty() && path.back() == '/') {
      path.pop_back();
    }
    entries[path] = {archive_entry_filetype(entry), archive_entry_perm(entry),
                     archive_entry_mtime(entry)};
  }
  return entries;
}

TEST(IsoImageTest, AllFourFilesRoundTrip) {
  const std::string image = config_drive_iso(sample_meta_data(), sample_user_data());
  const auto files = read_iso_files(image);

  ASSERT_EQ(files.size(), 4U);
  for (const char* path : {"ec2/latest/meta-data.json", "openstack/latest/meta_data.json"}) {
    ASSERT_EQ(files.count(path), 1U) << path;
    EXPECT_EQ(json::parse(files.at(path)), sample_meta_data()) << path;
  }
  for (const char* path : {"ec2/latest/user-data", "openstack/latest/user_data"}) {
    ASSERT_EQ(files.count(path), 1U) << path;
    EXPECT_EQ(json::parse(files.at(path)), sample_user_data()) << path;
  }
}

TEST(IsoImageTest, ReadUserDataParsesEc2UserData) {
  const std::string image = config_drive_iso(sample_meta_data(), sample_user_data());
  EXPECT_EQ(read_user_data(image), sample_user_data());
}

TEST(IsoImageTest, ImageIsWholeSectors) {
  const std::string image = config_drive_iso(sample_meta_data(), sample_user_data());
  EXPECT_EQ(image.size() % k_sector, 0U);
  EXPECT_GT(image.size(), k_descriptors + 2 * k_sector);
}

TEST(IsoImageTest, JolietNamesKeepLowercase) {
  const std::string image = config_drive_iso(sample_meta_data(), sample_user_data());
  const auto entries = list_entries(image, false);
  for (const char* path : {"ec2/latest/meta-data.json", "ec2/latest/user-data",
                           "openstack/latest/meta_data.json", "openstack/latest/user_data"}) {
    EXPECT_EQ(entries.count(path), 1U) << path;
  }
}

// Rock Ridge "useful" mode (genisoimage -r, as nova uses) stores the written 0755/0644 with the
// write bits cleared: the image is read-only anyway.
TEST(IsoImageTest, RockRidgeKeepsReadableModesAndTimes) {
  const std::time_t before = std::time(nullptr);
  const std::string image = config_drive_iso(sample_meta_data(), sample_user_data());
  const auto entries = list_entries(image, true);

  for (const char* dir : {"ec2", "ec2/latest", "openstack", "openstack/latest"}) {
    ASSERT_EQ(entries.count(dir), 1U) << dir;
    EXPECT_EQ(entries.at(dir).type, static_cast<mode_t>(AE_IFDIR)) << dir;
    EXPECT_EQ(entries.at(dir).perm, 0555U) << dir;
  }
  for (const char* file : {"ec2/latest/meta-data.json", "ec2/latest/user-data",
                           "openstack/latest/meta_data.json", "openstack/latest/user_data"}) {
    ASSERT_EQ(entries.count(file), 1U) << file;
    EXPECT_EQ(entries.at(file).type, static_cast<mode_t>(AE_IFREG)) << file;
    EXPECT_EQ(entries.at(file).perm, 0444U) << file;
    EXPECT_GE(entries.at(file).mtime, before - 1) << file;
    EXPECT_LE(entries.at(file).mtime, std::time(nullptr) + 1) << file;
  }
}

TEST(ConfigDriveLabelTest, PrimaryVolumeIdIsConfig2) {
  const std::string image = config_drive_iso(sample_meta_data(), sample_user_data());
  const std::string_view pvd = descriptor(image, 0);
  ASSERT_FALSE(pvd.empty());
  ASSERT_EQ(pvd[0], 1);
  ASSERT_EQ(pvd.substr(1, 5), "CD001");
  const std::string_view volume_id = pvd.substr(40, 32);
  const std::string trimmed{volume_id.substr(0, volume_id.find_last_not_of(' ') + 1)};
  EXPECT_TRUE(trimmed == "CONFIG_2" || trimmed == "config-2") << "'" << trimmed << "'";
}

TEST(ConfigDriveLabelTest, JolietVolumeIdKeepsLowercaseLabel) {
  const std::string image = config_drive_iso(sample_meta_data(), sample_user_data());
  const auto joliet = joliet_descriptor(image);
  ASSERT_TRUE(joliet.has_value()) << "no Joliet supplementary volume descriptor";
  EXPECT_EQ(ucs2_ascii(joliet->substr(40, 32)), "config-2");
}

TEST(ConfigDriveLabelTest, BlkidReportsConfig2) {
  const auto blkid = find_blkid();
  if (!blkid) {
    GTEST_SKIP() << "blkid is not installed";
  }
  const util::PrivateDir dir("iso-test");
  const auto drive =
      dir.write_file("drive.iso", config_drive_iso(sample_meta_data(), sample_user_data()));
  // BLKID_FILE=/dev/null: probe the file itself, never a cache.
  const std::string label = run("BLKID_FILE=/dev/null '" + blkid->string() +
                                "' -o value -s LABEL '" + drive.string() + "' 2>&1");
  EXPECT_EQ(label, "config-2\n");
  const std::string type = run("BLKID_FILE=/dev/null '" + blkid->string() + "' -o value -s TYPE '" +
                               drive.string() + "' 2>&1");
  EXPECT_EQ(type, "iso9660\n");
}

TEST(IsoImageTest, LargeUserDataRoundTrips) {
  json user = sample_user_data();
  std::string blob;
  for (std::size_t i = 0; blob.size() < 200 * 1024; ++i) {
    blob += std::to_string(i) + "-abcdefghijklmnopqrstuvwxyz;";
  }
  user["env"]["bosh"]["blob"] = blob;
  user["env"]["many"] = json::array();
  for (int i = 0; i < 2000; ++i) {
    user["env"]["many"].push_back({{"index", i}, {"name", "item-" + std::to_string(i)}});
  }

  const std::string image = config_drive_iso(sample_meta_data(), user);
  EXPECT_EQ(read_user_data(image), user);
  EXPECT_EQ(json::parse(read_iso_files(image).at("openstack/latest/user_data")), user);
}

TEST(IsoImageTest, InvalidUtf8IsReplacedNotThrown) {
  json user = sample_user_data();
  user["env"]["bad"] = std::string("a\xff") + "b";
  const std::string image = config_drive_iso(sample_meta_data(), user);
  EXPECT_EQ(read_user_data(image).at("env").at("bad"), std::string("a\xef\xbf\xbd") + "b");
}

TEST(IsoImageTest, NonIsoInputIsACloudError) {
  const std::string text(64 * 1024, 'x');
  EXPECT_THROW(read_iso_files(text), CloudError);
  EXPECT_THROW(read_iso_files(""), CloudError);
  EXPECT_THROW(read_user_data(text), CloudError);
}

TEST(IsoImageTest, ReadUserDataWithoutUserDataIsACloudError) {
  const std::string image = iso_with({{"openstack/latest/user_data", "{}"}});
  ASSERT_EQ(read_iso_files(image).size(), 1U);
  EXPECT_THROW(read_user_data(image), CloudError);
}

TEST(IsoImageTest, ReadUserDataWithInvalidJsonIsACloudError) {
  const std::string image = iso_with({{"ec2/latest/user-data", "{not json"}});
  EXPECT_THROW(read_user_data(image), CloudError);
}

TEST(IsoImageTest, TruncatedIsoIsACloudError) {
  const std::string image = config_drive_iso(sample_meta_data(), sample_user_data());
  EXPECT_THROW(read_iso_files(image.substr(0, k_descriptors + k_sector / 2)), CloudError);
  // Cut inside the file data: the directories are whole, a file's content is not.
  const std::size_t content = image.find(sample_user_data().at("mbus").get<std::string>());
  ASSERT_NE(content, std::string::npos);
  EXPECT_THROW(read_iso_files(image.substr(0, content + 8)), CloudError);
}

}  // namespace
}  // namespace cpi::agent
