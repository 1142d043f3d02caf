#include "cpi/virt/uri.hpp"

#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <utility>

#include "cpi/virt/error.hpp"

namespace cpi::virt {
namespace {

std::string uri_path(const std::string& hypervisor) {
  if (hypervisor == "qemu" || hypervisor == "kvm" || hypervisor == "xen") {
    return "/system";
  }
  if (hypervisor == "vbox" || hypervisor == "vmware") {
    return "/session";
  }
  return "/";  // lxc
}

std::string percent_encode(const std::string& text) {
  static const char k_hex[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += k_hex[c >> 4U];
      out += k_hex[c & 0x0fU];
    }
  }
  return out;
}

void add_param(std::string& uri, const std::string& key, const std::string& value) {
  uri += (uri.find('?') == std::string::npos ? '?' : '&');
  uri += key + "=" + percent_encode(value);
}

std::string scheme_transport(const std::string& uri) {
  const auto colon = uri.find(':');
  const std::string scheme = uri.substr(0, colon);
  if (scheme == "test") return "test";
  const auto plus = scheme.find('+');
  if (plus == std::string::npos) return "unix";
  const auto t = scheme.substr(plus + 1);
  if (t == "tls" || t == "tcp" || t == "unix") return t;
  if (t == "ssh" || t == "libssh" || t == "libssh2") return "ssh";
  return "other";
}

// The directory holding all three files under libvirt's names (cacert.pem, clientcert.pem,
// clientkey.pem), each readable, when they are given by path; "" otherwise.
std::string libvirt_pki_dir(const config::TlsConfig& tls) {
  const std::pair<const config::Material*, const char*> files[] = {
      {&tls.ca_cert, "cacert.pem"}, {&tls.client_cert, "clientcert.pem"},
      {&tls.client_key, "clientkey.pem"}};
  std::string dir;
  for (const auto& [material, name] : files) {
    if (material->is_inline()) return {};
    const std::filesystem::path path{material->value};
    if (path.filename() != name || ::access(path.c_str(), R_OK) != 0) return {};
    if (!dir.empty() && path.parent_path().string() != dir) return {};
    dir = path.parent_path().string();
  }
  return dir;
}

// The PKI dir for TLS: files given by path that already sit together in one dir under libvirt's
// file names are used where they are (nothing is written); otherwise the PEMs (inline, or read
// from their files) are written into `scratch` under those names.
std::string tls_pki_dir(const config::TlsConfig& tls, std::optional<util::PrivateDir>& scratch) {
  if (!tls.any()) {
    return {};
  }
  if (tls.ca_cert.empty() || tls.client_cert.empty() || tls.client_key.empty()) {
    throw InvalidSettings(
        "libvirt.tls: ca_cert, client_cert and client_key must all be set for the tls transport");
  }
  if (auto dir = libvirt_pki_dir(tls); !dir.empty()) return dir;
  if (!scratch) scratch.emplace("cpi-pki");
  scratch->write_file("cacert.pem", tls.ca_cert.text("libvirt.tls.ca_cert"));
  scratch->write_file("clientcert.pem", tls.client_cert.text("libvirt.tls.client_cert"));
  scratch->write_file("clientkey.pem", tls.client_key.text("libvirt.tls.client_key"));
  return scratch->path().string();
}

void add_ssh_params(std::string& uri, const config::SshConfig& ssh,
                    std::optional<util::PrivateDir>& scratch) {
  if (!ssh.private_key.empty()) {
    std::string key_path = ssh.private_key.value;
    if (ssh.private_key.is_inline()) {
      if (!scratch) scratch.emplace("cpi-ssh");
      std::string key = ssh.private_key.value;
      if (key.empty() || key.back() != '\n') key += '\n';
      key_path = scratch->write_file("id_key", key).string();
    }
    add_param(uri, "keyfile", key_path);
  }
  if (!ssh.known_hosts.empty()) {
    std::string hosts_path = ssh.known_hosts.value;
    if (ssh.known_hosts.is_inline()) {
      if (!scratch) scratch.emplace("cpi-ssh");
      hosts_path = scratch->write_file("known_hosts", ssh.known_hosts.value).string();
    }
    add_param(uri, "known_hosts", hosts_path);
    add_param(uri, "known_hosts_verify", "normal");
  }
  add_param(uri, "no_verify", "0");
}

}  // namespace

std::string uri_driver(const std::string& hypervisor) {
  if (hypervisor == "qemu" || hypervisor == "kvm") return "qemu";
  if (hypervisor == "vmware") return "vmwarews";
  return hypervisor;  // lxc, xen, vbox
}

std::string default_uri(const std::string& hypervisor) {
  return uri_driver(hypervisor) + "://" + uri_path(hypervisor);
}

ConnectTarget build_target(const config::LibvirtConfig& config) {
  // libvirt takes C strings: a NUL would cut the URI (an empty one opens the default daemon).
  for (const auto* field : {&config.uri, &config.host, &config.username, &config.socket}) {
    if (field->find('\0') != std::string::npos) {
      throw InvalidSettings(
          "libvirt connection settings (uri, host, username, socket) must not contain a NUL "
          "character");
    }
  }
  ConnectTarget target;
  if (!config.uri.empty()) {
    target.uri = config.uri;
    target.transport = scheme_transport(config.uri);
    if (target.transport == "tls" && config.tls.any() &&
        config.uri.find("pkipath=") == std::string::npos) {
      add_param(target.uri, "pkipath", tls_pki_dir(config.tls, target.scratch));
    }
    if (target.transport == "ssh" && config.uri.find("keyfile=") == std::string::npos) {
      // Only the libssh transport can pin known_hosts (OpenSSH's has no URI parameter for it).
      const auto plain = target.uri.find("+ssh://");
      if (!config.ssh.known_hosts.empty() && plain != std::string::npos) {
        target.uri.replace(plain, 7, "+libssh://");
      }
      add_ssh_params(target.uri, config.ssh, target.scratch);
    }
  } else {
    const std::string driver = uri_driver(config.hypervisor);
    const std::string path = uri_path(config.hypervisor);
    target.transport = config.transport;
    if (config.transport == "unix") {
      target.uri = driver + "://" + path;
      if (!config.socket.empty()) add_param(target.uri, "socket", config.socket);
    } else {
      std::string authority;
      if (!config.username.empty()) authority += config.username + "@";
      const bool ipv6 = config.host.find(':') != std::string::npos && config.host.front() != '[';
      authority += ipv6 ? "[" + config.host + "]" : config.host;  // RFC 3986 IP-literal
      if (config.port) authority += ":" + std::to_string(*config.port);
      const std::string scheme = config.transport == "ssh" && !config.ssh.known_hosts.empty()
                                     ? "libssh"
                                     : config.transport;
      target.uri = driver + "+" + scheme + "://" + authority + path;
      if (config.transport == "tls") {
        const auto dir = tls_pki_dir(config.tls, target.scratch);
        if (!dir.empty()) add_param(target.uri, "pkipath", dir);
      } else if (config.transport == "ssh") {
        add_ssh_params(target.uri, config.ssh, target.scratch);
      }
    }
  }
  // Messages show the URI without the scratch paths' query noise.
  const auto query = target.uri.find('?');
  target.display_uri = query == std::string::npos ? target.uri : target.uri.substr(0, query);
  return target;
}

}  // namespace cpi::virt
