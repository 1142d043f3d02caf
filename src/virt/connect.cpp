#include "cpi/virt/connect.hpp"

#include <libvirt/virterror.h>
#include <spdlog/spdlog.h>

#include "cpi/errors.hpp"
#include "cpi/virt/error.hpp"

namespace cpi::virt {
namespace {

bool contains(const std::string& text, const char* needle) {
  return text.find(needle) != std::string::npos;
}

}  // namespace

std::string connection_hint(const std::string& transport, int code, const std::string& message) {
  if (contains(message, "Permission denied") || code == VIR_ERR_AUTH_FAILED ||
      code == VIR_ERR_AUTH_CANCELLED) {
    if (transport == "unix") {
      return "check that the user running the CPI may use the libvirt socket (group libvirt, or "
             "the socket's permissions)";
    }
    if (transport == "ssh") {
      return "check the SSH private key and that its public key is in the remote user's "
             "authorized_keys";
    }
    return "check the credentials the CPI presents to libvirtd";
  }
  if (contains(message, "No such file or directory") || contains(message, "Connection refused") ||
      contains(message, "Failed to connect socket")) {
    return "check that libvirtd is running and listening for this transport on the host";
  }
  if (transport == "tls" &&
      (contains(message, "certificate") || contains(message, "TLS") ||
       contains(message, "pkipath") || contains(message, "CA"))) {
    return "check the TLS material: the server certificate must be signed by libvirt.tls.ca_cert "
           "and name the host, and the client certificate/key must match and be trusted by the "
           "server";
  }
  if (transport == "ssh" && (contains(message, "host key") || contains(message, "known_hosts") ||
                             contains(message, "Host key"))) {
    return "check libvirt.ssh.known_hosts: the host's key is unknown or does not match";
  }
  if (code == VIR_ERR_NO_CONNECT || contains(message, "no connection driver")) {
    return "check the URI's driver: the libvirt client library has no driver for it";
  }
  return "check the libvirt URI, that the host is reachable and that libvirtd is running";
}

OpenConnection open_connection(const config::LibvirtConfig& config) {
  OpenConnection out{build_target(config), nullptr};
  spdlog::debug("connecting to {} ({})", out.target.display_uri, out.target.transport);
  out.connection.reset(virConnectOpen(out.target.uri.c_str()));
  if (!out.connection) {
    virErrorPtr error = virGetLastError();
    const int code = error != nullptr ? error->code : VIR_ERR_INTERNAL_ERROR;
    const std::string message =
        error != nullptr && error->message != nullptr ? error->message : "unknown error";
    throw CloudError("connecting to libvirt at '" + out.target.display_uri + "' (transport " +
                     out.target.transport + "): " + message + "; " +
                     connection_hint(out.target.transport, code, message));
  }
  return out;
}

}  // namespace cpi::virt
