#include <spdlog/spdlog.h>

#include "cpi/cloud/libvirt_cloud.hpp"
#include "cpi/cloud/vm_props.hpp"
#include "cpi/errors.hpp"
#include "cpi/stemcell/image_reader.hpp"
#include "cpi/util/rollback.hpp"
#include "cpi/xml/volume_xml.hpp"

namespace cpi::cloud {

// Streams root.img from the image tgz straight into a new volume: one pass, no temporary copy.
// Raw images go up as a sparse stream, so zero runs are not sent and the volume stays sparse.
StemcellCid LibvirtCloud::create_stemcell(const std::string& image_path,
                                          const nlohmann::json& cloud_properties) {
  const auto props = parse_stemcell_props(cloud_properties);
  stemcell::ImageReader image{image_path};
  const std::string format = props.disk_format.value_or(image.detected_format());
  if (format != image.detected_format()) {
    throw CloudError("create_stemcell: cloud_properties.disk_format is '" + format +
                     "' but root.img in '" + image_path + "' is " + image.detected_format());
  }
  const StemcellCid cid = new_stemcell_cid();
  const std::string name = object_name(cid.value);
  virStoragePool& target = pool();

  util::Rollback rollback;
  translate("importing stemcell '" + image_path + "' into volume '" + name + "'", [&] {
    const auto capacity = format == "qcow2" ? image.virtual_size() : image.size();
    auto volume = m_hv.create_volume(target, xml::volume_xml({name, capacity, format, ""}));
    rollback.add("delete volume '" + name + "'", [this, &target, name] {
      delete_if_exists(target, name);
    });
    spdlog::info("uploading {} image ({} bytes, virtual size {}) into {}", format, image.size(),
                 image.virtual_size(), name);
    m_hv.upload_volume(*volume, image, image.size(), format == "raw");
  });
  rollback.commit();
  return cid;
}

void LibvirtCloud::delete_stemcell(const StemcellCid& cid) {
  const std::string name = object_name(cid.value);
  translate("deleting stemcell '" + cid.value + "'", [&] {
    auto volume = m_hv.find_volume(pool(), name);
    if (!volume) {
      spdlog::info("stemcell {} is already gone", cid.value);
      return;
    }
    m_hv.delete_volume(**volume);
    spdlog::info("deleted stemcell {}", cid.value);
  });
}

}  // namespace cpi::cloud
