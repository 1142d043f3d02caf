#pragma once
// Secret scrubbing for every text that leaves the process (log lines, error messages).

#include <string>
#include <string_view>
#include <vector>

namespace cpi::util {

// Replaces in `text`:
//  - the password of any `scheme://user:password@host` URL with `***`,
//  - every PEM block that holds a private key with `[redacted private key]`,
//  - every occurrence of a registered secret value with `***`.
class Redactor {
 public:
  // Values of fewer than 4 characters are ignored (they would mask ordinary words).
  void add_secret(std::string_view value);
  std::string redact(std::string_view text) const;

 private:
  std::vector<std::string> m_secrets;
};

// The process-wide redactor used by the log sink and the response writer.
Redactor& redactor();

// Shorthand for redactor().redact(text).
std::string redact(std::string_view text);

}  // namespace cpi::util
