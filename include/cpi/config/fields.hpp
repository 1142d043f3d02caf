#pragma once
// Typed, strict reading of a JSON object: every error names the field's full path, and
// finish() rejects keys nobody asked for, listing the accepted ones. Used for the config file,
// request context overrides and every cloud_properties object. Values are never quoted in
// messages (they may be secrets); only their JSON type is.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace cpi::config {

class FieldReader {
 public:
  // `object` must outlive the reader. `path` prefixes field names in messages ("libvirt",
  // "cloud_properties"); `what` opens every message ("config file '/x/cpi.json'").
  // A null `object` reads as {}; any other non-object throws CpiError.
  FieldReader(const nlohmann::json& object, std::string what, std::string path);

  // Strings (and string_list items) holding a NUL character are refused: every consumer hands
  // them to C APIs, which would cut them there.
  std::optional<std::string> string(const std::string& key);
  std::optional<bool> boolean(const std::string& key);
  std::optional<std::int64_t> integer(const std::string& key, std::int64_t min, std::int64_t max);
  // One of `choices`; the message lists them.
  std::optional<std::string> choice(const std::string& key, const std::vector<std::string>& choices);
  std::optional<std::vector<std::string>> string_list(const std::string& key);
  // The raw value, any type; marks the key as known.
  const nlohmann::json* any(const std::string& key);
  // A nested object reader (nullopt when absent or null).
  std::optional<FieldReader> object(const std::string& key);
  // Marks a key as accepted without reading it.
  void accept(const std::string& key) { m_known.insert(key); }

  // Throws CpiError naming the first key that was never read or accepted.
  void finish() const;

  std::string field(const std::string& key) const;  // "libvirt.port"
  [[noreturn]] void fail(const std::string& key, const std::string& problem) const;

 private:
  const nlohmann::json* find(const std::string& key);

  const nlohmann::json* m_object;
  std::string m_what;
  std::string m_path;
  std::set<std::string> m_known;
};

// "a string", "an integer", "null", ... for messages.
std::string json_type_name(const nlohmann::json& value);

}  // namespace cpi::config
