#include "cpi/util/redact.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace cpi::util {
namespace {

constexpr std::string_view k_masked = "***";
constexpr std::string_view k_redacted_key = "[redacted private key]";

bool is_scheme_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) != 0 || c == '+' || c == '.' || c == '-';
}

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// URL user part: anything but ':', '/', '@', white space and quotes.
bool is_user_char(char c) {
  return c != ':' && c != '/' && c != '@' && c != '"' && c != '\'' && !is_space(c);
}

// URL password: anything but '@', white space and quotes (BOSH generates alphanumeric ones).
bool is_password_char(char c) { return c != '@' && c != '"' && c != '\'' && !is_space(c); }

// scheme://user:password@ -> scheme://user:***@. One pass: after each "://" the scan resumes
// where the user or password run stopped, so no character is looked at more than a fixed
// number of times (the backward scheme scan stops at the previous "://", whose '/' is no
// scheme character).
std::string redact_url_passwords(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t copied = 0;  // text[0, copied) is in out
  std::size_t from = 0;
  while (true) {
    const std::size_t sep = text.find("://", from);
    if (sep == std::string_view::npos) break;
    std::size_t start = sep;
    bool letter = false;
    while (start > 0 && is_scheme_char(text[start - 1])) {
      --start;
      letter = letter || std::isalpha(static_cast<unsigned char>(text[start])) != 0;
    }
    std::size_t user_end = sep + 3;
    while (user_end < text.size() && is_user_char(text[user_end])) ++user_end;
    if (!letter || user_end >= text.size() || text[user_end] != ':') {
      from = std::max(user_end, sep + 1);
      continue;
    }
    std::size_t pw_end = user_end + 1;
    while (pw_end < text.size() && is_password_char(text[pw_end])) ++pw_end;
    if (pw_end == user_end + 1 || pw_end >= text.size() || text[pw_end] != '@') {
      from = pw_end;  // every "://" inside the run would stop at the same character
      continue;
    }
    out.append(text.substr(copied, user_end + 1 - copied));
    out.append(k_masked);
    copied = pw_end;
    from = pw_end + 1;
  }
  out.append(text.substr(copied));
  return out;
}

bool is_label_char(char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' '; }

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// If a private-key PEM armour line ("<opener>[A-Z0-9 ]*PRIVATE KEY-----") starts at `at`,
// the position just past it; npos otherwise.
std::size_t key_armour_end(std::string_view text, std::size_t at, std::string_view opener) {
  if (text.compare(at, opener.size(), opener) != 0) return std::string_view::npos;
  std::size_t end = at + opener.size();
  while (end < text.size() && is_label_char(text[end])) ++end;
  const auto label = text.substr(at + opener.size(), end - at - opener.size());
  if (!ends_with(label, "PRIVATE KEY") || text.compare(end, 5, "-----") != 0) {
    return std::string_view::npos;
  }
  return end + 5;
}

// Every "-----BEGIN ...PRIVATE KEY-----" up to the first "-----END ...PRIVATE KEY-----" after
// it (or the end of the text) becomes "[redacted private key]".
std::string redact_private_keys(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t copied = 0;
  std::size_t from = 0;
  while (true) {
    const std::size_t begin = text.find("-----BEGIN ", from);
    if (begin == std::string_view::npos) break;
    const std::size_t body = key_armour_end(text, begin, "-----BEGIN ");
    if (body == std::string_view::npos) {
      from = begin + 1;
      continue;
    }
    // Unterminated: to the end of the text, but a final newline (of a log line) stays.
    std::size_t stop = !text.empty() && text.back() == '\n' ? text.size() - 1 : text.size();
    for (std::size_t at = text.find("-----END ", body); at != std::string_view::npos;
         at = text.find("-----END ", at + 1)) {
      if (const auto end = key_armour_end(text, at, "-----END "); end != std::string_view::npos) {
        stop = end;
        break;
      }
    }
    out.append(text.substr(copied, begin - copied));
    out.append(k_redacted_key);
    copied = stop;
    from = stop;
  }
  out.append(text.substr(copied));
  return out;
}

bool contains_lowercase(std::string_view lower, std::string_view word) {
  return lower.find(word) != std::string_view::npos;
}

nlohmann::json mask_value(const nlohmann::json& value, bool secret, std::size_t depth) {
  if (depth > k_max_mask_depth) return std::string{k_masked};
  if (secret && value.is_primitive() && !value.is_null()) return std::string{k_masked};
  if (value.is_string()) return redact(value.get_ref<const std::string&>());
  if (value.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [key, item] : value.items()) {
      out[key] = mask_value(item, secret || is_secret_key(key, true), depth + 1);
    }
    return out;
  }
  if (value.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& item : value) out.push_back(mask_value(item, secret, depth + 1));
    return out;
  }
  return value;
}

}  // namespace

Redactor::Redactor() : m_nodes(1) {}

namespace {

// The first slot to probe for the edge (parent, byte) in a table of `size` slots (a power of 2).
std::size_t edge_home(std::uint32_t parent, unsigned char byte, std::size_t size) {
  const std::uint64_t key = (static_cast<std::uint64_t>(parent) << 8U) | byte;
  return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ULL) >> 32U) & (size - 1);
}

}  // namespace

std::uint32_t Redactor::child(std::uint32_t node, unsigned char byte) const {
  if (node == 0) return m_root_children[byte];
  if (m_edges.empty()) return 0;
  const std::size_t mask = m_edges.size() - 1;
  for (std::size_t i = edge_home(node, byte, m_edges.size());; i = (i + 1) & mask) {
    const Edge& edge = m_edges[i];
    if (edge.child == 0) return 0;
    if (edge.parent == node && edge.byte == byte) return edge.child;
  }
}

void Redactor::add_edge(std::uint32_t parent, unsigned char byte, std::uint32_t child_node) {
  if ((m_edge_count + 1) * 4 > m_edges.size() * 3) {  // grow: rehash every edge
    std::vector<Edge> old;
    old.swap(m_edges);
    m_edges.resize(std::max<std::size_t>(1024, old.size() * 2));
    m_edge_count = 0;
    for (const Edge& edge : old) {
      if (edge.child != 0) add_edge(edge.parent, edge.byte, edge.child);
    }
  }
  const std::size_t mask = m_edges.size() - 1;
  std::size_t i = edge_home(parent, byte, m_edges.size());
  while (m_edges[i].child != 0) i = (i + 1) & mask;
  m_edges[i] = Edge{parent, child_node, byte};
  ++m_edge_count;
}

void Redactor::add_secret(std::string_view value) {
  if (value.size() < 4) {
    return;
  }
  const std::lock_guard<std::mutex> lock{m_mutex};
  std::uint32_t node = 0;
  for (const char ch : value) {
    const auto byte = static_cast<unsigned char>(ch);
    std::uint32_t next = child(node, byte);
    if (next == 0) {
      next = static_cast<std::uint32_t>(m_nodes.size());
      Node fresh;
      fresh.byte = byte;
      fresh.depth = m_nodes[node].depth + 1;
      if (node == 0) {
        m_root_children[byte] = next;
      } else {
        fresh.next_sibling = m_nodes[node].first_child;
        m_nodes[node].first_child = next;
        add_edge(node, byte, next);
      }
      m_nodes.push_back(fresh);
    }
    node = next;
  }
  if (!m_nodes[node].terminal) {
    m_nodes[node].terminal = true;
    ++m_count;
    m_dirty = true;
  }
}

void Redactor::clear() {
  const std::lock_guard<std::mutex> lock{m_mutex};
  std::vector<Node>(1).swap(m_nodes);
  std::fill(std::begin(m_root_children), std::end(m_root_children), 0U);
  std::vector<Edge>().swap(m_edges);
  m_edge_count = 0;
  m_count = 0;
  m_dirty = false;
}

std::size_t Redactor::secret_count() const {
  const std::lock_guard<std::mutex> lock{m_mutex};
  return m_count;
}

// Breadth-first: a node's failure link is the longest proper suffix of its string that is a
// node too; `longest` is the longest secret ending there (its own, else its failure node's).
void Redactor::build_links() const {
  std::vector<std::uint32_t> queue;
  queue.reserve(m_nodes.size());
  for (const std::uint32_t c : m_root_children) {
    if (c == 0) continue;
    m_nodes[c].fail = 0;
    m_nodes[c].longest = m_nodes[c].terminal ? m_nodes[c].depth : 0;
    queue.push_back(c);
  }
  for (std::size_t head = 0; head < queue.size(); ++head) {
    const std::uint32_t node = queue[head];
    for (std::uint32_t c = m_nodes[node].first_child; c != 0; c = m_nodes[c].next_sibling) {
      std::uint32_t f = m_nodes[node].fail;
      while (f != 0 && child(f, m_nodes[c].byte) == 0) f = m_nodes[f].fail;
      const std::uint32_t link = child(f, m_nodes[c].byte);
      m_nodes[c].fail = link;  // never c itself: c is at depth 2 or more
      m_nodes[c].longest =
          m_nodes[c].terminal ? m_nodes[c].depth : m_nodes[m_nodes[c].fail].longest;
      queue.push_back(c);
    }
  }
  m_dirty = false;
}

// One pass of the automaton marks, at each end position, the longest secret ending there;
// overlapping marks are merged on a stack (each interval is pushed and popped once).
std::string Redactor::mask_secrets(std::string_view text) const {
  struct Span {
    std::size_t begin, end;
  };
  std::vector<Span> spans;
  std::uint32_t state = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    while (state != 0 && child(state, byte) == 0) state = m_nodes[state].fail;
    state = child(state, byte);
    const std::uint32_t length = m_nodes[state].longest;
    if (length == 0) continue;
    Span span{i + 1 - length, i + 1};
    while (!spans.empty() && span.begin < spans.back().end) {
      span.begin = std::min(span.begin, spans.back().begin);
      spans.pop_back();
    }
    spans.push_back(span);
  }
  if (spans.empty()) return std::string{text};
  std::string out;
  out.reserve(text.size());
  std::size_t copied = 0;
  for (const auto& span : spans) {
    out.append(text.substr(copied, span.begin - copied));
    out.append(k_masked);
    copied = span.end;
  }
  out.append(text.substr(copied));
  return out;
}

std::string Redactor::redact(std::string_view text) const {
  std::string out;
  {
    const std::lock_guard<std::mutex> lock{m_mutex};
    if (m_count == 0) {
      out = std::string{text};
    } else {
      if (m_dirty) build_links();
      out = mask_secrets(text);
    }
  }
  return redact_patterns(out);
}

std::string redact_patterns(std::string_view text) {
  std::string out{text};
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

bool is_secret_key(std::string_view key, bool bare_key) {
  std::string lower{key};
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static constexpr std::array<std::string_view, 10> k_words{
      "password", "passwd",     "secret",     "private_key", "client_key",
      "token",    "credential", "access_key", "ssh",         "tls"};
  for (const auto word : k_words) {
    if (contains_lowercase(lower, word)) return true;
  }
  return bare_key && contains_lowercase(lower, "key");
}

nlohmann::json mask_secret_values(const nlohmann::json& value) {
  return mask_value(value, false, 0);
}

}  // namespace cpi::util
