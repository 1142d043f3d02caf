#include "cpi/xml/xml_util.hpp"

#include <sstream>

#include "cpi/errors.hpp"

namespace cpi::xml {

pugi::xml_node child(pugi::xml_node parent, const char* name) { return parent.append_child(name); }

std::string serialize(const pugi::xml_document& doc) {
  std::ostringstream out;
  doc.save(out, "  ", pugi::format_indent | pugi::format_no_declaration);
  return out.str();
}

std::string serialize(const pugi::xml_node& node) {
  std::ostringstream out;
  node.print(out, "  ", pugi::format_indent | pugi::format_no_declaration);
  return out.str();
}

void parse(pugi::xml_document& doc, const std::string& text, const std::string& what) {
  const auto result = doc.load_string(text.c_str());
  if (!result) {
    throw CloudError(what + ": unreadable XML: " + result.description());
  }
}

}  // namespace cpi::xml
