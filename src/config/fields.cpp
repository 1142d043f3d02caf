#include "cpi/config/fields.hpp"

#include <cmath>
#include <limits>

#include "cpi/errors.hpp"

namespace cpi::config {
namespace {

const nlohmann::json& empty_object() {
  static const nlohmann::json k_empty = nlohmann::json::object();
  return k_empty;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    out += (out.empty() ? "" : ", ") + item;
  }
  return out;
}

}  // namespace

std::string json_type_name(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
      return "an integer";
    case nlohmann::json::value_t::number_float:
      return "a number";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::array:
      return "an array";
    case nlohmann::json::value_t::object:
      return "an object";
    default:
      return "an unsupported value";
  }
}

FieldReader::FieldReader(const nlohmann::json& object, std::string what, std::string path)
    : m_object(&object), m_what(std::move(what)), m_path(std::move(path)) {
  if (object.is_null()) {
    m_object = &empty_object();
  } else if (!object.is_object()) {
    throw CpiError(m_what + ": " + (m_path.empty() ? std::string{"the document"} : m_path) +
                   ": expected an object, got " + json_type_name(object));
  }
}

std::string FieldReader::field(const std::string& key) const {
  return m_path.empty() ? key : m_path + "." + key;
}

void FieldReader::fail(const std::string& key, const std::string& problem) const {
  throw CpiError(m_what + ": " + field(key) + ": " + problem);
}

const nlohmann::json* FieldReader::find(const std::string& key) {
  m_known.insert(key);
  auto it = m_object->find(key);
  if (it == m_object->end() || it->is_null()) {
    return nullptr;
  }
  return &*it;
}

std::optional<std::string> FieldReader::string(const std::string& key) {
  const auto* value = find(key);
  if (value == nullptr) {
    return std::nullopt;
  }
  if (!value->is_string()) {
    fail(key, "expected a string, got " + json_type_name(*value));
  }
  if (value->get_ref<const std::string&>().find('\0') != std::string::npos) {
    // C APIs (libvirt URIs, paths, names) would silently cut the value at the NUL.
    fail(key, "must not contain a NUL character (\\u0000)");
  }
  return value->get<std::string>();
}

std::optional<bool> FieldReader::boolean(const std::string& key) {
  const auto* value = find(key);
  if (value == nullptr) {
    return std::nullopt;
  }
  if (!value->is_boolean()) {
    fail(key, "expected true or false, got " + json_type_name(*value));
  }
  return value->get<bool>();
}

std::optional<std::int64_t> FieldReader::integer(const std::string& key, std::int64_t min,
                                                 std::int64_t max) {
  const auto* value = find(key);
  if (value == nullptr) {
    return std::nullopt;
  }
  std::int64_t number = 0;
  if (value->is_number_integer()) {
    if (value->is_number_unsigned() &&
        value->get<std::uint64_t>() >
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      fail(key, "must be at most " + std::to_string(max));
    }
    number = value->get<std::int64_t>();
  } else if (value->is_number_float()) {
    const double d = value->get<double>();
    if (!std::isfinite(d) || std::floor(d) != d || std::fabs(d) > 9.0e15) {
      fail(key, "expected a whole number");
    }
    number = static_cast<std::int64_t>(d);
  } else {
    fail(key, "expected an integer, got " + json_type_name(*value));
  }
  if (number < min || number > max) {
    fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " +
                  std::to_string(number));
  }
  return number;
}

std::optional<std::string> FieldReader::choice(const std::string& key,
                                               const std::vector<std::string>& choices) {
  auto value = string(key);
  if (!value) {
    return std::nullopt;
  }
  for (const auto& c : choices) {
    if (c == *value) {
      return value;
    }
  }
  fail(key, "unknown value '" + *value + "' (accepted: " + join(choices) + ")");
}

std::optional<std::vector<std::string>> FieldReader::string_list(const std::string& key) {
  const auto* value = find(key);
  if (value == nullptr) {
    return std::nullopt;
  }
  if (!value->is_array()) {
    fail(key, "expected an array of strings, got " + json_type_name(*value));
  }
  std::vector<std::string> out;
  for (std::size_t i = 0; i < value->size(); ++i) {
    const auto& item = (*value)[i];
    if (!item.is_string()) {
      fail(key + "[" + std::to_string(i) + "]", "expected a string, got " + json_type_name(item));
    }
    if (item.get_ref<const std::string&>().find('\0') != std::string::npos) {
      fail(key + "[" + std::to_string(i) + "]", "must not contain a NUL character (\\u0000)");
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

const nlohmann::json* FieldReader::any(const std::string& key) { return find(key); }

std::optional<FieldReader> FieldReader::object(const std::string& key) {
  const auto* value = find(key);
  if (value == nullptr) {
    return std::nullopt;
  }
  if (!value->is_object()) {
    fail(key, "expected an object, got " + json_type_name(*value));
  }
  return FieldReader(*value, m_what, field(key));
}

void FieldReader::finish() const {
  for (const auto& [key, value] : m_object->items()) {
    if (m_known.count(key) == 0) {
      std::vector<std::string> accepted(m_known.begin(), m_known.end());
      fail(key, "unknown key (accepted: " + join(accepted) + ")");
    }
  }
}

}  // namespace cpi::config
