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
};

DomainFacts read_domain_xml(const std::string& text);

// The first free target name for `bus` (virtio vdX, scsi/sata sdX, ide hdX): a..z, then aa..zz.
std::string next_target(const std::string& bus, const std::vector<std::string>& used);

}  // namespace cpi::xml
