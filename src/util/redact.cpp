#include "cpi/util/redact.hpp"

#include <algorithm>
#include <regex>

namespace cpi::util {
namespace {

std::string redact_url_passwords(const std::string& text) {
  // scheme://user:password@ -> scheme://user:***@ ; the password may hold anything but '@' and
  // white space (BOSH generates alphanumeric ones).
  static const std::regex k_url_password{R"(([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s"']*:)[^@\s"']+@)"};
  return std::regex_replace(text, k_url_password, "$1***@");
}

std::string redact_private_keys(const std::string& text) {
  static const std::regex k_private_key{
      R"(-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|$))"};
  return std::regex_replace(text, k_private_key, "[redacted private key]");
}

void replace_all(std::string& text, const std::string& needle) {
  std::size_t pos = 0;
  while ((pos = text.find(needle, pos)) != std::string::npos) {
    text.replace(pos, needle.size(), "***");
    pos += 3;
  }
}

}  // namespace

void Redactor::add_secret(std::string_view value) {
  if (value.size() < 4) {
    return;
  }
  std::string secret{value};
  if (std::find(m_secrets.begin(), m_secrets.end(), secret) == m_secrets.end()) {
    m_secrets.push_back(std::move(secret));
    // Longest first, so a secret that contains another one is masked whole.
    std::sort(m_secrets.begin(), m_secrets.end(),
              [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  }
}

std::string Redactor::redact(std::string_view text) const {
  std::string out{text};
  for (const auto& secret : m_secrets) {
    replace_all(out, secret);
  }
  if (out.find("://") != std::string::npos) {
    out = redact_url_passwords(out);
  }
  if (out.find("PRIVATE KEY-----") != std::string::npos) {
    out = redact_private_keys(out);
  }
  return out;
}

Redactor& redactor() {
  static Redactor instance;
  return instance;
}

std::string redact(std::string_view text) { return redactor().redact(text); }

}  // namespace cpi::util
