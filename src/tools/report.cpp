#include "cpi/tools/report.hpp"

#include <algorithm>
#include <sstream>

namespace cpi::tools {
namespace {

constexpr std::size_t k_min_name_width = 12;

std::string upper_verdict(Verdict verdict) {
  switch (verdict) {
    case Verdict::ok:
      return "ok";
    case Verdict::warn:
      return "WARN";
    case Verdict::fail:
      return "FAIL";
  }
  return "?";
}

}  // namespace

const char* verdict_name(Verdict verdict) {
  switch (verdict) {
    case Verdict::ok:
      return "ok";
    case Verdict::warn:
      return "warn";
    case Verdict::fail:
      return "fail";
  }
  return "?";
}

void DoctorReport::ok(std::string name, std::string detail, std::string hint) {
  add({std::move(name), Verdict::ok, std::move(detail), std::move(hint)});
}

void DoctorReport::warn(std::string name, std::string detail, std::string hint) {
  add({std::move(name), Verdict::warn, std::move(detail), std::move(hint)});
}

void DoctorReport::fail(std::string name, std::string detail, std::string hint) {
  add({std::move(name), Verdict::fail, std::move(detail), std::move(hint)});
}

const Check* DoctorReport::find(const std::string& name) const {
  const auto it = std::find_if(m_checks.begin(), m_checks.end(),
                               [&](const Check& check) { return check.name == name; });
  return it == m_checks.end() ? nullptr : &*it;
}

bool DoctorReport::failed() const {
  return std::any_of(m_checks.begin(), m_checks.end(),
                     [](const Check& check) { return check.verdict == Verdict::fail; });
}

nlohmann::json DoctorReport::to_json() const {
  Verdict worst = Verdict::ok;
  nlohmann::json checks = nlohmann::json::array();
  for (const auto& check : m_checks) {
    worst = std::max(worst, check.verdict);
    checks.push_back({{"name", check.name},
                      {"verdict", verdict_name(check.verdict)},
                      {"detail", check.detail},
                      {"hint", check.hint}});
  }
  return {{"verdict", verdict_name(worst)}, {"checks", checks}};
}

std::string DoctorReport::table() const {
  std::size_t width = k_min_name_width;
  for (const auto& check : m_checks) {
    width = std::max(width, check.name.size());
  }
  std::ostringstream out;
  int counts[3] = {0, 0, 0};
  for (const auto& check : m_checks) {
    ++counts[static_cast<int>(check.verdict)];
    std::string verdict = upper_verdict(check.verdict);
    verdict.resize(6, ' ');
    std::string name = check.name;
    name.resize(width + 2, ' ');
    out << verdict << name << check.detail << '\n';
    if (!check.hint.empty() && check.verdict != Verdict::ok) {
      out << std::string(6 + width + 2, ' ') << "hint: " << check.hint << '\n';
    }
  }
  out << "\n" << counts[0] << " ok, " << counts[1] << " warn, " << counts[2] << " fail";
  out << (failed() ? ": the CPI will not work until the failures are fixed\n" : "\n");
  return out.str();
}

std::string version_string(std::uint64_t encoded) {
  return std::to_string(encoded / 1000000) + "." + std::to_string(encoded / 1000 % 1000) + "." +
         std::to_string(encoded % 1000);
}

std::pair<std::string, std::string> split_hint(const std::string& message) {
  const auto at = message.rfind("; check ");
  if (at == std::string::npos) {
    return {message, ""};
  }
  return {message.substr(0, at), message.substr(at + 2)};
}

}  // namespace cpi::tools
