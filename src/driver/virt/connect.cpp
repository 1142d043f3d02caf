#include "cpi/virt/connect.hpp"

#include <libvirt/virterror.h>
#include <spdlog/spdlog.h>

#include <cctype>

#include "cpi/virt/error.hpp"

namespace cpi::virt {
namespace {

std::string lower(std::string text) {
  for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

bool contains(const std::string& text, const char* needle) {
  return text.find(needle) != std::string::npos;
}

// TLS failures, from libvirt's own messages (virnettlscontext.c, gnutls).
std::string tls_hint(const std::string& m) {
  if (contains(m, "owner does not match the hostname")) {
    return "check the server certificate: it is trusted but does not name the host the CPI "
           "connects to (its CN or subjectAltName must be libvirt.host)";
  }
  if (contains(m, "our own certificate")) {
    return "check libvirt.tls: client_cert is not signed by ca_cert (certificate mismatch); "
           "ca_cert must be the CA that signed both the server's and the CPI's certificates";
  }
  if (contains(m, "failed to verify peer's certificate")) {
    return "check libvirt.tls.client_cert: libvirtd rejected it (it must be signed by a CA the "
           "server trusts, its ca_file, and match its tls_allowed_dn_list)";
  }
  if (contains(m, "certificate failed validation") || contains(m, "known issuer") ||
      contains(m, "not trusted") || contains(m, "server certificate")) {
    return "check libvirt.tls.ca_cert: the server certificate is not signed by that CA "
           "(certificate mismatch), or has expired";
  }
  if (contains(m, "cannot read") || contains(m, "pkipath") || contains(m, "private key") ||
      contains(m, "ca certificate") || contains(m, "client certificate")) {
    return "check libvirt.tls: ca_cert, client_cert and client_key must be PEM, and the key "
           "must belong to the client certificate";
  }
  if (contains(m, "tls") || contains(m, "handshake") || contains(m, "certificate") ||
      contains(m, "connection reset") || contains(m, "end of file")) {
    return "check the TLS material: the server certificate must be signed by libvirt.tls.ca_cert "
           "and name the host, and the server must trust the CA of libvirt.tls.client_cert";
  }
  return {};
}

// SSH failures: libssh's (qemu+libssh, virnetlibsshsession.c) and OpenSSH's (qemu+ssh).
std::string ssh_hint(const std::string& m) {
  if (contains(m, "differs from stored identity") ||
      contains(m, "remote host identification has changed")) {
    return "check libvirt.ssh.known_hosts: the host key does not match the one pinned there "
           "(host key mismatch; a reinstalled host, or a man in the middle)";
  }
  if (contains(m, "verify the session host key") || contains(m, "host key verification failed") ||
      contains(m, "host key") || contains(m, "known_hosts")) {
    return "check libvirt.ssh.known_hosts: the host key is unknown (no line for this host and "
           "port, written \"[host]:port\" for a port other than 22); keys are never trusted on "
           "first use";
  }
  if (contains(m, "authentication") || contains(m, "permission denied") ||
      contains(m, "keyfile") || contains(m, "private key")) {
    return "check libvirt.ssh.private_key and that its public key is in the remote user's "
           "authorized_keys";
  }
  return {};
}

}  // namespace

std::string connection_hint(const std::string& transport, int code, const std::string& message) {
  const std::string m = lower(message);
  if (transport == "tls") {
    if (auto hint = tls_hint(m); !hint.empty()) return hint;
  }
  if (transport == "ssh") {
    if (auto hint = ssh_hint(m); !hint.empty()) return hint;
  }
  if (contains(m, "permission denied") || code == VIR_ERR_AUTH_FAILED ||
      code == VIR_ERR_AUTH_CANCELLED) {
    if (transport == "unix") {
      return "check that the user running the CPI may use the libvirt socket (group libvirt, or "
             "the socket's permissions)";
    }
    return "check the credentials the CPI presents to libvirtd";
  }
  if (contains(m, "no such file or directory") || contains(m, "connection refused") ||
      contains(m, "failed to connect socket")) {
    return "check that libvirtd is running and listening for this transport on the host "
           "(daemon down, or not started with --listen)";
  }
  if (code == VIR_ERR_NO_CONNECT || contains(m, "no connection driver")) {
    return "check the URI's driver: the libvirt client library has no driver for it";
  }
  return "check the libvirt URI, that the host is reachable and that libvirtd is running";
}

OpenConnection open_connection(const config::LibvirtConfig& config) {
  OpenConnection out{build_target(config), nullptr};
  spdlog::debug("connecting to {} ({})", out.target.display_uri, out.target.transport);
  if (out.target.transport == "tcp") {
    spdlog::warn("connecting to {} over plain TCP: no encryption and no authentication of the "
                 "host; use the tls or ssh transport outside a trusted network",
                 out.target.display_uri);
  }
  out.connection.reset(virConnectOpen(out.target.uri.c_str()));
  if (!out.connection) {
    const CopiedError error = take_last_error();
    throw LibvirtError(error.code,
                       "connecting to libvirt at '" + out.target.display_uri + "' (transport " +
                           out.target.transport + "): " + error.message + "; " +
                           connection_hint(out.target.transport, error.code, error.message));
  }
  return out;
}

}  // namespace cpi::virt
