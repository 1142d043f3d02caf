#include "cpi/actions/call.hpp"

#include <cmath>

#include "cpi/config/fields.hpp"
#include "cpi/config/json_parse.hpp"
#include "cpi/errors.hpp"

namespace cpi::actions {

using config::json_type_name;

Call::Call(const CallInput& input, config::Config config, CloudFactory factory)
    : m_input(input), m_config(std::move(config)), m_factory(std::move(factory)) {
  m_config.libvirt = config::with_context(m_config.libvirt, input.context, m_config.base_dir);
}

cloud::LibvirtCloud& Call::cloud() {
  if (!m_cloud) {
    if (!m_factory) {
      throw CpiError(method() + ": no cloud is available in this process");
    }
    m_cloud = m_factory(m_config);
  }
  return *m_cloud;
}

void Call::bad_arg(std::size_t index, const char* name, const std::string& problem) const {
  throw CloudError(method() + ": argument " + std::to_string(index) + " (" + name + "): " +
                   problem);
}

const nlohmann::json* Call::arg(std::size_t index, const char* name, bool required) const {
  if (index >= m_input.arguments.size()) {
    if (required) {
      bad_arg(index, name,
              "missing (got " + std::to_string(m_input.arguments.size()) + " arguments)");
    }
    return nullptr;
  }
  for (const auto& number : m_input.out_of_range_arguments) {
    if (number.path[1] == std::to_string(index)) {
      const std::string where =
          number.path.size() > 2 ? " at " + config::json_path_text(number.path) : "";
      throw CpiError(method() + ": argument " + std::to_string(index) + " (" + name +
                     "): number '" + number.text + "'" + where + " is out of range");
    }
  }
  const auto& value = m_input.arguments[index];
  return value.is_null() ? nullptr : &value;
}

std::string Call::string_arg(std::size_t index, const char* name) const {
  const auto* value = arg(index, name, true);
  if (value == nullptr || !value->is_string()) {
    bad_arg(index, name, "expected a string, got " + (value ? json_type_name(*value) : "null"));
  }
  return value->get<std::string>();
}

std::string Call::cid_arg(std::size_t index, const char* name) const {
  auto text = string_arg(index, name);
  if (text.empty()) {
    bad_arg(index, name, "expected a non-empty CID");
  }
  return text;
}

std::optional<std::string> Call::optional_cid_arg(std::size_t index, const char* name) const {
  const auto* value = arg(index, name, false);
  if (value == nullptr) {
    return std::nullopt;
  }
  if (!value->is_string()) {
    bad_arg(index, name, "expected a string or null, got " + json_type_name(*value));
  }
  auto text = value->get<std::string>();
  if (text.empty()) {
    return std::nullopt;
  }
  return text;
}

std::int64_t Call::int_arg(std::size_t index, const char* name, std::int64_t min) const {
  const auto* value = arg(index, name, true);
  if (value == nullptr) {
    bad_arg(index, name, "expected an integer, got null");
  }
  auto out_of_range = [&](const std::string& text) {
    throw CpiError(method() + ": argument " + std::to_string(index) + " (" + name + "): number " +
                   text + " is out of range for an integer");
  };
  std::int64_t number = 0;
  if (value->is_number_unsigned()) {
    if (value->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) {
      out_of_range(value->dump());
    }
    number = value->get<std::int64_t>();
  } else if (value->is_number_integer()) {
    number = value->get<std::int64_t>();
  } else if (value->is_number_float() && (!std::isfinite(value->get<double>()) ||
                                          std::fabs(value->get<double>()) >= 9.0e15)) {
    out_of_range(value->dump());
  } else if (value->is_number_float() && std::floor(value->get<double>()) == value->get<double>()) {
    number = static_cast<std::int64_t>(value->get<double>());
  } else {
    bad_arg(index, name, "expected an integer, got " + json_type_name(*value));
  }
  if (number < min) {
    bad_arg(index, name, "must be at least " + std::to_string(min) + ", got " +
                             std::to_string(number));
  }
  return number;
}

nlohmann::json Call::object_arg(std::size_t index, const char* name) const {
  const auto* value = arg(index, name, false);
  if (value == nullptr) {
    return nlohmann::json::object();
  }
  if (!value->is_object()) {
    bad_arg(index, name, "expected an object, got " + json_type_name(*value));
  }
  return *value;
}

std::vector<std::string> Call::string_list_arg(std::size_t index, const char* name) const {
  const auto* value = arg(index, name, false);
  std::vector<std::string> out;
  if (value == nullptr) {
    return out;
  }
  if (!value->is_array()) {
    bad_arg(index, name, "expected an array of strings, got " + json_type_name(*value));
  }
  for (const auto& item : *value) {
    if (!item.is_string() || item.get<std::string>().empty()) {
      bad_arg(index, name, "expected an array of non-empty strings, found " + json_type_name(item));
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

}  // namespace cpi::actions
