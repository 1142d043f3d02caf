#pragma once
// `cpi doctor`: checks that the CPI can work with its config and host, and says what to fix.
// Checks, by name (DoctorReport lines, in this order):
//   config           the config file loads                                (fail: stop here)
//   config_permissions  warn when the file holds secrets and its group or others may read it
//   tls_ca_cert      for the tls transport: validity dates (openssl command line)
//   tls_client_cert  the same for the client certificate
//   connection       the URI connects; transport, libvirt and hypervisor versions (fail: stop)
//   kvm              KVM guests possible, or only TCG (software emulation)
//   guest            an hvm guest for the host's architecture is offered
//   storage_pool     the pool exists (else the CPI creates it), is active, has free space
//   network          the configured network exists and is active
//   volume           a qcow2 test volume can be created and deleted
//   stream           a raw test volume can be written and read back by stream
//                    (warn, not fail, when the driver does not support streams)
//   qemu-img         on PATH when the host is local; remote: the qcow2 volume check stands in
//   lxc              hypervisor lxc only: a local host, mke2fs, cgroups libvirt's LXC driver
//                    can start containers on, root

#include <cstdint>
#include <filesystem>
#include <optional>

#include "cpi/config/config.hpp"
#include "cpi/tools/inspect.hpp"
#include "cpi/tools/report.hpp"
#include "cpi/virt/hypervisor.hpp"

namespace cpi::tools {

// Runs every check: loads `config_path` (built-in defaults without one), connects, checks.
// Never throws; every problem is a line of the report.
DoctorReport run_doctor(const std::optional<std::filesystem::path>& config_path, std::int64_t now);

// The checks after `connection`, on an open connection.
void check_host(virt::Hypervisor& hv, const config::Config& config, const HostContext& host,
                DoctorReport& report);

}  // namespace cpi::tools
