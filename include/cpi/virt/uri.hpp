#pragma once
// The libvirt connection URI from the config (README.md "Configuration").

#include <optional>
#include <string>

#include "cpi/config/config.hpp"
#include "cpi/util/private_dir.hpp"

namespace cpi::virt {

// What connecting needs besides the URI: the private dir holding inline TLS/SSH material (it
// must outlive the connection attempt; removed when this is destroyed).
struct ConnectTarget {
  std::string uri;           // with pkipath/keyfile parameters
  std::string display_uri;   // the same URI for messages (no secrets are in URIs)
  std::string transport;     // unix | tcp | tls | ssh | test | other
  std::optional<util::PrivateDir> scratch;
};

// The default URI of a hypervisor flavour on the local host ("qemu:///system", ...).
std::string default_uri(const std::string& hypervisor);

// The URI scheme's driver part for a hypervisor ("qemu", "lxc", "xen", "vbox", "vmwarews").
std::string uri_driver(const std::string& hypervisor);

// Builds the URI from `config`; writes inline TLS material (cacert.pem, clientcert.pem,
// clientkey.pem) and inline SSH keys/known_hosts into a private 0700 dir. Throws
// InvalidSettings (virt/error.hpp) naming the missing field for an incomplete transport.
ConnectTarget build_target(const config::LibvirtConfig& config);

}  // namespace cpi::virt
