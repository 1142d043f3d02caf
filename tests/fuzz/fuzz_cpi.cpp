// libFuzzer target over the request envelope, the handlers' argument decoding, cloud_properties
// and config parsing, the redactor and the nesting limit. The first byte picks the mode (its value % 4):
//   0  the rest is one request, given to rpc::dispatch
//   1  the rest is a config document (and a request context), read by the bounded parser as the
//      CPI reads its config file (so documents past the depth limit are refused, not walked)
//   2  the redactor: lines of the rest are secrets, the last line the text; no secret may
//      survive in the output
//   3  a big request from a small seed: bytes 1-2 (little-endian) x 16 are a repeat count, the
//      rest is `prefix \x01 unit \x01 suffix`; the request is prefix + unit x count + suffix,
//      with '#' in the unit replaced by the repetition's index (1 MiB names, 1,000,000 nested
//      arrays, 100,000 distinct secrets), given to rpc::dispatch
// A crash, a hang, or a response that is not one JSON object with result/error/log is a failure.
// The process-wide redactor is emptied after every input: dispatch registers each request's
// secrets there (one request per process in the CPI), and over millions of inputs they would
// grow without bound.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cpi/cloud/vm_props.hpp"
#include "cpi/config/config.hpp"
#include "cpi/config/json_parse.hpp"
#include "cpi/errors.hpp"
#include "cpi/rpc/dispatcher.hpp"
#include "cpi/util/log.hpp"
#include "cpi/util/redact.hpp"

namespace {

using nlohmann::json;

// The cloud_properties parsers LibvirtCloud runs before anything else, on the arguments of
// `request` where its handler would pass them (the dispatch itself runs without a cloud).
void validate_properties(std::string_view request) {
  cpi::config::BoundedJson parsed;
  try {
    parsed = cpi::config::parse_bounded_json(request, "fuzz request");
  } catch (const cpi::Error&) {
    return;
  } catch (const nlohmann::json::parse_error&) {
    return;
  }
  const json& doc = parsed.document;
  if (!doc.is_object()) return;
  const auto method = doc.find("method");
  const auto arguments = doc.find("arguments");
  if (method == doc.end() || !method->is_string() || arguments == doc.end() ||
      !arguments->is_array()) {
    return;
  }
  const auto object_at = [&](std::size_t i) {
    return i < arguments->size() && (*arguments)[i].is_object() ? (*arguments)[i] : json::object();
  };
  try {
    if (*method == "create_vm") {
      cpi::cloud::parse_vm_props(object_at(2));
      const json networks = object_at(3);  // items() does not keep a temporary alive
      for (const auto& [name, network] : networks.items()) {
        if (network.is_object()) {
          cpi::cloud::parse_network_props(name, network.value("cloud_properties", json()));
        }
      }
    } else if (*method == "create_disk") {
      cpi::cloud::parse_disk_props(object_at(1));
    } else if (*method == "create_stemcell") {
      cpi::cloud::parse_stemcell_props(object_at(1));
    }
  } catch (const cpi::Error&) {
    // Refused properties are the expected outcome for most documents.
  }
}

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

// The driver module's dispatch (both tables); a handler that gets as far as opening the cloud
// is refused there, after every argument was read.
void dispatch_and_check(std::string_view request) {
  cpi::rpc::DispatchOptions options;
  options.tables = {&cpi::actions::local_actions(), &cpi::actions::driver_actions()};
  options.cloud_factory =
      [](const cpi::config::Config&) -> std::shared_ptr<cpi::cloud::LibvirtCloud> {
    throw cpi::CloudError("no cloud while fuzzing");
  };
  check_response(cpi::rpc::dispatch(request, options));
  validate_properties(request);
}

// Mode 2. A secret without '*', '[' or ']' that is not part of the private-key placeholder
// can only reappear in the output if the redactor missed an occurrence.
void redact_and_check(std::string_view body) {
  std::vector<std::string> lines;
  std::size_t from = 0;
  for (std::size_t nl = body.find('\n'); nl != std::string_view::npos; nl = body.find('\n', from)) {
    lines.emplace_back(body.substr(from, nl - from));
    from = nl + 1;
  }
  const std::string_view text = body.substr(from);
  cpi::util::Redactor redactor;
  for (const auto& secret : lines) redactor.add_secret(secret);
  const std::string out = redactor.redact(text);
  for (const auto& secret : lines) {
    if (secret.size() < 4 || secret.find_first_of("*[]") != std::string::npos ||
        std::string_view{"redacted private key"}.find(secret) != std::string_view::npos) {
      continue;
    }
    if (out.find(secret) != std::string::npos) std::abort();  // a secret leaked
  }
}

// Mode 3.
void expand_and_dispatch(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return;
  const std::size_t count = (static_cast<std::size_t>(data[1]) |
                             static_cast<std::size_t>(data[2]) << 8U) * 16;
  const std::string_view seed{reinterpret_cast<const char*>(data + 3), size - 3};
  const auto first = seed.find('\x01');
  const auto second = first == std::string_view::npos ? first : seed.find('\x01', first + 1);
  if (second == std::string_view::npos) return;
  const auto unit = seed.substr(first + 1, second - first - 1);
  const auto hash = unit.find('#');
  std::string request{seed.substr(0, first)};
  request.reserve(request.size() + count * (unit.size() + 6) + (seed.size() - second));
  for (std::size_t i = 0; i < count; ++i) {
    if (hash == std::string_view::npos) {
      request.append(unit);
    } else {
      request.append(unit.substr(0, hash)).append(std::to_string(i)).append(unit.substr(hash + 1));
    }
  }
  request.append(seed.substr(second + 1));
  dispatch_and_check(request);
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
  if (data[0] % 4 == 0) {
    dispatch_and_check(body);
  } else if (data[0] % 4 == 2) {
    redact_and_check(body);
  } else if (data[0] % 4 == 3) {
    expand_and_dispatch(data, size);
  } else {
    cpi::config::BoundedJson parsed;
    bool read = false;
    try {
      parsed = cpi::config::parse_bounded_json(body, "fuzz config");
      read = true;
    } catch (const cpi::Error&) {  // too deep, too many numbers out of range
    } catch (const nlohmann::json::parse_error&) {  // no JSON: load_config says so (CpiError)
    }
    try {
      if (!read) throw cpi::CpiError("refused by the bounded parser");
      const auto config = cpi::config::parse_config(parsed.document, "/etc/cpi", "fuzz");
      cpi::config::with_context(config.libvirt, parsed.document, "/etc/cpi");
      cpi::config::register_secrets(config);
    } catch (const cpi::Error&) {
      // Rejected input is the expected outcome for most documents.
    }
  }
  cpi::util::redactor().clear();
  return 0;
}
