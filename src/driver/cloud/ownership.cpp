// What this CPI owns: CIDs checked by the naming grammar and domains carrying our metadata
// namespace (the pool records of disks and snapshots outside the configured pool: storage.cpp).

#include <spdlog/spdlog.h>

#include <pugixml.hpp>

#include "cpi/cloud/libvirt_cloud.hpp"
#include "cpi/errors.hpp"
#include "cpi/xml/domain_xml.hpp"
#include "cpi/xml/xml_util.hpp"

namespace cpi::cloud {

bool LibvirtCloud::check_cid(const char* method, NameKind kind, const std::string& cid) const {
  const auto parsed = parse_unprefixed(cid);
  if (!parsed) return false;
  if (parsed->kind == kind && parsed->cid == cid) return true;
  throw CpiError(std::string{method} + ": " + quote_text(cid) + " is " + describe(*parsed) +
                 ", not a " + kind_name(kind) + " CID; nothing was touched");
}

bool LibvirtCloud::deletable(const char* method, NameKind kind, const std::string& cid) const {
  if (check_cid(method, kind, cid)) return true;
  spdlog::info("{}: {} is no {} CID of this CPI: nothing to delete", method, quote_text(cid),
               kind_name(kind));
  return false;
}

namespace {

[[noreturn]] void refuse_foreign(const std::string& name) {
  throw CpiError("domain '" + name + "' exists but carries no metadata in " + xml::k_metadata_ns +
                 ": this CPI did not create it and will not touch it (rename it, or change "
                 "libvirt.name_prefix)");
}

}  // namespace

std::optional<virt::Domain> LibvirtCloud::find_our_domain(const VmCid& cid, nlohmann::json* facts) {
  const std::string name = m_names.domain(cid);
  auto domain = m_hv.find_domain(name);
  if (!domain) return std::nullopt;
  const auto metadata = m_hv.domain_metadata(**domain, xml::k_metadata_ns);
  if (!metadata) refuse_foreign(name);
  if (facts != nullptr) *facts = metadata_facts(*metadata);
  return domain;
}

std::optional<virt::Domain> LibvirtCloud::find_our_domain(const VmCid& cid,
                                                          xml::DomainFacts& definition) {
  const std::string name = m_names.domain(cid);
  auto domain = m_hv.find_domain(name);
  if (!domain) return std::nullopt;
  definition = xml::read_domain_xml(m_hv.domain_xml(**domain, true));
  if (!definition.ours) refuse_foreign(name);
  return domain;
}

nlohmann::json LibvirtCloud::facts_json(const std::string& text) {
  auto parsed = nlohmann::json::parse(text, nullptr, false);
  return parsed.is_object() ? parsed : nlohmann::json::object();
}

std::string LibvirtCloud::facts_xml(const nlohmann::json& facts) {
  pugi::xml_document doc;
  auto root = xml::child(doc, "vm");
  root.append_attribute("xmlns") = xml::k_metadata_ns;
  xml::child(root, "facts").text() =
      facts.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str();
  return xml::serialize(doc);
}

nlohmann::json LibvirtCloud::metadata_facts(const std::string& metadata_xml) {
  pugi::xml_document doc;
  xml::parse(doc, metadata_xml, "vm metadata");
  return facts_json(doc.document_element().child_value("facts"));
}

virt::Domain LibvirtCloud::require_domain(const VmCid& cid, nlohmann::json* facts) {
  if (!check_cid("vm lookup", NameKind::vm, cid.value)) {
    throw VmNotFound(quote_text(cid.value) + " is no vm CID of this CPI");
  }
  nlohmann::json read;  // the facts the ownership check reads, kept when the caller wants none
  nlohmann::json& seen = facts != nullptr ? *facts : read;
  auto domain = find_our_domain(cid, &seen);
  if (!domain) {
    throw VmNotFound("vm '" + cid.value + "' not found on " + m_hv.uri());
  }
  if (finish_snapshot_on(cid, seen) && facts != nullptr) *facts = vm_facts(**domain);
  return std::move(*domain);
}

virt::Domain LibvirtCloud::require_domain(const VmCid& cid, xml::DomainFacts& definition) {
  if (!check_cid("vm lookup", NameKind::vm, cid.value)) {
    throw VmNotFound(quote_text(cid.value) + " is no vm CID of this CPI");
  }
  auto domain = find_our_domain(cid, definition);
  if (!domain) {
    throw VmNotFound("vm '" + cid.value + "' not found on " + m_hv.uri());
  }
  if (finish_snapshot_on(cid, facts_json(definition.facts))) {
    definition = xml::read_domain_xml(m_hv.domain_xml(**domain, true));
  }
  return std::move(*domain);
}

// A snapshot_disk killed on this VM (its facts, as read, name one): its copy job ended, the VM
// resumed if it was paused for it. A failure here leaves it for the next call. True when it was
// tried, so the caller reads again what it read before.
bool LibvirtCloud::finish_snapshot_on(const VmCid& cid, const nlohmann::json& facts) {
  if (!facts.contains("snapshotting")) return false;
  try {
    finish_interrupted_snapshot(std::nullopt, cid);
  } catch (const std::exception& e) {
    spdlog::warn("finishing an interrupted snapshot on vm {}: {}", cid.value, e.what());
  }
  return true;
}

nlohmann::json LibvirtCloud::vm_facts(virDomain& domain) {
  auto text = m_hv.domain_metadata(domain, xml::k_metadata_ns);
  if (!text) return nlohmann::json::object();
  return metadata_facts(*text);
}

void LibvirtCloud::write_vm_facts(virDomain& domain, const nlohmann::json& facts) {
  m_hv.set_domain_metadata(domain, facts_xml(facts), xml::k_metadata_key, xml::k_metadata_ns);
}

// Errors that a retry may get past: the connection or the daemon hiccuped.
bool transient_code(int code) noexcept {
  return code == VIR_ERR_RPC || code == VIR_ERR_OPERATION_TIMEOUT || code == VIR_ERR_NO_CONNECT ||
         code == VIR_ERR_SYSTEM_ERROR || code == VIR_ERR_AGENT_UNRESPONSIVE ||
         code == VIR_ERR_RESOURCE_BUSY;
}

}  // namespace cpi::cloud
