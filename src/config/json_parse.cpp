#include "cpi/config/json_parse.hpp"

#include "cpi/errors.hpp"

namespace cpi::config {
namespace {

using nlohmann::json;

// Builds the document like nlohmann's own DOM handler, refusing to open level
// k_max_json_depth + 1 and remembering where the parser stands, so an out-of-range number can
// be located.
class BoundedHandler {
 public:
  explicit BoundedHandler(json& root) : m_dom(root, true) {}

  bool null() { return value() && m_dom.null(); }
  bool boolean(bool v) { return value() && m_dom.boolean(v); }
  bool number_integer(json::number_integer_t v) { return value() && m_dom.number_integer(v); }
  bool number_unsigned(json::number_unsigned_t v) { return value() && m_dom.number_unsigned(v); }
  bool number_float(json::number_float_t v, const json::string_t& s) {
    return value() && m_dom.number_float(v, s);
  }
  bool string(json::string_t& v) { return value() && m_dom.string(v); }
  bool binary(json::binary_t& v) { return value() && m_dom.binary(v); }
  bool start_object(std::size_t n) { return open(false) && m_dom.start_object(n); }
  bool start_array(std::size_t n) { return open(true) && m_dom.start_array(n); }
  bool key(json::string_t& k) {
    m_frames.back().key = k;
    return m_dom.key(k);
  }
  bool end_object() {
    m_frames.pop_back();
    return m_dom.end_object();
  }
  bool end_array() {
    m_frames.pop_back();
    return m_dom.end_array();
  }

  template <class Exception>
  bool parse_error(std::size_t position, const std::string& token, const Exception& ex) {
    if (ex.id == 406) {  // a number that does not fit a double: recoverable
      m_overflow_at = position;
      m_overflow_token = token;
      return false;
    }
    throw ex;  // a syntax error, reported by the caller as before
  }

  bool too_deep() const { return m_too_deep; }
  bool overflowed() const { return !m_overflow_token.empty(); }
  std::size_t overflow_end() const { return m_overflow_at; }
  const std::string& overflow_token() const { return m_overflow_token; }

  // The path of the value being read when the parser stopped.
  std::vector<std::string> path() const {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < m_frames.size(); ++i) {
      const auto& frame = m_frames[i];
      if (!frame.array) {
        out.push_back(frame.key);
      } else {
        // An outer array's current element is the frame inside it; the innermost array is
        // about to get its next element.
        const std::size_t index = i + 1 < m_frames.size() ? frame.count - 1 : frame.count;
        out.push_back(std::to_string(index));
      }
    }
    return out;
  }

 private:
  struct Frame {
    bool array = false;
    std::size_t count = 0;  // elements started so far (arrays)
    std::string key;        // the current key (objects)
  };

  bool value() {
    if (!m_frames.empty() && m_frames.back().array) ++m_frames.back().count;
    return true;
  }
  bool open(bool array) {
    value();
    if (m_frames.size() >= k_max_json_depth) {
      m_too_deep = true;
      return false;
    }
    m_frames.push_back(Frame{array, 0, {}});
    return true;
  }

  nlohmann::detail::json_sax_dom_parser<json> m_dom;
  std::vector<Frame> m_frames;
  bool m_too_deep = false;
  std::size_t m_overflow_at = 0;
  std::string m_overflow_token;
};

}  // namespace

std::string json_path_text(const std::vector<std::string>& path) {
  std::string out;
  for (const auto& part : path) {
    const bool index = !part.empty() && part.find_first_not_of("0123456789") == std::string::npos;
    out += index ? "[" + part + "]" : (out.empty() ? "" : ".") + part;
  }
  return out;
}

BoundedJson parse_bounded_json(std::string_view input, const std::string& what) {
  BoundedJson result;
  std::string patched;  // a copy of the input, made at the first out-of-range number
  std::string_view text = input;
  while (true) {
    json document;
    BoundedHandler handler{document};
    const bool ok = json::sax_parse(text.begin(), text.end(), &handler);
    if (handler.too_deep()) {
      throw CpiError(what + " nests arrays or objects deeper than " +
                     std::to_string(k_max_json_depth) + " levels");
    }
    if (ok) {
      result.document = std::move(document);
      return result;
    }
    if (!handler.overflowed()) {
      throw CpiError(what + " could not be parsed");
    }
    const std::string& token = handler.overflow_token();
    const std::size_t end = handler.overflow_end();
    if (end < token.size() || end > text.size() || token.size() < 4 ||
        text.substr(end - token.size(), token.size()) != token) {
      throw CpiError(what + ": number '" + token.substr(0, 40) + "' is out of range");
    }
    const auto path = handler.path();
    if (result.out_of_range.size() >= k_max_out_of_range) {
      throw CpiError(what + ": more than " + std::to_string(k_max_out_of_range) +
                     " numbers out of range (the last at " + json_path_text(path) + ")");
    }
    result.out_of_range.push_back({path, token.substr(0, 40)});
    if (patched.empty()) patched.assign(input.begin(), input.end());
    patched.replace(end - token.size(), token.size(), "null" + std::string(token.size() - 4, ' '));
    text = patched;
  }
}

}  // namespace cpi::config
