#pragma once
// Opening the libvirt connection, with errors an operator can act on.

#include "cpi/config/config.hpp"
#include "cpi/virt/handles.hpp"
#include "cpi/virt/uri.hpp"

namespace cpi::virt {

// A connection together with the scratch files it was opened with.
struct OpenConnection {
  ConnectTarget target;
  Connection connection;
};

// Opens the URI `config` names. Throws LibvirtError (a CloudError) naming the URI (no secrets),
// the transport, libvirt's message and what to check; ok_to_retry is not set (the director does
// not retry these). Settings it cannot build a URI from: InvalidSettings (build_target).
OpenConnection open_connection(const config::LibvirtConfig& config);

// The hint for a connection failure with libvirt error `code` and message `message`.
std::string connection_hint(const std::string& transport, int code, const std::string& message);

}  // namespace cpi::virt
