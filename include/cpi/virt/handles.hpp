#pragma once
// RAII owners for libvirt handles. Each owns one reference and releases it once. No raw
// virXxxPtr outlives a statement outside virt/; other layers borrow `virDomain&` etc.

#include <libvirt/libvirt.h>

#include <cstdlib>
#include <memory>

#include "cpi/virt/error.hpp"

namespace cpi::virt {

template <typename T, int (*Release)(T*)>
struct Releaser {
  void operator()(T* handle) const noexcept { Release(handle); }
};

using Connection = std::unique_ptr<virConnect, Releaser<virConnect, virConnectClose>>;
using Domain = std::unique_ptr<virDomain, Releaser<virDomain, virDomainFree>>;
using Pool = std::unique_ptr<virStoragePool, Releaser<virStoragePool, virStoragePoolFree>>;
using Volume = std::unique_ptr<virStorageVol, Releaser<virStorageVol, virStorageVolFree>>;
using Network = std::unique_ptr<virNetwork, Releaser<virNetwork, virNetworkFree>>;

// One more owned reference to a pool already held (virStoragePoolRef: no call to the daemon).
inline Pool another_reference(virStoragePool& pool) {
  check(virStoragePoolRef(&pool), "referencing a storage pool");
  return Pool{&pool};
}

struct FreeDeleter {
  void operator()(char* text) const noexcept { std::free(text); }
};
// A string libvirt malloc()ed.
using OwnedCString = std::unique_ptr<char, FreeDeleter>;

// A stream: freed always; aborted first unless finish() succeeded (libvirt stream contract).
class Stream {
 public:
  explicit Stream(virStreamPtr stream) noexcept : m_stream(stream) {}
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream();
  virStream* get() const noexcept { return m_stream; }
  // virStreamFinish; throws LibvirtError "<what>: ..." on failure (the destructor then only
  // frees).
  void finish(const std::string& what);
  // The stream was already aborted by libvirt (a failed Send*All): only free it.
  void mark_aborted() noexcept { m_done = true; }

 private:
  virStreamPtr m_stream;
  bool m_done = false;
};

}  // namespace cpi::virt
