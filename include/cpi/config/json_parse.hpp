#pragma once
// Parsing untrusted JSON text into a document that is safe to copy, walk and destroy.
//
// nlohmann's parser is iterative, but copying a document, comparing it and several of our own
// walks recurse once per level: 30,000 nested arrays overflow the stack. The bounded parser
// refuses any document nested deeper than k_max_json_depth while it is being read (a SAX
// handler counts the levels), so such a document is never built.
//
// It also survives numbers that do not fit a double (1e400): nlohmann stops at them with an
// out_of_range error. The parser notes where each one was (its path and text), puts a null in
// its place and reads on, so the caller can name the field in its message.

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace cpi::config {

// Deepest nesting accepted: the document itself is level 1, so {"arguments":[[...]]} with 510
// inner arrays is the deepest request. Real requests nest fewer than 20 levels.
constexpr std::size_t k_max_json_depth = 512;

// A number that does not fit a double, replaced by null in the document.
struct OutOfRangeNumber {
  std::vector<std::string> path;  // object keys and array indices from the root, as text
  std::string text;               // the number as written (possibly cut to 40 characters)
};

struct BoundedJson {
  nlohmann::json document;
  std::vector<OutOfRangeNumber> out_of_range;  // in document order
};

// Parses `input`. Throws CpiError "<what>: ..." for invalid JSON, for nesting deeper than
// k_max_json_depth (naming the byte offset) and for more than k_max_out_of_range numbers that
// do not fit a double.
constexpr std::size_t k_max_out_of_range = 8;
BoundedJson parse_bounded_json(std::string_view input, const std::string& what);

// "arguments[2].ram" for messages.
std::string json_path_text(const std::vector<std::string>& path);

}  // namespace cpi::config
