// The tool request as the text the executable hands the driver module (cpi_run_tool).

#include "cpi/tools/tool_request.hpp"

#include <gtest/gtest.h>

#include "cpi/errors.hpp"

namespace cpi::tools {
namespace {

TEST(ToolRequestTest, EveryFieldSurvivesTheText) {
  ToolRequest request;
  request.tool = "cleanup";
  request.config_path = "/var/vcap/jobs/libvirt_cpi/config/cpi.json";
  request.json = true;
  request.cids = {"vm-1", "disk-0123456789abcde"};
  request.log_lines = 7;
  request.orphans = true;
  request.dry_run = true;
  request.min_age_seconds = 5;
  request.incomplete_age_seconds = 9;

  const auto back = parse_tool_request(tool_request_text(request));
  EXPECT_EQ(back.tool, "cleanup");
  EXPECT_EQ(back.config_path, request.config_path);
  EXPECT_TRUE(back.json);
  EXPECT_EQ(back.cids, request.cids);
  EXPECT_EQ(back.log_lines, 7);
  EXPECT_TRUE(back.orphans);
  EXPECT_TRUE(back.dry_run);
  EXPECT_EQ(back.min_age_seconds, 5);
  EXPECT_EQ(back.incomplete_age_seconds, 9);
}

TEST(ToolRequestTest, TheDefaultsSurviveTheTextToo) {
  ToolRequest request;
  request.tool = "doctor";
  const auto back = parse_tool_request(tool_request_text(request));
  EXPECT_EQ(back.tool, "doctor");
  EXPECT_FALSE(back.config_path.has_value());
  EXPECT_FALSE(back.json);
  EXPECT_TRUE(back.cids.empty());
  EXPECT_EQ(back.log_lines, ToolRequest{}.log_lines);
  EXPECT_EQ(back.min_age_seconds, ToolRequest{}.min_age_seconds);
  EXPECT_EQ(back.incomplete_age_seconds, ToolRequest{}.incomplete_age_seconds);
}

TEST(ToolRequestTest, TextThatIsNoToolRequestIsCpiError) {
  for (const char* text : {"", "{", "[]", R"({"tool":"doctor"})", R"({"tool":5})"}) {
    EXPECT_THROW(parse_tool_request(text), CpiError) << text;
  }
}

}  // namespace
}  // namespace cpi::tools
