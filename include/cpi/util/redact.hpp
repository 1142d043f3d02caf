#pragma once
// Secret scrubbing for every text that leaves the process (log lines, error messages).
//
// Every rule is a single left-to-right scan with no recursion and no regex, so a text of any
// size (a 1 MiB method name, an unterminated PEM block) costs time linear in its length and a
// fixed amount of stack.

#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace cpi::util {

// Replaces in `text`:
//  - every occurrence of a registered secret value with `***` (occurrences that overlap, of the
//    same or of different secrets, are masked together as one `***`; adjacent ones each get
//    their own),
//  - the password of any `scheme://user:password@host` URL with `***`,
//  - every PEM block that holds a private key (`-----BEGIN ... PRIVATE KEY-----` up to the
//    matching `-----END ... PRIVATE KEY-----`, or to the end of the text when it has none) with
//    `[redacted private key]`.
//
// Secrets live in one Aho-Corasick automaton: add_secret costs O(length of the secret), the
// first redact() after a batch of additions rebuilds the failure links in O(total size of the
// secrets), and redact() costs O(length of the text + fan-out), whatever the number of secrets.
// Thread-safe.
class Redactor {
 public:
  Redactor();

  // Values of fewer than 4 characters are ignored (they would mask ordinary words).
  void add_secret(std::string_view value);
  std::string redact(std::string_view text) const;
  // Number of distinct secrets registered (for tests).
  std::size_t secret_count() const;
  // Forgets every registered secret (the automaton's memory is given back). For a process that
  // dispatches many requests, the fuzzer: the `cpi` binary answers one request per process, so
  // its secrets never pile up, and it never calls this.
  void clear();

 private:
  struct Node {
    std::uint32_t first_child = 0;   // 0: none (the root is never a child)
    std::uint32_t next_sibling = 0;  // 0: none
    std::uint32_t fail = 0;
    std::uint32_t depth = 0;
    std::uint32_t longest = 0;  // length of the longest secret that ends at this node
    unsigned char byte = 0;
    bool terminal = false;
  };

  // An edge below the root: parent --byte--> child (child 0: an empty slot).
  struct Edge {
    std::uint32_t parent = 0;
    std::uint32_t child = 0;
    unsigned char byte = 0;
  };

  std::uint32_t child(std::uint32_t node, unsigned char byte) const;
  void add_edge(std::uint32_t parent, unsigned char byte, std::uint32_t child);
  void build_links() const;
  std::string mask_secrets(std::string_view text) const;

  mutable std::mutex m_mutex;
  mutable std::vector<Node> m_nodes;  // [0] is the root
  std::uint32_t m_root_children[256] = {};
  // Every edge below the root in one open-addressing table (linear probing, at most 3/4 full):
  // finding a child costs one short probe whatever the node's fan-out, where a walk along its
  // sibling list (kept for the breadth-first pass of build_links) costs a cache miss per sibling.
  std::vector<Edge> m_edges;  // size 0 or a power of two
  std::size_t m_edge_count = 0;
  std::size_t m_count = 0;
  mutable bool m_dirty = false;
};

// The process-wide redactor used by the log sink and the response writer.
Redactor& redactor();

// Shorthand for redactor().redact(text).
std::string redact(std::string_view text);

// The URL-password and private-key rules alone (no registered secrets).
std::string redact_patterns(std::string_view text);

// True for a key that names a secret: it contains (case-insensitively) password, passwd,
// secret, private_key, client_key, token, credential, access_key, ssh or tls, and, when
// `bare_key` is true, the word key anywhere (metadata shown by the tools: "api_key", "keys").
bool is_secret_key(std::string_view key, bool bare_key);

// A copy of `value` where every string under a secret-looking key (is_secret_key with
// bare_key, at any depth) becomes "***" and every other string goes through redact(). Levels
// deeper than k_max_mask_depth are replaced by "***" whole.
constexpr std::size_t k_max_mask_depth = 512;
nlohmann::json mask_secret_values(const nlohmann::json& value);

}  // namespace cpi::util
