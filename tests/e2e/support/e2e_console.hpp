#pragma once
// Reads what the e2e test stemcell's guest prints on its serial console (the `BOSHTEST` records
// of tests/e2e/stemcell/README.md) from the console log libvirt writes. The log is appended on
// every restart, so it is split into boots at each `BOSHTEST begin boot=<id>`.

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace cpi::testing {

struct GuestBlock {
  std::string name, serial;
  std::uint64_t size = 0;
  bool read_only = false;
};

struct GuestTick {
  int number = 0;
  std::vector<GuestBlock> blocks;  // name, serial and size only
};

// One boot of the guest, in the order its records came.
struct GuestBoot {
  std::string id;
  bool ended = false;                        // `BOSHTEST end` seen: the report is complete
  std::string configdrive;                   // the whole `configdrive ...` record after the keyword
  std::map<std::string, std::string> files;  // path on the drive -> decoded content
  std::vector<GuestBlock> blocks;
  std::map<std::string, std::string> nics;  // ifname -> mac
  std::vector<GuestTick> ticks;
  std::vector<std::string> lines;  // every BOSHTEST record of this boot, for messages

  const GuestBlock* block_with_serial(const std::string& serial) const {
    for (const auto& b : blocks) {
      if (b.serial == serial) return &b;
    }
    return nullptr;
  }
};

inline std::string base64_decode(const std::string& text) {
  static const std::string k_alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const auto pos = k_alphabet.find(c);
    if (pos == std::string::npos) continue;  // '=' padding, whitespace
    acc = (acc << 6) | static_cast<std::uint32_t>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

// A decimal number, or 0 for anything else (a kernel message may garble a record).
inline std::uint64_t to_u64(const std::string& text) {
  return std::strtoull(text.c_str(), nullptr, 10);
}

// "key=value key2=value2" -> map (values hold no spaces in these records).
inline std::map<std::string, std::string> record_fields(const std::string& text) {
  std::map<std::string, std::string> fields;
  std::istringstream in{text};
  std::string word;
  while (in >> word) {
    const auto eq = word.find('=');
    if (eq != std::string::npos) fields[word.substr(0, eq)] = word.substr(eq + 1);
  }
  return fields;
}

// "vdb:disk-0123:33554432,sr0::1073741312" -> blocks.
inline std::vector<GuestBlock> tick_blocks(const std::string& list) {
  std::vector<GuestBlock> blocks;
  std::istringstream in{list};
  std::string item;
  while (std::getline(in, item, ',')) {
    const auto a = item.find(':');
    const auto b = item.rfind(':');
    if (a == std::string::npos || b == a) continue;
    blocks.push_back(
        {item.substr(0, a), item.substr(a + 1, b - a - 1), to_u64(item.substr(b + 1)), false});
  }
  return blocks;
}

// Every boot recorded in `log` (only complete lines count).
inline std::vector<GuestBoot> parse_console(const std::string& log) {
  std::vector<GuestBoot> boots;
  std::size_t pos = 0;
  const std::string tag = "BOSHTEST ";
  while (true) {
    const auto end = log.find('\n', pos);
    if (end == std::string::npos) break;
    std::string line = log.substr(pos, end - pos);
    pos = end + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    const auto at = line.find(tag);
    if (at == std::string::npos) continue;
    const std::string record = line.substr(at + tag.size());
    const auto space = record.find(' ');
    const std::string kind = record.substr(0, space);
    const std::string rest = space == std::string::npos ? "" : record.substr(space + 1);
    if (kind == "begin") {
      boots.push_back({});
      boots.back().id = record_fields(rest)["boot"];
    }
    if (boots.empty()) continue;
    GuestBoot& boot = boots.back();
    boot.lines.push_back(record);
    auto fields = record_fields(rest);
    if (kind == "end") {
      boot.ended = true;
    } else if (kind == "configdrive") {
      boot.configdrive = rest;
    } else if (kind == "file") {
      boot.files[fields["path"]] = base64_decode(fields["b64"]);
    } else if (kind == "blk") {
      boot.blocks.push_back(
          {fields["name"], fields["serial"], to_u64(fields["size"]), fields["ro"] == "1"});
    } else if (kind == "nic") {
      boot.nics[fields["name"]] = fields["mac"];
    } else if (kind.rfind("tick=", 0) == 0) {
      auto tick_fields = record_fields(record);
      boot.ticks.push_back(
          {static_cast<int>(to_u64(tick_fields["tick"])), tick_blocks(tick_fields["blk"])});
    }
  }
  return boots;
}

inline std::string read_whole_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

// Polls the console log `path` until `done(boots)` holds or `timeout` passes; returns the boots
// of the last read and whether `done` held.
inline std::pair<std::vector<GuestBoot>, bool> wait_for_console(
    const std::string& path, std::chrono::seconds timeout,
    const std::function<bool(const std::vector<GuestBoot>&)>& done) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto boots = parse_console(read_whole_file(path));
    if (done(boots)) return {std::move(boots), true};
    if (std::chrono::steady_clock::now() >= deadline) return {std::move(boots), false};
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// The last lines of the console log, for failure messages.
inline std::string console_tail(const std::string& path, std::size_t lines = 40) {
  const std::string log = read_whole_file(path);
  std::size_t pos = log.size();
  for (std::size_t n = 0; n <= lines && pos > 0; ++n) {
    pos = log.rfind('\n', pos - 1);
    if (pos == std::string::npos) {
      pos = 0;
      break;
    }
  }
  return log.substr(pos);
}

}  // namespace cpi::testing
