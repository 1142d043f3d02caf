#pragma once
// What the tests list straight from libvirt (leftovers, cleanup, the state a test asserts): the
// objects of a connection or a pool as owned handles (virt/handles.hpp), the array libvirt
// allocated freed. A listing that fails gives no objects; callers that must know use the count.

#include <libvirt/libvirt.h>

#include <cstdlib>
#include <vector>

#include "cpi/virt/handles.hpp"

namespace cpi::testing {

// The `count` handles in `list` (as a virConnectListAll* call filled it), each owned; frees it.
template <typename Handle, typename Raw>
std::vector<Handle> owned_list(Raw* list, int count) {
  std::vector<Handle> owned;
  for (int i = 0; i < count; ++i) owned.emplace_back(list[i]);
  std::free(list);
  return owned;
}

inline std::vector<virt::Domain> all_domains(virConnect& conn, unsigned flags = 0) {
  virDomainPtr* list = nullptr;
  const int count = virConnectListAllDomains(&conn, &list, flags);
  return owned_list<virt::Domain>(list, count);
}

inline std::vector<virt::Pool> all_pools(virConnect& conn, unsigned flags = 0) {
  virStoragePoolPtr* list = nullptr;
  const int count = virConnectListAllStoragePools(&conn, &list, flags);
  return owned_list<virt::Pool>(list, count);
}

inline std::vector<virt::Volume> all_volumes(virStoragePool& pool) {
  virStorageVolPtr* list = nullptr;
  const int count = virStoragePoolListAllVolumes(&pool, &list, 0);
  return owned_list<virt::Volume>(list, count);
}

inline std::vector<virt::Network> all_networks(virConnect& conn, unsigned flags = 0) {
  virNetworkPtr* list = nullptr;
  const int count = virConnectListAllNetworks(&conn, &list, flags);
  return owned_list<virt::Network>(list, count);
}

}  // namespace cpi::testing
