// libFuzzer target over the request envelope, argument decoding, cloud_properties and config
// parsing. The first byte picks the mode; the rest is the document. A crash, a hang, or a
// response that is not one JSON object with result/error/log is a failure.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cpi/cloud/vm_props.hpp"
#include "cpi/config/config.hpp"
#include "cpi/errors.hpp"
#include "cpi/rpc/dispatcher.hpp"
#include "cpi/util/log.hpp"

namespace {

using nlohmann::json;

// A cloud whose methods run the same cloud_properties validation the real one does, then
// answer fixed values.
class ValidatingCloud final : public cpi::cloud::Cloud {
 public:
  cpi::cloud::StemcellCid create_stemcell(const std::string&, const json& p) override {
    cpi::cloud::parse_stemcell_props(p);
    return {"sc-1"};
  }
  void delete_stemcell(const cpi::cloud::StemcellCid&) override {}
  cpi::cloud::CreatedVm create_vm(const cpi::cloud::VmRequest& r) override {
    cpi::cloud::parse_vm_props(r.cloud_properties);
    for (const auto& [name, network] : r.networks.items()) {
      if (network.is_object()) {
        cpi::cloud::parse_network_props(name, network.value("cloud_properties", json()));
      }
    }
    return {{"vm-1"}, r.networks};
  }
  void delete_vm(const cpi::cloud::VmCid&) override {}
  bool has_vm(const cpi::cloud::VmCid&) override { return false; }
  void reboot_vm(const cpi::cloud::VmCid&) override {}
  void set_vm_metadata(const cpi::cloud::VmCid&, const json&) override {}
  cpi::cloud::DiskCid create_disk(std::int64_t, const json& p,
                                  const std::optional<cpi::cloud::VmCid>&) override {
    cpi::cloud::parse_disk_props(p);
    return {"disk-0123456789abcde"};
  }
  void delete_disk(const cpi::cloud::DiskCid&) override {}
  bool has_disk(const cpi::cloud::DiskCid&) override { return false; }
  json attach_disk(const cpi::cloud::VmCid&, const cpi::cloud::DiskCid& d, int) override {
    return {{"path", "/dev/disk/by-id/virtio-" + d.value}};
  }
  void detach_disk(const cpi::cloud::VmCid&, const cpi::cloud::DiskCid&, int) override {}
  std::vector<cpi::cloud::DiskCid> get_disks(const cpi::cloud::VmCid&) override { return {}; }
  void resize_disk(const cpi::cloud::DiskCid&, std::int64_t) override {}
  void set_disk_metadata(const cpi::cloud::DiskCid&, const json&) override {}
  cpi::cloud::SnapshotCid snapshot_disk(const cpi::cloud::DiskCid&, const json&) override {
    return {"snap-1"};
  }
  void delete_snapshot(const cpi::cloud::SnapshotCid&) override {}
};

void check_response(const std::string& text) {
  const json response = json::parse(text, nullptr, false);
  const bool ok = response.is_object() && response.contains("result") &&
                  response.contains("error") && response["log"].is_string() &&
                  (response["error"].is_null() ||
                   (response["error"]["type"].is_string() &&
                    response["error"]["message"].is_string() &&
                    response["error"]["ok_to_retry"].is_boolean()));
  if (!ok) {
    std::abort();  // not a well-formed CPI response
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  cpi::util::init_logging();
  cpi::util::set_log_level("error");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view body{reinterpret_cast<const char*>(data + 1), size - 1};
  if (data[0] % 2 == 0) {
    cpi::rpc::DispatchOptions options;
    options.cloud_factory = [](const cpi::config::Config&) -> std::unique_ptr<cpi::cloud::Cloud> {
      return std::make_unique<ValidatingCloud>();
    };
    check_response(cpi::rpc::dispatch(body, options));
  } else {
    const json document = json::parse(body, nullptr, false);
    if (document.is_discarded()) return 0;
    try {
      const auto config = cpi::config::parse_config(document, "/etc/cpi", "fuzz");
      cpi::config::with_context(config.libvirt, document, "/etc/cpi");
    } catch (const cpi::Error&) {
      // Rejected input is the expected outcome for most documents.
    }
  }
  return 0;
}
