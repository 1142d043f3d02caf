#pragma once
// Small pugixml helpers shared by the builders and readers.

#include <pugixml.hpp>

#include <string>

namespace cpi::xml {

// Appends and returns a child element.
pugi::xml_node child(pugi::xml_node parent, const char* name);

// The document as text: indent of two spaces, no XML declaration.
std::string serialize(const pugi::xml_document& doc);
std::string serialize(const pugi::xml_node& node);

// Parses `text`; throws CloudError "<what>: unreadable XML: ..." on failure.
void parse(pugi::xml_document& doc, const std::string& text, const std::string& what);

}  // namespace cpi::xml
