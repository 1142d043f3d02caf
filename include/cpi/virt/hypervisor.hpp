#pragma once
// The seam between the cloud driver and libvirt: every libvirt call the driver makes goes
// through this interface. LibvirtHypervisor forwards to the C API; tests wrap it
// (tests/support/hypervisor_wrapper.hpp) to emulate what libvirt's test driver lacks and to
// inject failures. Every method throws LibvirtError (virt/error.hpp, a CloudError naming the
// operation, the object and libvirt's message, with libvirt's code) on failure; find_* return
// nullopt only for "no such object".
//
// Cost: on a remote connection (qemu:///system is one) every method is one request to the
// daemon, a stream one upload or download, except: uri() (none: the connection knows it),
// host_versions() (three), download_volume() (the volume's size first), attach_device(),
// detach_device() and update_device() with `live` (whether the domain runs first), and
// set_domain_metadata() / set_domain_title() on a domain that stopped after its lookup (see
// there). The driver tests count them per CPI method (FakeHypervisor::requests()).

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cpi/util/byte_source.hpp"
#include "cpi/virt/handles.hpp"

namespace cpi::virt {

using util::ByteSource;  // what uploads read (util/byte_source.hpp)
using util::StringSource;

struct VolumeInfo {
  std::uint64_t capacity = 0;
  std::uint64_t allocation = 0;
};

// A block job on one disk of a running domain (virDomainGetBlockJobInfo). libvirt reports a
// copy as ready (mirroring, its target a full copy) exactly when cur == end and end > 0.
struct BlockJob {
  std::uint64_t cur = 0;
  std::uint64_t end = 0;
  bool ready() const { return end > 0 && cur == end; }
};

struct PoolInfo {
  bool active = false;
  std::uint64_t capacity = 0;
  std::uint64_t available = 0;
};

// What the connection says about the host's software (versions as libvirt encodes them:
// major * 1000000 + minor * 1000 + micro; 0 when unknown).
struct HostVersions {
  std::string type;              // virConnectGetType: "QEMU", "Test", "LXC" ...
  std::uint64_t hypervisor = 0;  // virConnectGetVersion
  std::uint64_t libvirt = 0;     // virConnectGetLibVersion (the daemon's, for remote URIs)
};

class Hypervisor {
 public:
  virtual ~Hypervisor() = default;

  // --- host
  virtual std::string uri() = 0;
  // virConnectGetDomainCapabilities for a virt type ("kvm", "qemu"); nullopt when unsupported.
  virtual std::optional<std::string> domain_capabilities(const std::string& virt_type) = 0;
  // Operator tooling (cpi doctor / inspect / cleanup):
  virtual HostVersions host_versions() = 0;
  virtual std::string capabilities() = 0;  // virConnectGetCapabilities XML
  virtual int domain_state(virDomain& domain) = 0;  // a virDomainState value

  // --- storage pools
  virtual std::optional<Pool> find_pool(const std::string& name) = 0;
  virtual std::vector<std::string> active_pool_names() = 0;
  virtual Pool define_pool(const std::string& xml) = 0;
  virtual void build_pool(virStoragePool& pool) = 0;
  virtual void start_pool(virStoragePool& pool) = 0;
  virtual void set_pool_autostart(virStoragePool& pool) = 0;
  virtual void undefine_pool(virStoragePool& pool) = 0;
  virtual PoolInfo pool_info(virStoragePool& pool) = 0;
  virtual std::string pool_xml(virStoragePool& pool) = 0;

  // --- volumes
  virtual std::optional<Volume> find_volume(virStoragePool& pool, const std::string& name) = 0;
  // Names of every volume in the pool (a scan: for rare operations and tools, never lookups).
  virtual std::vector<std::string> list_volume_names(virStoragePool& pool) = 0;
  virtual Volume create_volume(virStoragePool& pool, const std::string& xml) = 0;
  virtual Volume clone_volume(virStoragePool& pool, const std::string& xml,
                              virStorageVol& from) = 0;
  // Streams `length` bytes from `source` into the volume; `sparse` sends zero runs as holes.
  virtual void upload_volume(virStorageVol& volume, ByteSource& source, std::uint64_t length,
                             bool sparse) = 0;
  // The first `max_bytes` bytes of the volume's content.
  virtual std::string download_volume(virStorageVol& volume, std::uint64_t max_bytes) = 0;
  // Streams the stored bytes of `from` (a qcow2 file stays qcow2) over the start of `to`, through
  // this process. For an image a running qemu holds locked, which qemu-img (clone_volume) refuses.
  virtual void copy_volume_bytes(virStorageVol& from, virStorageVol& to) = 0;
  virtual void resize_volume(virStorageVol& volume, std::uint64_t capacity_bytes) = 0;
  virtual void delete_volume(virStorageVol& volume) = 0;
  virtual std::string volume_xml(virStorageVol& volume) = 0;
  virtual std::string volume_path(virStorageVol& volume) = 0;
  virtual VolumeInfo volume_info(virStorageVol& volume) = 0;

  // --- domains
  virtual std::optional<Domain> find_domain(const std::string& name) = 0;
  // Names of every domain, running or not (a scan: for tools, never lookups).
  virtual std::vector<std::string> list_domain_names() = 0;
  virtual Domain define_domain(const std::string& xml) = 0;
  virtual void start_domain(virDomain& domain) = 0;
  virtual void destroy_domain(virDomain& domain) = 0;    // hard power-off
  virtual void shutdown_domain(virDomain& domain) = 0;   // ACPI power button
  virtual void suspend_domain(virDomain& domain) = 0;
  virtual void resume_domain(virDomain& domain) = 0;
  virtual void undefine_domain(virDomain& domain) = 0;   // with NVRAM, managed save, snapshots
  virtual bool domain_active(virDomain& domain) = 0;
  virtual std::string domain_xml(virDomain& domain, bool inactive) = 0;
  virtual void set_domain_autostart(virDomain& domain) = 0;
  // Sets (or with empty xml removes) our <metadata> element in the persistent and, when
  // running, the live definition. Whether it runs is taken from the domain handle's id (what
  // its lookup saw): one that stopped since costs a state read and a second write; one that
  // started since keeps its old live metadata until it restarts. Likewise set_domain_title.
  virtual void set_domain_metadata(virDomain& domain, const std::string& xml,
                                   const std::string& key, const std::string& ns_uri) = 0;
  virtual std::optional<std::string> domain_metadata(virDomain& domain,
                                                     const std::string& ns_uri) = 0;
  virtual void set_domain_title(virDomain& domain, const std::string& title) = 0;
  // Device changes to the persistent definition and, when `live`, to the running domain.
  virtual void attach_device(virDomain& domain, const std::string& xml, bool live) = 0;
  virtual void detach_device(virDomain& domain, const std::string& xml, bool live) = 0;
  virtual void update_device(virDomain& domain, const std::string& xml, bool live) = 0;
  // Asks the running domain to release a device (VIR_DOMAIN_AFFECT_LIVE only): for a device the
  // persistent definition no longer has. The guest completes it later, or never.
  virtual void detach_live_device(virDomain& domain, const std::string& xml) = 0;
  virtual void block_resize(virDomain& domain, const std::string& target,
                            std::uint64_t bytes) = 0;
  // Starts copying disk `target` of the running domain into the existing image `dest_xml` (a
  // <disk> naming a file of the same size and format): a full copy (not shallow) that then
  // mirrors the guest's writes, as a transient job (allowed on a persistent domain).
  virtual void block_copy(virDomain& domain, const std::string& target,
                          const std::string& dest_xml) = 0;
  // The block job on disk `target`; nullopt when there is none.
  virtual std::optional<BlockJob> block_job(virDomain& domain, const std::string& target) = 0;
  // Ends the block job on `target` without pivoting (synchronous): a ready copy's target stays
  // a consistent image of the disk at this moment, and the domain keeps its own disk.
  virtual void block_job_abort(virDomain& domain, const std::string& target) = 0;

  // --- networks
  virtual std::optional<Network> find_network(const std::string& name) = 0;
  virtual bool network_active(virNetwork& network) = 0;
  virtual void start_network(virNetwork& network) = 0;
};

}  // namespace cpi::virt
