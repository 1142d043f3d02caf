#pragma once
// The result of `cpi doctor`: one line per check with a verdict and, when it is not ok, a hint
// that says what to do. Pure data and formatting (no libvirt).

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace cpi::tools {

enum class Verdict { ok, warn, fail };

// "ok" | "warn" | "fail"
const char* verdict_name(Verdict verdict);

struct Check {
  std::string name;  // short and stable, for --json consumers: "config", "storage_pool" ...
  Verdict verdict = Verdict::ok;
  std::string detail;  // what was found
  std::string hint;    // what to do about it; may be empty when ok
};

class DoctorReport {
 public:
  void add(Check check) { m_checks.push_back(std::move(check)); }
  void ok(std::string name, std::string detail, std::string hint = {});
  void warn(std::string name, std::string detail, std::string hint);
  void fail(std::string name, std::string detail, std::string hint);

  const std::vector<Check>& checks() const { return m_checks; }
  // The check named `name`; nullptr when none ran.
  const Check* find(const std::string& name) const;
  bool failed() const;  // any verdict fail

  // {"verdict": worst, "checks": [{"name","verdict","detail","hint"}...]}
  nlohmann::json to_json() const;
  // An aligned table, hints on their own line under the check, and a one-line summary.
  std::string table() const;

 private:
  std::vector<Check> m_checks;
};

// "9.0.0" from libvirt's encoding (major * 1000000 + minor * 1000 + micro).
std::string version_string(std::uint64_t encoded);

// Splits a CloudError message of the form "<what>: <cause>; check ..." into the part before
// the last "; check " and the hint after it ("check ..."). Without one, the hint is empty.
std::pair<std::string, std::string> split_hint(const std::string& message);

}  // namespace cpi::tools
