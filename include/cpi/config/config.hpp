#pragma once
// The CPI configuration (README.md "Configuration"): one JSON file, every key optional except
// agent.mbus for create_vm. Relative paths resolve against the file's own directory. Request
// `context` keys named like the `libvirt` keys override them for one call (BOSH cpi-config).

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace cpi::config {

// TLS and SSH material: each value is either inline text or a path to a file (after load,
// relative paths are absolute). `is_inline()` tells which.
struct Material {
  std::string value;
  bool is_inline() const;
  bool empty() const { return value.empty(); }
  // The text itself, reading the file when this is a path. Throws CpiError naming `field`.
  std::string text(const std::string& field) const;
};

struct TlsConfig {
  Material ca_cert, client_cert, client_key;
  bool any() const { return !ca_cert.empty() || !client_cert.empty() || !client_key.empty(); }
};

struct SshConfig {
  Material private_key, known_hosts;
};

struct LibvirtConfig {
  std::string hypervisor = "qemu";
  std::string uri;  // empty: built from hypervisor/transport/host
  std::string transport = "unix";
  std::string host;
  std::optional<std::int64_t> port;
  std::string username;
  std::string socket;
  TlsConfig tls;
  SshConfig ssh;
  std::string storage_pool = "bosh";
  std::string store_dir = "/var/lib/libvirt/bosh";
  std::string network = "default";
  bool auto_enable_networks = false;
  std::string storage_controller = "virtio";
  std::string domain_type = "auto";
  std::string machine = "pc";
  std::string name_prefix;
  // How long detach_disk waits for a running guest to release a disk (seconds).
  std::int64_t detach_timeout = 30;
  // How long reboot_vm waits for a running guest to power off on the ACPI button (seconds)
  // before it powers the VM off itself; the VM is then started again.
  std::int64_t reboot_timeout = 60;
  bool keep_console_logs = false;  // delete_vm leaves the VM's serial console log in place
};

struct AgentConfig {
  std::optional<std::string> mbus;
  std::vector<std::string> ntp;
  nlohmann::json blobstore;  // null when not configured

  // The mbus URL, or CpiError "config: agent.mbus is required for <what>".
  const std::string& require_mbus(const std::string& what) const;
};

struct Config {
  LibvirtConfig libvirt;
  AgentConfig agent;
  std::string log_level = "info";
  std::filesystem::path base_dir;  // where relative paths resolve
  std::string source = "built-in defaults";  // for messages: "config file '/x/cpi.json'"
};

// The schema's defaults (no file).
Config default_config();

// Reads and validates `path`. Throws CpiError naming the file and the field; a document nested
// deeper than k_max_json_depth is refused unread. Logs a warning (never the secret) when the
// file holds secrets and its group or others may read it (exposed_secrets).
Config load_config(const std::filesystem::path& path);

// The fields of `config` that hold secret values: "agent.mbus (password)",
// "libvirt.tls.client_key", "libvirt.ssh.private_key" (inline ones only), "agent.blobstore.
// options.<key>". Empty when there are none.
std::vector<std::string> secret_fields(const Config& config);

// "config file '<path>' holds secrets (...) and is readable by ... (mode 0644)" when `path` has
// secret_fields and others may read it, or its group may while the CPI's user owns it (BOSH's
// root:vcap 0640 is fine); nullopt otherwise (also when the file cannot be stat'ed).
std::optional<std::string> exposed_secrets(const std::filesystem::path& path,
                                           const Config& config);

// Validates a parsed document; `source` names it in messages.
Config parse_config(const nlohmann::json& document, const std::filesystem::path& base_dir,
                    const std::string& source);

// `base` with the request context's libvirt keys laid over it. Other context keys
// (director_uuid, request_id, vm, ...) are ignored; a known key of the wrong type is a CpiError.
LibvirtConfig with_context(const LibvirtConfig& base, const nlohmann::json& context,
                           const std::filesystem::path& base_dir);

// Registers every secret of the config with the log redactor.
void register_secrets(const Config& config);

}  // namespace cpi::config
