#include "cpi/virt/libvirt_hypervisor.hpp"

#include <libvirt/virterror.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "cpi/virt/error.hpp"

namespace cpi::virt {
namespace {

std::string name_of(virDomain& d) {
  const char* n = virDomainGetName(&d);
  return n != nullptr ? n : "?";
}
std::string name_of(virStorageVol& v) {
  const char* n = virStorageVolGetName(&v);
  return n != nullptr ? n : "?";
}
std::string name_of(virStoragePool& p) {
  const char* n = virStoragePoolGetName(&p);
  return n != nullptr ? n : "?";
}

std::string take_string(char* text, const std::string& action) {
  if (text == nullptr) {
    throw_last_error(action);
  }
  OwnedCString owned{text};
  return owned.get();
}

// throw_last_error for a failure already reported: the error is copied before `describe` runs,
// because naming an object (vir*GetName) resets libvirt's last error.
template <typename Describe>
[[noreturn]] void throw_failure(Describe&& describe) {
  virErrorPtr saved = virSaveLastError();
  const int code = saved != nullptr && saved->code != VIR_ERR_OK ? saved->code : VIR_ERR_INTERNAL_ERROR;
  const std::string message = saved != nullptr && saved->message != nullptr
                                  ? saved->message
                                  : "libvirt reported no error detail";
  if (saved != nullptr) virFreeError(saved);
  virResetLastError();
  throw LibvirtError(code, describe() + ": " + message);
}

// The thread's last libvirt error as the exception throw_last_error throws; resets it.
LibvirtError taken_error(const std::string& action) {
  try {
    throw_last_error(action);
  } catch (const LibvirtError& e) {
    return e;
  }
}

void check(int rc, const std::string& action) {
  if (rc < 0) {
    throw_last_error(action);
  }
}

unsigned int device_flags(virDomain& domain, bool live) {
  unsigned int flags = VIR_DOMAIN_AFFECT_CONFIG;
  if (live && virDomainIsActive(&domain) == 1) {
    flags |= VIR_DOMAIN_AFFECT_LIVE;
  }
  return flags;
}

// A metadata change (virDomainSetMetadata through `set`, given the flags) to the persistent
// definition and, when the domain runs, to the live one. Whether it runs is read from the
// handle's id, which the lookup returned (no call to the daemon). A domain that stopped since
// refuses the live part: the change then goes to the persistent definition alone. One that
// started since keeps its old live metadata until it restarts; the persistent definition, the
// one the CPI reads, is written either way.
template <typename Set>
void change_metadata(virDomain& domain, const char* what, Set&& set) {
  const std::string action = std::string{what} + " '" + name_of(domain) + "'";
  const bool running = virDomainGetID(&domain) != static_cast<unsigned int>(-1);
  const unsigned int config = VIR_DOMAIN_AFFECT_CONFIG;
  if (set(running ? config | VIR_DOMAIN_AFFECT_LIVE : config) == 0) return;
  if (running && last_error_code() == VIR_ERR_OPERATION_INVALID) {
    const LibvirtError refusal = taken_error(action);  // the next call resets it
    if (virDomainIsActive(&domain) == 0) {
      virResetLastError();
      check(set(config), action);
      return;
    }
    throw refusal;
  }
  throw_last_error(action);
}

// Zero detection for sparse uploads: the source is read in blocks; all-zero blocks are holes.
constexpr std::size_t k_chunk = 1U << 20;   // 1 MiB per read
constexpr std::size_t k_block = 64U << 10;  // hole granularity

bool all_zero(const char* data, std::size_t size) {
  static const char k_zeros[k_block] = {};
  while (size > 0) {
    const std::size_t n = std::min(size, k_block);
    if (std::memcmp(data, k_zeros, n) != 0) {
      return false;
    }
    data += n;
    size -= n;
  }
  return true;
}

// Feeds virStreamSparseSendAll from a ByteSource, reporting zero blocks as holes.
class SparseFeeder {
 public:
  SparseFeeder(ByteSource& source, std::uint64_t length) : m_source(source), m_left(length) {
    m_buffer.resize(k_chunk);
  }

  static int data(virStreamPtr, char* bytes, size_t nbytes, void* opaque) {
    return static_cast<SparseFeeder*>(opaque)->on_data(bytes, nbytes);
  }
  static int hole(virStreamPtr, int* in_data, long long* length, void* opaque) {
    return static_cast<SparseFeeder*>(opaque)->on_hole(in_data, length);
  }
  static int skip(virStreamPtr, long long length, void* opaque) {
    return static_cast<SparseFeeder*>(opaque)->on_skip(length);
  }

  std::string failure;

 private:
  bool fill() {
    if (m_pos < m_size) return true;
    m_pos = 0;
    m_size = 0;
    if (m_left == 0) return false;
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(m_left, k_chunk));
    while (m_size < want) {
      const std::size_t got = m_source.read(m_buffer.data() + m_size, want - m_size);
      if (got == 0) break;
      m_size += got;
    }
    m_left -= m_size;
    if (m_size == 0) m_left = 0;
    return m_size > 0;
  }

  // Length of the run at m_pos that is all data or all zero, in whole blocks of the chunk.
  std::size_t run(bool zero) const {
    std::size_t p = m_pos;
    while (p < m_size) {
      const std::size_t n = std::min(k_block, m_size - p);
      if (all_zero(m_buffer.data() + p, n) != zero) break;
      p += n;
    }
    return p - m_pos;
  }

  // Serves the data section on_hole announced. libvirt asks in pieces of its own size (not a
  // multiple of k_block), so the section is counted down rather than re-scanned from a
  // misaligned position, where a window of zeros inside the section would end the stream early.
  int on_data(char* bytes, size_t nbytes) {
    try {
      const std::size_t n = std::min({nbytes, m_section, m_size - m_pos});
      std::memcpy(bytes, m_buffer.data() + m_pos, n);
      m_pos += n;
      m_section -= n;
      return static_cast<int>(n);
    } catch (const std::exception& e) {
      failure = e.what();
      return -1;
    }
  }

  int on_hole(int* in_data, long long* length) {
    try {
      m_source_hole = 0;
      if (m_pos >= m_size && m_left > 0) {  // a hole the source knows of: skipped unread
        m_source_hole = std::min(m_source.hole_ahead(), m_left);
        if (m_source_hole > 0) {
          *in_data = 0;
          *length = static_cast<long long>(m_source_hole);
          return 0;
        }
      }
      if (!fill()) {
        *in_data = 0;
        *length = 0;
        return 0;
      }
      const std::size_t zeros = run(true);
      if (zeros > 0) {
        *in_data = 0;
        *length = static_cast<long long>(zeros);
      } else {
        m_section = run(false);
        *in_data = 1;
        *length = static_cast<long long>(m_section);
      }
      return 0;
    } catch (const std::exception& e) {
      failure = e.what();
      return -1;
    }
  }

  int on_skip(long long length) {
    try {
      if (m_source_hole > 0) {
        const auto n = std::min(static_cast<std::uint64_t>(length), m_source_hole);
        m_source.skip(n);
        m_left -= n;
        m_source_hole -= n;
        return 0;
      }
      m_pos += static_cast<std::size_t>(length);
      return 0;
    } catch (const std::exception& e) {
      failure = e.what();
      return -1;
    }
  }

  ByteSource& m_source;
  std::uint64_t m_left;
  std::vector<char> m_buffer;
  std::size_t m_pos = 0;
  std::size_t m_size = 0;
  std::size_t m_section = 0;  // bytes left of the data section on_hole announced
  std::uint64_t m_source_hole = 0;  // the source's hole on_hole announced, not yet skipped
};

struct PlainFeeder {
  ByteSource& source;
  std::string failure;
  static int data(virStreamPtr, char* bytes, size_t nbytes, void* opaque) {
    auto* self = static_cast<PlainFeeder*>(opaque);
    try {
      return static_cast<int>(self->source.read(bytes, nbytes));
    } catch (const std::exception& e) {
      self->failure = e.what();
      return -1;
    }
  }
};

}  // namespace

std::string LibvirtHypervisor::uri() {
  return take_string(virConnectGetURI(&m_conn), "reading the connection URI");
}

std::optional<std::string> LibvirtHypervisor::domain_capabilities(const std::string& virt_type) {
  char* xml = virConnectGetDomainCapabilities(&m_conn, nullptr, nullptr, nullptr,
                                              virt_type.c_str(), 0);
  if (xml == nullptr) {
    virResetLastError();
    return std::nullopt;
  }
  OwnedCString owned{xml};
  return std::string{owned.get()};
}

std::optional<Pool> LibvirtHypervisor::find_pool(const std::string& name) {
  Pool pool{virStoragePoolLookupByName(&m_conn, name.c_str())};
  if (pool) return pool;
  if (last_error_code() == VIR_ERR_NO_STORAGE_POOL) {
    virResetLastError();
    return std::nullopt;
  }
  throw_last_error("looking up storage pool '" + name + "'");
}

std::vector<std::string> LibvirtHypervisor::active_pool_names() {
  virStoragePoolPtr* pools = nullptr;
  const int count =
      virConnectListAllStoragePools(&m_conn, &pools, VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE);
  if (count < 0) throw_last_error("listing storage pools");
  std::vector<Pool> owned;
  for (int i = 0; i < count; ++i) owned.emplace_back(pools[i]);
  std::free(pools);
  std::vector<std::string> names;
  for (auto& pool : owned) names.push_back(name_of(*pool));
  return names;
}

Pool LibvirtHypervisor::define_pool(const std::string& xml) {
  Pool pool{virStoragePoolDefineXML(&m_conn, xml.c_str(), 0)};
  if (!pool) throw_last_error("defining a storage pool");
  return pool;
}

void LibvirtHypervisor::build_pool(virStoragePool& pool) {
  check(virStoragePoolBuild(&pool, 0), "building storage pool '" + name_of(pool) + "'");
}

void LibvirtHypervisor::start_pool(virStoragePool& pool) {
  check(virStoragePoolCreate(&pool, 0), "starting storage pool '" + name_of(pool) + "'");
}

void LibvirtHypervisor::set_pool_autostart(virStoragePool& pool) {
  check(virStoragePoolSetAutostart(&pool, 1),
        "setting autostart on storage pool '" + name_of(pool) + "'");
}

void LibvirtHypervisor::undefine_pool(virStoragePool& pool) {
  if (virStoragePoolIsActive(&pool) == 1) {
    check(virStoragePoolDestroy(&pool), "stopping storage pool '" + name_of(pool) + "'");
  }
  check(virStoragePoolUndefine(&pool), "undefining storage pool '" + name_of(pool) + "'");
}

PoolInfo LibvirtHypervisor::pool_info(virStoragePool& pool) {
  virStoragePoolInfo info{};
  check(virStoragePoolGetInfo(&pool, &info), "reading storage pool '" + name_of(pool) + "'");
  return {info.state == VIR_STORAGE_POOL_RUNNING, info.capacity, info.available};
}

std::string LibvirtHypervisor::pool_xml(virStoragePool& pool) {
  return take_string(virStoragePoolGetXMLDesc(&pool, 0),
                     "reading storage pool '" + name_of(pool) + "'");
}

std::optional<Volume> LibvirtHypervisor::find_volume(virStoragePool& pool,
                                                     const std::string& name) {
  Volume volume{virStorageVolLookupByName(&pool, name.c_str())};
  if (volume) return volume;
  if (last_error_code() == VIR_ERR_NO_STORAGE_VOL) {
    virResetLastError();
    return std::nullopt;
  }
  throw_failure([&] { return "looking up volume '" + name + "' in pool '" + name_of(pool) + "'"; });
}

std::vector<std::string> LibvirtHypervisor::list_volume_names(virStoragePool& pool) {
  virStorageVolPtr* volumes = nullptr;
  const int count = virStoragePoolListAllVolumes(&pool, &volumes, 0);
  if (count < 0) throw_failure([&] { return "listing the volumes of pool '" + name_of(pool) + "'"; });
  std::vector<Volume> owned;
  for (int i = 0; i < count; ++i) owned.emplace_back(volumes[i]);
  std::free(volumes);
  std::vector<std::string> names;
  for (auto& volume : owned) names.push_back(name_of(*volume));
  return names;
}

Volume LibvirtHypervisor::create_volume(virStoragePool& pool, const std::string& xml) {
  Volume volume{virStorageVolCreateXML(&pool, xml.c_str(), 0)};
  if (!volume) throw_failure([&] { return "creating a volume in pool '" + name_of(pool) + "'"; });
  return volume;
}

Volume LibvirtHypervisor::clone_volume(virStoragePool& pool, const std::string& xml,
                                       virStorageVol& from) {
  Volume volume{virStorageVolCreateXMLFrom(&pool, xml.c_str(), &from, 0)};
  if (!volume) {
    throw_failure(
        [&] { return "cloning volume '" + name_of(from) + "' in pool '" + name_of(pool) + "'"; });
  }
  return volume;
}

void LibvirtHypervisor::upload_volume(virStorageVol& volume, ByteSource& source,
                                      std::uint64_t length, bool sparse) {
  const std::string what = "uploading into volume '" + name_of(volume) + "'";
  Stream stream{virStreamNew(&m_conn, 0)};
  if (stream.get() == nullptr) throw_last_error(what);
  const unsigned int flags = sparse ? static_cast<unsigned int>(VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM) : 0U;
  if (virStorageVolUpload(&volume, stream.get(), 0, length, flags) < 0) {
    throw_last_error(what);
  }
  if (sparse) {
    SparseFeeder feeder{source, length};
    if (virStreamSparseSendAll(stream.get(), &SparseFeeder::data, &SparseFeeder::hole,
                               &SparseFeeder::skip, &feeder) < 0) {
      stream.mark_aborted();
      if (!feeder.failure.empty()) throw LibvirtError(VIR_ERR_INTERNAL_ERROR, what + ": " + feeder.failure);
      throw_last_error(what);
    }
  } else {
    PlainFeeder feeder{source, {}};
    if (virStreamSendAll(stream.get(), &PlainFeeder::data, &feeder) < 0) {
      stream.mark_aborted();
      if (!feeder.failure.empty()) throw LibvirtError(VIR_ERR_INTERNAL_ERROR, what + ": " + feeder.failure);
      throw_last_error(what);
    }
  }
  stream.finish(what.c_str());
}

std::string LibvirtHypervisor::download_volume(virStorageVol& volume, std::uint64_t max_bytes) {
  const std::string what = "downloading volume '" + name_of(volume) + "'";
  Stream stream{virStreamNew(&m_conn, 0)};
  if (stream.get() == nullptr) throw_last_error(what);
  const auto capacity = volume_info(volume).capacity;
  const auto length = std::min(capacity, max_bytes);
  if (virStorageVolDownload(&volume, stream.get(), 0, length, 0) < 0) throw_last_error(what);
  std::string out;
  std::vector<char> buffer(256U << 10);
  for (;;) {
    const int got = virStreamRecv(stream.get(), buffer.data(), buffer.size());
    if (got < 0) throw_last_error(what);
    if (got == 0) break;
    out.append(buffer.data(), static_cast<std::size_t>(got));
  }
  stream.finish(what.c_str());
  return out;
}

// Sparse streams both ways: holes in the source are sent as holes, so a mostly empty image is
// copied in the time of its data and stays sparse (libvirt's own clone of a raw file writes it
// out in full).
void LibvirtHypervisor::copy_volume_bytes(virStorageVol& from, virStorageVol& to) {
  const std::string what = "copying volume '" + name_of(from) + "' into '" + name_of(to) + "'";
  Stream in{virStreamNew(&m_conn, 0)};
  if (in.get() == nullptr) throw_last_error(what);
  if (virStorageVolDownload(&from, in.get(), 0, 0, VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM) < 0) {
    throw_last_error(what);  // offset and length 0: all of it
  }
  Stream out{virStreamNew(&m_conn, 0)};
  if (out.get() == nullptr) throw_last_error(what);
  if (virStorageVolUpload(&to, out.get(), 0, 0, VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM) < 0) {
    throw_last_error(what);
  }
  std::vector<char> buffer(256U << 10);
  for (;;) {
    const int got = virStreamRecvFlags(in.get(), buffer.data(), buffer.size(),
                                       VIR_STREAM_RECV_STOP_AT_HOLE);
    if (got == -3) {  // a hole: pass it on
      long long length = 0;
      if (virStreamRecvHole(in.get(), &length, 0) < 0) throw_last_error(what);
      if (length > 0 && virStreamSendHole(out.get(), length, 0) < 0) throw_last_error(what);
      continue;
    }
    if (got < 0) throw_last_error(what);
    if (got == 0) break;
    for (int sent = 0; sent < got;) {
      const int n = virStreamSend(out.get(), buffer.data() + sent, static_cast<size_t>(got - sent));
      if (n < 0) throw_last_error(what);
      sent += n;
    }
  }
  in.finish(what.c_str());
  out.finish(what.c_str());
}

void LibvirtHypervisor::resize_volume(virStorageVol& volume, std::uint64_t capacity_bytes) {
  check(virStorageVolResize(&volume, capacity_bytes, 0),
        "resizing volume '" + name_of(volume) + "'");
}

void LibvirtHypervisor::delete_volume(virStorageVol& volume) {
  check(virStorageVolDelete(&volume, 0), "deleting volume '" + name_of(volume) + "'");
}

std::string LibvirtHypervisor::volume_xml(virStorageVol& volume) {
  return take_string(virStorageVolGetXMLDesc(&volume, 0),
                     "reading volume '" + name_of(volume) + "'");
}

std::string LibvirtHypervisor::volume_path(virStorageVol& volume) {
  return take_string(virStorageVolGetPath(&volume),
                     "reading the path of volume '" + name_of(volume) + "'");
}

VolumeInfo LibvirtHypervisor::volume_info(virStorageVol& volume) {
  virStorageVolInfo info{};
  check(virStorageVolGetInfo(&volume, &info), "reading volume '" + name_of(volume) + "'");
  return {info.capacity, info.allocation};
}

std::optional<Domain> LibvirtHypervisor::find_domain(const std::string& name) {
  Domain domain{virDomainLookupByName(&m_conn, name.c_str())};
  if (domain) return domain;
  if (last_error_code() == VIR_ERR_NO_DOMAIN) {
    virResetLastError();
    return std::nullopt;
  }
  throw_last_error("looking up domain '" + name + "'");
}

std::vector<std::string> LibvirtHypervisor::list_domain_names() {
  virDomainPtr* domains = nullptr;
  const int count = virConnectListAllDomains(&m_conn, &domains, 0);
  if (count < 0) throw_last_error("listing domains");
  std::vector<Domain> owned;
  for (int i = 0; i < count; ++i) owned.emplace_back(domains[i]);
  std::free(domains);
  std::vector<std::string> names;
  for (auto& domain : owned) names.push_back(name_of(*domain));
  return names;
}

Domain LibvirtHypervisor::define_domain(const std::string& xml) {
  Domain domain{virDomainDefineXML(&m_conn, xml.c_str())};
  if (!domain) throw_last_error("defining a domain");
  return domain;
}

void LibvirtHypervisor::start_domain(virDomain& domain) {
  check(virDomainCreate(&domain), "starting domain '" + name_of(domain) + "'");
}

void LibvirtHypervisor::destroy_domain(virDomain& domain) {
  check(virDomainDestroy(&domain), "stopping domain '" + name_of(domain) + "'");
}

// The ACPI power button for VMs. Containers (LXC) have none and refuse the flag as invalid:
// their init gets SIGTERM (libvirt 9.0's default, initctl first, sends nothing to a busybox init).
void LibvirtHypervisor::shutdown_domain(virDomain& domain) {
  if (virDomainShutdownFlags(&domain, VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN) == 0) return;
  if (virGetLastErrorCode() == VIR_ERR_INVALID_ARG) {
    check(virDomainShutdownFlags(&domain, VIR_DOMAIN_SHUTDOWN_SIGNAL),
          "shutting down domain '" + name_of(domain) + "'");
    return;
  }
  throw_last_error("shutting down domain '" + name_of(domain) + "'");
}

void LibvirtHypervisor::undefine_domain(virDomain& domain) {
  const unsigned int full = VIR_DOMAIN_UNDEFINE_NVRAM | VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                            VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                            VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA;
  if (virDomainUndefineFlags(&domain, full) == 0) return;
  const int code = last_error_code();
  if (code == VIR_ERR_NO_SUPPORT || code == VIR_ERR_INVALID_ARG) {
    virResetLastError();
    check(virDomainUndefine(&domain), "undefining domain '" + name_of(domain) + "'");
    return;
  }
  throw_failure([&] { return "undefining domain '" + name_of(domain) + "'"; });
}

void LibvirtHypervisor::suspend_domain(virDomain& domain) {
  check(virDomainSuspend(&domain), "pausing domain '" + name_of(domain) + "'");
}

void LibvirtHypervisor::resume_domain(virDomain& domain) {
  check(virDomainResume(&domain), "resuming domain '" + name_of(domain) + "'");
}

bool LibvirtHypervisor::domain_active(virDomain& domain) {
  const int rc = virDomainIsActive(&domain);
  if (rc < 0) throw_failure([&] { return "reading the state of domain '" + name_of(domain) + "'"; });
  return rc == 1;
}

std::string LibvirtHypervisor::domain_xml(virDomain& domain, bool inactive) {
  return take_string(virDomainGetXMLDesc(&domain, inactive ? static_cast<unsigned int>(VIR_DOMAIN_XML_INACTIVE) : 0U),
                     "reading domain '" + name_of(domain) + "'");
}

void LibvirtHypervisor::set_domain_autostart(virDomain& domain) {
  check(virDomainSetAutostart(&domain, 1),
        "setting autostart on domain '" + name_of(domain) + "'");
}

void LibvirtHypervisor::set_domain_metadata(virDomain& domain, const std::string& xml,
                                            const std::string& key, const std::string& ns_uri) {
  change_metadata(domain, "writing metadata of domain", [&](unsigned int flags) {
    return virDomainSetMetadata(&domain, VIR_DOMAIN_METADATA_ELEMENT,
                                xml.empty() ? nullptr : xml.c_str(), key.c_str(), ns_uri.c_str(),
                                flags);
  });
}

std::optional<std::string> LibvirtHypervisor::domain_metadata(virDomain& domain,
                                                              const std::string& ns_uri) {
  char* xml = virDomainGetMetadata(&domain, VIR_DOMAIN_METADATA_ELEMENT, ns_uri.c_str(),
                                   VIR_DOMAIN_AFFECT_CONFIG);
  if (xml == nullptr) {
    if (last_error_code() == VIR_ERR_NO_DOMAIN_METADATA) {
      virResetLastError();
      return std::nullopt;
    }
    throw_failure([&] { return "reading metadata of domain '" + name_of(domain) + "'"; });
  }
  OwnedCString owned{xml};
  return std::string{owned.get()};
}

void LibvirtHypervisor::set_domain_title(virDomain& domain, const std::string& title) {
  change_metadata(domain, "writing the title of domain", [&](unsigned int flags) {
    return virDomainSetMetadata(&domain, VIR_DOMAIN_METADATA_TITLE, title.c_str(), nullptr,
                                nullptr, flags);
  });
}

void LibvirtHypervisor::attach_device(virDomain& domain, const std::string& xml, bool live) {
  check(virDomainAttachDeviceFlags(&domain, xml.c_str(), device_flags(domain, live)),
        "attaching a device to domain '" + name_of(domain) + "'");
}

void LibvirtHypervisor::detach_device(virDomain& domain, const std::string& xml, bool live) {
  check(virDomainDetachDeviceFlags(&domain, xml.c_str(), device_flags(domain, live)),
        "detaching a device from domain '" + name_of(domain) + "'");
}

void LibvirtHypervisor::detach_live_device(virDomain& domain, const std::string& xml) {
  check(virDomainDetachDeviceFlags(&domain, xml.c_str(), VIR_DOMAIN_AFFECT_LIVE),
        "detaching a device from running domain '" + name_of(domain) + "'");
}

void LibvirtHypervisor::update_device(virDomain& domain, const std::string& xml, bool live) {
  check(virDomainUpdateDeviceFlags(&domain, xml.c_str(), device_flags(domain, live)),
        "updating a device of domain '" + name_of(domain) + "'");
}

void LibvirtHypervisor::block_resize(virDomain& domain, const std::string& target,
                                     std::uint64_t bytes) {
  check(virDomainBlockResize(&domain, target.c_str(), static_cast<unsigned long long>(bytes),
                             VIR_DOMAIN_BLOCK_RESIZE_BYTES),
        "resizing disk '" + target + "' of domain '" + name_of(domain) + "'");
}

void LibvirtHypervisor::block_copy(virDomain& domain, const std::string& target,
                                   const std::string& dest_xml) {
  // REUSE_EXT: the target is a volume the caller made; TRANSIENT_JOB: libvirt refuses a copy
  // job on a persistent domain without it ("domain is not transient").
  if (virDomainBlockCopy(&domain, target.c_str(), dest_xml.c_str(), nullptr, 0,
                         VIR_DOMAIN_BLOCK_COPY_REUSE_EXT | VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB) <
      0) {
    throw_failure(
        [&] { return "copying disk '" + target + "' of domain '" + name_of(domain) + "'"; });
  }
}

std::optional<BlockJob> LibvirtHypervisor::block_job(virDomain& domain, const std::string& target) {
  virDomainBlockJobInfo info{};
  const int rc = virDomainGetBlockJobInfo(&domain, target.c_str(), &info, 0);
  if (rc < 0) {
    throw_failure([&] {
      return "reading the block job on disk '" + target + "' of domain '" + name_of(domain) + "'";
    });
  }
  if (rc == 0) return std::nullopt;
  return BlockJob{static_cast<std::uint64_t>(info.cur), static_cast<std::uint64_t>(info.end)};
}

void LibvirtHypervisor::block_job_abort(virDomain& domain, const std::string& target) {
  if (virDomainBlockJobAbort(&domain, target.c_str(), 0) < 0) {
    throw_failure([&] {
      return "ending the block job on disk '" + target + "' of domain '" + name_of(domain) + "'";
    });
  }
}

std::optional<Network> LibvirtHypervisor::find_network(const std::string& name) {
  Network network{virNetworkLookupByName(&m_conn, name.c_str())};
  if (network) return network;
  if (last_error_code() == VIR_ERR_NO_NETWORK) {
    virResetLastError();
    return std::nullopt;
  }
  throw_last_error("looking up network '" + name + "'");
}

bool LibvirtHypervisor::network_active(virNetwork& network) {
  const int rc = virNetworkIsActive(&network);
  if (rc < 0) throw_last_error("reading the state of a network");
  return rc == 1;
}

void LibvirtHypervisor::start_network(virNetwork& network) {
  const char* n = virNetworkGetName(&network);
  check(virNetworkCreate(&network), std::string{"starting network '"} + (n ? n : "?") + "'");
}

}  // namespace cpi::virt
