#include "cpi/config/config.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>

#include "cpi/config/fields.hpp"
#include "cpi/config/json_parse.hpp"
#include "cpi/errors.hpp"
#include "cpi/util/redact.hpp"

namespace cpi::config {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> k_hypervisors{"qemu", "kvm", "lxc", "xen", "vbox", "vmware"};
const std::vector<std::string> k_transports{"unix", "tcp", "tls", "ssh"};
const std::vector<std::string> k_controllers{"virtio", "scsi", "sata", "ide"};
const std::vector<std::string> k_domain_types{"auto", "kvm", "qemu"};
const std::vector<std::string> k_log_levels{"debug", "info", "warn", "error"};

std::string resolve_path(const std::string& value, const fs::path& base_dir) {
  if (value.empty() || base_dir.empty()) {
    return value;
  }
  fs::path p{value};
  return p.is_absolute() ? value : (base_dir / p).lexically_normal().string();
}

Material material(const std::optional<std::string>& value, const fs::path& base_dir) {
  Material m{value.value_or("")};
  if (!m.empty() && !m.is_inline()) {
    m.value = resolve_path(m.value, base_dir);
  }
  return m;
}

// Reads the libvirt keys present in `reader` into `out`. In context mode unknown keys are not
// an error (the context carries director keys too).
void read_libvirt(FieldReader& reader, LibvirtConfig& out, const fs::path& base_dir) {
  if (auto v = reader.choice("hypervisor", k_hypervisors)) out.hypervisor = *v;
  if (auto v = reader.string("uri")) out.uri = *v;
  if (auto v = reader.choice("transport", k_transports)) out.transport = *v;
  if (auto v = reader.string("host")) out.host = *v;
  if (auto v = reader.integer("port", 1, 65535)) out.port = *v;
  if (auto v = reader.string("username")) out.username = *v;
  if (auto v = reader.string("socket")) out.socket = resolve_path(*v, base_dir);
  if (auto tls = reader.object("tls")) {
    if (auto v = tls->string("ca_cert")) out.tls.ca_cert = material(v, base_dir);
    if (auto v = tls->string("client_cert")) out.tls.client_cert = material(v, base_dir);
    if (auto v = tls->string("client_key")) out.tls.client_key = material(v, base_dir);
    tls->finish();
  }
  bool ssh_key_here = false;  // set by this object, not inherited from the base (context mode)
  if (auto ssh = reader.object("ssh")) {
    if (auto v = ssh->string("private_key")) {
      out.ssh.private_key = material(v, base_dir);
      ssh_key_here = true;
    }
    if (auto v = ssh->string("known_hosts")) out.ssh.known_hosts = material(v, base_dir);
    ssh->finish();
  }
  if (auto v = reader.string("private_key")) {  // alias of ssh.private_key (multi-hypervisor guide)
    const Material key = material(v, base_dir);
    if (ssh_key_here && out.ssh.private_key.value != key.value) {
      reader.fail("private_key", "conflicts with ssh.private_key; set only one of them");
    }
    out.ssh.private_key = key;
  }
  if (auto v = reader.string("storage_pool")) {
    if (v->empty()) reader.fail("storage_pool", "must not be empty");
    out.storage_pool = *v;
  }
  if (auto v = reader.string("store_dir")) out.store_dir = resolve_path(*v, base_dir);
  if (auto v = reader.string("network")) out.network = *v;
  if (auto v = reader.boolean("auto_enable_networks")) out.auto_enable_networks = *v;
  if (auto v = reader.boolean("keep_console_logs")) out.keep_console_logs = *v;
  if (auto v = reader.choice("storage_controller", k_controllers)) out.storage_controller = *v;
  if (auto v = reader.choice("domain_type", k_domain_types)) out.domain_type = *v;
  if (auto v = reader.string("machine")) out.machine = *v;
  if (auto v = reader.integer("detach_timeout", 1, 3600)) out.detach_timeout = *v;
  if (auto v = reader.integer("reboot_timeout", 0, 3600)) out.reboot_timeout = *v;
  if (auto v = reader.string("name_prefix")) {
    for (char c : *v) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) {
        reader.fail("name_prefix", "may hold only letters, digits, '-' and '_'");
      }
    }
    out.name_prefix = *v;
  }
}

void check_transport(const LibvirtConfig& c, const std::string& source) {
  if (!c.uri.empty()) {
    return;
  }
  if ((c.transport == "tcp" || c.transport == "tls" || c.transport == "ssh") && c.host.empty()) {
    throw CpiError(source + ": libvirt.host is required when libvirt.transport is '" + c.transport +
                   "' and libvirt.uri is not set");
  }
}

}  // namespace

bool Material::is_inline() const {
  // PEM text, several lines, or one known_hosts line ("host ssh-ed25519 AAAA...").
  return value.find("-----BEGIN") != std::string::npos || value.find('\n') != std::string::npos ||
         value.find(" ssh-") != std::string::npos || value.find(" ecdsa-") != std::string::npos;
}

std::string Material::text(const std::string& field) const {
  if (is_inline()) {
    return value;
  }
  std::ifstream in{value, std::ios::binary};
  if (!in) {
    throw CpiError(field + ": cannot read file '" + value +
                   "' (give the PEM text inline or a readable path)");
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

const std::string& AgentConfig::require_mbus(const std::string& what) const {
  if (!mbus || mbus->empty()) {
    throw CpiError("config: agent.mbus is required for " + what +
                   " (the URL the BOSH agent listens on, e.g. nats://<director-ip>:4222)");
  }
  return *mbus;
}

Config default_config() { return Config{}; }

Config load_config(const fs::path& path) {
  const std::string source = "config file '" + path.string() + "'";
  std::ifstream in{path, std::ios::binary};
  if (!in) {
    throw CpiError(source + ": cannot be read (check the --config path and its permissions)");
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  BoundedJson parsed;
  try {
    parsed = parse_bounded_json(buffer.str(), source);
  } catch (const nlohmann::json::exception& e) {
    throw CpiError(source + ": not valid JSON: " + e.what());
  }
  if (!parsed.out_of_range.empty()) {
    throw CpiError(source + ": " + json_path_text(parsed.out_of_range.front().path) +
                   ": number '" + parsed.out_of_range.front().text + "' is out of range");
  }
  fs::path dir = fs::absolute(path).parent_path();
  Config config = parse_config(parsed.document, dir, source);
  if (auto problem = exposed_secrets(path, config)) {
    spdlog::warn("{}: chmod 0600 it (readable by the CPI's user only)", *problem);
  }
  return config;
}

namespace {

// Calls `fn(key, value)` for each string under agent.blobstore.options whose key names a
// password or a secret.
void for_each_blobstore_secret(
    const Config& config, const std::function<void(const std::string&, const std::string&)>& fn) {
  const auto& blobstore = config.agent.blobstore;
  if (!blobstore.is_object()) return;
  const auto options = blobstore.find("options");
  if (options == blobstore.end() || !options->is_object()) return;
  for (const auto& [key, value] : options->items()) {
    if (value.is_string() &&
        (key.find("password") != std::string::npos || key.find("secret") != std::string::npos)) {
      fn(key, value.get<std::string>());
    }
  }
}

}  // namespace

std::vector<std::string> secret_fields(const Config& config) {
  std::vector<std::string> out;
  if (config.agent.mbus) {
    const auto& mbus = *config.agent.mbus;
    const auto scheme = mbus.find("://");
    const auto at = mbus.rfind('@');
    if (scheme != std::string::npos && at != std::string::npos && at > scheme &&
        mbus.find(':', scheme + 3) < at) {
      out.emplace_back("agent.mbus (password)");
    }
  }
  if (config.libvirt.tls.client_key.is_inline()) out.emplace_back("libvirt.tls.client_key");
  if (config.libvirt.ssh.private_key.is_inline()) out.emplace_back("libvirt.ssh.private_key");
  for_each_blobstore_secret(config, [&](const std::string& key, const std::string&) {
    out.push_back("agent.blobstore.options." + key);
  });
  return out;
}

std::optional<std::string> exposed_secrets(const fs::path& path, const Config& config) {
  const auto fields = secret_fields(config);
  struct stat st {};
  if (fields.empty() || ::stat(path.c_str(), &st) != 0) return std::nullopt;
  // The group bit is needed when the CPI reads the file through its group (BOSH renders job
  // files root:vcap 0640 for a CPI running as vcap); it is exposure when the CPI owns the file.
  const bool group = (st.st_mode & S_IRGRP) != 0 && st.st_uid == ::geteuid();
  if (!group && (st.st_mode & S_IROTH) == 0) return std::nullopt;
  std::string list;
  for (const auto& field : fields) list += (list.empty() ? "" : ", ") + field;
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  return "config file '" + path.string() + "' holds secrets (" + list +
         ") and is readable by " +
         ((st.st_mode & S_IROTH) == 0 ? "its group" : group ? "its group or others" : "others") +
         " (mode " + mode + ")";
}

Config parse_config(const nlohmann::json& document, const fs::path& base_dir,
                    const std::string& source) {
  Config config;
  config.base_dir = base_dir;
  config.source = source;
  FieldReader root{document, source, ""};
  if (auto libvirt = root.object("libvirt")) {
    read_libvirt(*libvirt, config.libvirt, base_dir);
    libvirt->finish();
  }
  if (auto agent = root.object("agent")) {
    config.agent.mbus = agent->string("mbus");
    if (auto ntp = agent->string_list("ntp")) config.agent.ntp = *ntp;
    if (const auto* blobstore = agent->any("blobstore")) {
      if (!blobstore->is_object()) {
        agent->fail("blobstore", "expected an object, got " + json_type_name(*blobstore));
      }
      config.agent.blobstore = *blobstore;
    }
    agent->finish();
  }
  if (auto level = root.choice("log_level", k_log_levels)) config.log_level = *level;
  root.finish();
  check_transport(config.libvirt, source);
  return config;
}

LibvirtConfig with_context(const LibvirtConfig& base, const nlohmann::json& context,
                           const fs::path& base_dir) {
  if (!context.is_object()) {
    return base;
  }
  LibvirtConfig out = base;
  FieldReader reader{context, "request context", "context"};
  read_libvirt(reader, out, base_dir);
  // No finish(): the context also carries director_uuid, request_id, vm and other keys.
  check_transport(out, "request context");
  return out;
}

void register_secrets(const Config& config) {
  auto& redactor = util::redactor();
  if (config.agent.mbus) {
    // The password of the mbus URL is masked by the URL rule; register it too so it is masked
    // where it appears on its own.
    const auto& mbus = *config.agent.mbus;
    const auto scheme = mbus.find("://");
    const auto at = mbus.find('@');
    if (scheme != std::string::npos && at != std::string::npos && at > scheme) {
      const auto colon = mbus.find(':', scheme + 3);
      if (colon != std::string::npos && colon < at) {
        redactor.add_secret(mbus.substr(colon + 1, at - colon - 1));
      }
    }
  }
  for (const Material* m : {&config.libvirt.tls.client_key, &config.libvirt.ssh.private_key}) {
    if (m->is_inline()) {
      redactor.add_secret(m->value);
    }
  }
  for_each_blobstore_secret(config, [&](const std::string&, const std::string& value) {
    redactor.add_secret(value);
  });
}

}  // namespace cpi::config
