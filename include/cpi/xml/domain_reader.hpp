#pragma once
// Facts read back from a domain's XML.

#include <string>
#include <vector>

#include "cpi/xml/domain_xml.hpp"

namespace cpi::xml {

struct DomainFacts {
  std::vector<DiskDevice> disks;  // pool/volume only for type='volume' disks
  std::vector<NicDevice> nics;
  std::vector<std::string> targets;  // every disk target dev in use
  std::string console_log;
  // Our element in <metadata> (namespace k_metadata_ns, whatever prefix libvirt gave it): the
  // mark create_vm leaves on its domains, read with the definition instead of by another call
  // (virDomainGetMetadata looks for the same element). `facts` is the text of its <facts>.
  bool ours = false;
  std::string facts;
};

DomainFacts read_domain_xml(const std::string& text);

// The first free target name for `bus` (virtio vdX, scsi/sata sdX, ide hdX): a..z, then aa..zz.
std::string next_target(const std::string& bus, const std::vector<std::string>& used);

}  // namespace cpi::xml
