#pragma once
// Helpers for tests of XML builders: parse, query by XPath, validate against libvirt's schema.

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <pugixml.hpp>
#include <sstream>
#include <string>

#include "cpi/util/private_dir.hpp"

namespace cpi::testing {

inline pugi::xml_document parsed(const std::string& text) {
  pugi::xml_document doc;
  const auto result = doc.load_string(text.c_str());
  EXPECT_TRUE(result) << result.description() << "\n" << text;
  return doc;
}

// The text or attribute value at `xpath`; "" (and a failure) when absent.
inline std::string at(const pugi::xml_node& root, const std::string& xpath) {
  const auto node = root.select_node(xpath.c_str());
  EXPECT_TRUE(node) << xpath;
  return node.attribute() ? node.attribute().value() : node.node().child_value();
}

inline std::size_t count(const pugi::xml_node& root, const std::string& xpath) {
  return root.select_nodes(xpath.c_str()).size();
}

inline bool have_validator() {
  return std::system("command -v virt-xml-validate >/dev/null 2>&1") == 0;
}

// Writes `text` to a file and runs `virt-xml-validate file kind` (domain, storagevol,
// storagepool); "" when it validates, else the validator's output followed by the XML.
inline std::string validation_error(const std::string& text, const std::string& kind = "domain") {
  const util::PrivateDir dir{"cpi-xml-test"};
  const auto file = dir.write_file("document.xml", text);
  const auto log = dir.path() / "validate.log";
  const std::string command =
      "virt-xml-validate '" + file.string() + "' " + kind + " >'" + log.string() + "' 2>&1";
  if (std::system(command.c_str()) == 0) {
    return {};
  }
  std::ifstream in{log};
  std::ostringstream out;
  out << in.rdbuf() << "\n" << text;
  return out.str();
}

}  // namespace cpi::testing
