// The handlers of the stemcell methods. Each reads every argument before it opens the cloud
// (Call::cloud()), so a request with a bad argument is refused without a connection.

#include <spdlog/spdlog.h>

#include "cpi/actions/call.hpp"
#include "cpi/cloud/libvirt_cloud.hpp"

namespace cpi::actions {

// create_stemcell(image_path, cloud_properties[, env]) -> stemcell CID
nlohmann::json create_stemcell(Call& call) {
  const auto image_path = call.cid_arg(0, "image_path");
  const auto props = call.object_arg(1, "cloud_properties");
  const auto cid = call.cloud().create_stemcell(image_path, props);
  spdlog::info("created stemcell {}", cid.value);
  return cid.value;
}

// delete_stemcell(stemcell_cid) -> null; succeeds when it is already gone.
nlohmann::json delete_stemcell(Call& call) {
  const cloud::StemcellCid cid{call.cid_arg(0, "stemcell_cid")};
  call.cloud().delete_stemcell(cid);
  return nullptr;
}

}  // namespace cpi::actions
