// A fixture for the layer check's own test: xml reaching up into cloud must be refused.
#include "cpi/cloud/libvirt_cloud.hpp"
#include "cpi/xml/upward.hpp"
