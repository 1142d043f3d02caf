#include "cpi/tools/render.hpp"

#include <sstream>

#include "cpi/tools/inventory.hpp"

namespace cpi::tools {
namespace {

using nlohmann::json;

std::string str(const json& value, const char* key) {
  const auto it = value.find(key);
  if (it == value.end() || it->is_null()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

std::uint64_t num(const json& value, const char* key) {
  const auto it = value.find(key);
  return it != value.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
}

std::string volume_line(const json& volume) {
  std::string line = str(volume, "pool") + "/" + str(volume, "name");
  if (volume.value("present", true)) {
    line += "  " + human_size(num(volume, "capacity")) + " (" +
            human_size(num(volume, "allocation")) + " used)";
    if (!str(volume, "format").empty()) line += "  " + str(volume, "format");
    if (!str(volume, "path").empty()) line += "  " + str(volume, "path");
  } else {
    line += "  MISSING";
  }
  return line;
}

void field(std::ostringstream& out, const std::string& label, const std::string& value) {
  std::string padded = label + ":";
  padded.resize(14, ' ');
  out << padded << value << '\n';
}

void render_vm(std::ostringstream& out, const json& vm) {
  if (!vm.value("found", false)) {
    const auto& leftovers = vm.value("leftover_volumes", json::array());
    for (const auto& volume : leftovers) {
      field(out, "leftover", volume_line(volume) + "  (orphan: cpi cleanup --orphans)");
    }
    return;
  }
  field(out, "state", str(vm, "state"));
  field(out, "vcpus", str(vm, "vcpus"));
  field(out, "memory", str(vm, "memory_mib") + " MiB");
  for (const auto& volume : vm.value("volumes", json::array())) {
    std::string line = str(volume, "role") + " " + str(volume, "target") + " (" +
                       str(volume, "bus") + ") " + volume_line(volume);
    if (!str(volume, "serial").empty()) line += "  serial " + str(volume, "serial");
    if (!volume.value("live", true)) line += "  NOT IN THE RUNNING VM (applies at next boot)";
    field(out, "volume", line);
  }
  std::string disks;
  for (const auto& disk : vm.value("persistent_disks", json::array())) {
    disks += (disks.empty() ? "" : ", ") + disk.get<std::string>();
  }
  field(out, "disks", disks.empty() ? "none attached" : disks);
  for (const auto& nic : vm.value("nics", json::array())) {
    field(out, "nic", str(nic, "mac") + "  " + str(nic, "type") + " " + str(nic, "source"));
  }
  field(out, "facts", vm.value("facts", json::object()).dump());
  const auto console = vm.value("console_log", json::object());
  field(out, "console log", str(console, "path"));
  if (!str(console, "note").empty()) {
    field(out, "", str(console, "note"));
  } else {
    const std::string tail = str(console, "tail");
    out << "--- last lines of the console log ---\n" << (tail.empty() ? "(empty)\n" : tail);
  }
}

void render_disk(std::ostringstream& out, const json& disk) {
  field(out, "volume", volume_line(disk.value("volume", json::object())));
  field(out, "attached to", str(disk, "attached_to").empty() ? "-" : str(disk, "attached_to"));
  std::string in;
  for (const auto& vm : disk.value("attached_in", json::array())) {
    in += (in.empty() ? "" : ", ") + vm.get<std::string>();
  }
  field(out, "in domains", in.empty() ? "-" : in);
  if (str(disk, "attached_to") != (in.find(',') == std::string::npos ? in : "")) {
    field(out, "", "the .meta and the domain definitions disagree: the domains are the truth");
  }
  if (!str(disk, "meta_error").empty()) field(out, "", str(disk, "meta_error"));
  field(out, "metadata", disk.value("metadata", json::object()).dump());
  for (const auto& snapshot : disk.value("snapshots", json::array())) {
    field(out, "snapshot",
          str(snapshot, "cid") + "  " + human_size(num(snapshot, "capacity")) + "  " +
              snapshot.value("metadata", json::object()).dump());
  }
}

}  // namespace

std::string render_details(const json& details) {
  std::ostringstream out;
  const std::string kind = str(details, "kind");
  out << "== " << kind << " " << str(details, "cid");
  if (kind == "unknown") {
    out << "\n" << str(details, "error") << "\n";
    return out.str();
  }
  out << (details.value("found", false) ? "" : ": NOT FOUND") << " ==\n";
  field(out, "name", str(details, "name"));
  if (kind == "vm") {
    render_vm(out, details);
  } else if (details.value("found", false)) {
    if (kind == "disk") {
      render_disk(out, details);
    } else {
      field(out, "volume", volume_line(details.value("volume", json::object())));
      if (kind == "snapshot") {
        field(out, "of disk", str(details, "disk"));
        field(out, "metadata", details.value("metadata", json::object()).dump());
      } else {
        std::string used;
        for (const auto& vm : details.value("used_by", json::array())) {
          used += (used.empty() ? "" : ", ") + vm.get<std::string>();
        }
        field(out, "used by", used.empty() ? "no VM" : used);
        if (details.value("deleted", false)) {
          field(out, "", "deleted by BOSH; removed when its last VM is deleted");
        }
      }
    }
  }
  return out.str();
}

}  // namespace cpi::tools
