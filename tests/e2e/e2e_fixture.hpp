#pragma once
// E2eTest: the fixture of the e2e tier. Each test gets its own CPI config (its own name_prefix,
// so nothing it makes can be mistaken for another test's), calls the built binary through
// run_cpi.hpp, and looks at libvirt and at the guest's console to check what the calls did.
// TearDown removes whatever the test left (after a failure).

#include <gtest/gtest.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <nlohmann/json.hpp>
#include <pugixml.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpi/virt/handles.hpp"
#include "e2e/support/e2e_console.hpp"
#include "e2e/support/e2e_env.hpp"
#include "support/run_cpi.hpp"
#include "support/libvirt_lists.hpp"

namespace cpi::testing::e2e {

constexpr std::uint64_t k_mib = 1024ULL * 1024ULL;
constexpr auto k_boot_timeout = std::chrono::seconds(180);  // TCG boot: 4-7 s; busy hosts more
constexpr auto k_tick_timeout = std::chrono::seconds(60);   // the guest ticks every 2 s
constexpr const char* k_mbus = "nats://nats:e2e-nats-secret@10.244.0.1:4222";

using Clock = std::chrono::steady_clock;
inline double since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

class E2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!env().unavailable().empty()) GTEST_SKIP() << env().unavailable();
    m_prefix = env().prefix() + random_hex(4) + "-";
    m_config = env().root() / (m_prefix + "cpi.json");
    nlohmann::json config{{"libvirt",
                           {{"uri", k_uri},
                            {"storage_pool", env().pool_name()},
                            {"store_dir", (env().root() / "pool").string()},
                            {"network", env().network_name()},
                            {"domain_type", env().domain_type()},
                            {"name_prefix", m_prefix}}},
                          {"agent", {{"mbus", k_mbus}, {"ntp", {"10.244.0.3"}}}},
                          {"log_level", "debug"}};
    std::ofstream{m_config} << config.dump(2);
  }

  void TearDown() override {
    if (m_prefix.empty()) return;
    for (const auto& what : env().remove_objects(m_prefix)) {
      std::printf("[e2e] left by the test, removed: %s\n", what.c_str());
    }
  }

  // Calls the CPI like the director: returns `result`; throws (failing the test) when the
  // process or envelope is wrong or `error` is set.
  nlohmann::json cpi(const std::string& method, const nlohmann::json& arguments,
                     int api_version = 2, const nlohmann::json& vm_context = nullptr) {
    nlohmann::json context{{"director_uuid", "e2e-director"}, {"request_id", "cpi-424242"}};
    if (!vm_context.is_null()) context["vm"] = vm_context;
    const auto request = cpi_request(method, arguments, context, api_version);
    const auto run = run_process(CPI_BINARY, {"--config", m_config.string()}, request,
                                 director_env((env().root() / "tmp").string()));
    std::printf("[cpi] %-16s api %d  %6.2f s\n", method.c_str(), api_version, run.seconds);
    std::fflush(stdout);
    m_last_seconds = run.seconds;
    const auto response = parse_cpi_response(run);
    if (!response["error"].is_null()) {
      throw std::runtime_error(method + " failed: " + response["error"].dump() + "\n--- stderr:\n" +
                               run.err);
    }
    return response["result"];
  }
  double last_call_seconds() const { return m_last_seconds; }

  // --- libvirt, read-only
  // The daemon and pool the test's CPI config names (a private daemon's in private_host.hpp).
  virtual virConnect& conn() { return env().conn(); }
  virtual std::string pool_name() const { return env().pool_name(); }

  std::string domain_name(const std::string& vm_cid) const { return m_prefix + vm_cid; }
  std::string volume_name(const std::string& cid) const { return m_prefix + cid; }

  std::optional<virt::Domain> find_domain(const std::string& vm_cid) {
    virt::Domain d{virDomainLookupByName(&conn(), domain_name(vm_cid).c_str())};
    virResetLastError();
    if (!d) return std::nullopt;
    return d;
  }

  // The domain XML, parsed (live, or the persistent definition).
  void domain_xml(const std::string& vm_cid, pugi::xml_document& doc, bool inactive = false) {
    auto d = find_domain(vm_cid);
    if (!d) throw std::runtime_error("no domain " + domain_name(vm_cid));
    virt::OwnedCString text{virDomainGetXMLDesc(d->get(), inactive ? VIR_DOMAIN_XML_INACTIVE : 0)};
    if (!text || !doc.load_string(text.get())) throw std::runtime_error("unreadable domain XML");
  }

  bool domain_active(const std::string& vm_cid) {
    auto d = find_domain(vm_cid);
    return d && virDomainIsActive(d->get()) == 1;
  }

  // <serial><log file=...> of the domain: the guest's console log.
  std::string console_log(const std::string& vm_cid) {
    pugi::xml_document doc;
    domain_xml(vm_cid, doc);
    const std::string file =
        doc.select_node("/domain/devices/serial/log").node().attribute("file").value();
    if (file.empty()) throw std::runtime_error("domain has no serial console log file");
    return file;
  }

  std::vector<std::string> xml_values(const std::string& vm_cid, const char* xpath,
                                      bool inactive = false) {
    pugi::xml_document doc;
    domain_xml(vm_cid, doc, inactive);
    std::vector<std::string> out;
    for (const auto& n : doc.select_nodes(xpath)) out.emplace_back(n.attribute().value());
    return out;
  }
  std::vector<std::string> macs(const std::string& vm_cid) {
    return xml_values(vm_cid, "/domain/devices/interface/mac/@address");
  }
  std::vector<std::string> disk_serials(const std::string& vm_cid, bool inactive) {
    pugi::xml_document doc;
    domain_xml(vm_cid, doc, inactive);
    std::vector<std::string> out;
    for (const auto& n : doc.select_nodes("/domain/devices/disk/serial")) {
      out.emplace_back(n.node().child_value());
    }
    return out;
  }

  // IPv6 off on the domain's taps (created under an Ipv6Guard; checked and forced here).
  void expect_silent_taps(const std::string& vm_cid) {
    for (const auto& tap : xml_values(vm_cid, "/domain/devices/interface/target/@dev")) {
      EXPECT_TRUE(Ipv6Guard::disable_on(tap)) << "IPv6 on tap " << tap;
    }
  }

  std::optional<virt::Volume> find_volume(const std::string& name) {
    virt::Pool pool{virStoragePoolLookupByName(&conn(), pool_name().c_str())};
    if (!pool) throw std::runtime_error("pool " + pool_name() + " is gone");
    virStoragePoolRefresh(pool.get(), 0);
    virt::Volume v{virStorageVolLookupByName(pool.get(), name.c_str())};
    virResetLastError();
    if (!v) return std::nullopt;
    return v;
  }
  bool volume_exists(const std::string& name) { return find_volume(name).has_value(); }
  std::uint64_t volume_capacity(const std::string& name) {
    auto v = find_volume(name);
    virStorageVolInfo info{};
    if (!v || virStorageVolGetInfo(v->get(), &info) != 0) {
      throw std::runtime_error("no volume " + name);
    }
    return info.capacity;
  }

  // Every domain and volume of this test still in libvirt.
  std::vector<std::string> leftovers() {
    std::vector<std::string> out;
    for (auto& d : all_domains(conn())) {
      const std::string name = virDomainGetName(d.get());
      if (name.rfind(m_prefix, 0) == 0) out.push_back("domain " + name);
    }
    virt::Pool pool{virStoragePoolLookupByName(&conn(), pool_name().c_str())};
    if (!pool) return out;
    virStoragePoolRefresh(pool.get(), 0);
    for (auto& vol : all_volumes(*pool)) {
      const std::string name = virStorageVolGetName(vol.get());
      if (name.rfind(m_prefix, 0) == 0) out.push_back("volume " + name);
    }
    return out;
  }

  // --- the guest
  // Waits for boot number `index` (0-based) to finish its report; throws with the log's tail.
  GuestBoot wait_report(const std::string& log, std::size_t index) {
    auto [boots, ok] = wait_for_console(
        log, k_boot_timeout, [&](const auto& b) { return b.size() > index && b[index].ended; });
    if (!ok) {
      throw std::runtime_error("no complete report of boot " + std::to_string(index + 1) + " in " +
                               log + " after " + std::to_string(k_boot_timeout.count()) +
                               " s; log tail:\n" + console_tail(log));
    }
    return boots[index];
  }

  // Waits for a tick of the current boot numbered above `after` whose block devices satisfy
  // `pred`; throws with the last ticks when none comes.
  GuestTick wait_tick(const std::string& log, int after,
                      const std::function<bool(const GuestTick&)>& pred) {
    GuestTick found;
    auto [boots, ok] = wait_for_console(log, k_tick_timeout, [&](const auto& b) {
      if (b.empty()) return false;
      for (const auto& t : b.back().ticks) {
        if (t.number > after && pred(t)) {
          found = t;
          return true;
        }
      }
      return false;
    });
    if (!ok) {
      throw std::runtime_error("no matching tick after tick " + std::to_string(after) + " in " +
                               log + "; log tail:\n" + console_tail(log, 8));
    }
    return found;
  }

  // The number of the last tick of the current boot (0 before the first).
  int last_tick(const std::string& log) {
    const auto boots = parse_console(read_whole_file(log));
    return boots.empty() || boots.back().ticks.empty() ? 0 : boots.back().ticks.back().number;
  }

  void phase(const std::string& name, double seconds) { env().record(name, seconds); }

  std::string m_prefix;
  std::filesystem::path m_config;
  double m_last_seconds = 0;
};

inline bool tick_has(const GuestTick& tick, const std::string& serial, std::uint64_t size = 0) {
  for (const auto& b : tick.blocks) {
    if (b.serial == serial && (size == 0 || b.size == size)) return true;
  }
  return false;
}

}  // namespace cpi::testing::e2e
