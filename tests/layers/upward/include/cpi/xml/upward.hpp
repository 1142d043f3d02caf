#pragma once
// A fixture for the layer check's own test: libvirt's headers are not for xml.
#include <libvirt/libvirt.h>
