#include "cpi/rpc/request.hpp"

#include <gtest/gtest.h>

#include "cpi/errors.hpp"

namespace cpi::rpc {
namespace {

struct BadRequest {
  const char* input;
  const char* type;
  const char* message_part;
};

class RequestBadInputTest : public ::testing::TestWithParam<BadRequest> {};

TEST_P(RequestBadInputTest, IsRejectedWithTypeAndMessage) {
  const auto& c = GetParam();
  try {
    parse_request(c.input);
    FAIL() << "accepted: " << c.input;
  } catch (const Error& e) {
    EXPECT_STREQ(e.type(), c.type) << c.input;
    EXPECT_NE(std::string{e.what()}.find(c.message_part), std::string::npos)
        << c.input << " -> " << e.what();
    EXPECT_FALSE(e.ok_to_retry());
  }
}

INSTANTIATE_TEST_SUITE_P(
    Envelope, RequestBadInputTest,
    ::testing::Values(
        BadRequest{"", "Bosh::Clouds::CpiError", "empty request"},
        BadRequest{"  \n", "Bosh::Clouds::CpiError", "empty request"},
        BadRequest{"not json", "Bosh::Clouds::CpiError", "not valid JSON"},
        BadRequest{"{\"method\":\"info\"", "Bosh::Clouds::CpiError", "not valid JSON"},
        BadRequest{"[]", "Bosh::Clouds::CpiError", "must be a JSON object, got an array"},
        BadRequest{"\"info\"", "Bosh::Clouds::CpiError", "got a string"},
        BadRequest{"{}", "Bosh::Clouds::CpiError", "no 'method' key"},
        BadRequest{R"({"method":7,"arguments":[]})", "Bosh::Clouds::CpiError",
                   "'method' must be a string, got an integer"},
        BadRequest{R"({"method":"","arguments":[]})", "Bosh::Clouds::CpiError",
                   "must not be empty"},
        BadRequest{R"({"method":"info"})", "Bosh::Clouds::CpiError", "no 'arguments' key"},
        BadRequest{R"({"method":"info","arguments":{}})", "Bosh::Clouds::CpiError",
                   "'arguments' must be an array, got an object"},
        BadRequest{R"({"method":"info","arguments":[],"context":[]})", "Bosh::Clouds::CpiError",
                   "'context' must be an object"},
        BadRequest{R"({"method":"info","arguments":[],"api_version":"2"})",
                   "Bosh::Clouds::CpiError", "'api_version' must be an integer"},
        BadRequest{R"({"method":"info","arguments":[],"api_version":2.5})",
                   "Bosh::Clouds::CpiError", "'api_version' must be an integer"},
        BadRequest{R"({"method":"info","arguments":[],"api_version":-1})",
                   "Bosh::Clouds::CpiError", "must not be negative"},
        BadRequest{R"({"method":"info","arguments":[],"api_version":4})",
                   "Bosh::Clouds::NotImplemented", "max supported is '3'"}));

TEST(RequestTest, ReadsAllFields) {
  const auto r = parse_request(
      R"({"method":"create_vm","arguments":[1,"a"],"context":{"director_uuid":"d","request_id":"cpi-123"},"api_version":2})");
  EXPECT_EQ(r.method, "create_vm");
  EXPECT_EQ(r.arguments.size(), 2U);
  EXPECT_EQ(r.context["director_uuid"], "d");
  EXPECT_EQ(r.request_id, "cpi-123");
  EXPECT_EQ(r.api_version, 2);
}

TEST(RequestTest, MissingOrZeroApiVersionMeansOne) {
  EXPECT_EQ(parse_request(R"({"method":"info","arguments":[]})").api_version, 1);
  EXPECT_EQ(parse_request(R"({"method":"info","arguments":[],"api_version":0})").api_version, 1);
  EXPECT_EQ(parse_request(R"({"method":"info","arguments":[],"api_version":null})").api_version,
            1);
}

TEST(RequestTest, AcceptsApiVersionThreeAndUnknownKeys) {
  const auto r = parse_request(
      R"({"method":"create_stemcell","arguments":["/i",{},{"tags":{}}],"api_version":3,"extra":1})");
  EXPECT_EQ(r.api_version, 3);
  EXPECT_EQ(r.arguments.size(), 3U);
}

TEST(RequestTest, NullContextBecomesEmptyObject) {
  const auto r = parse_request(R"({"method":"info","arguments":[],"context":null})");
  EXPECT_TRUE(r.context.is_object());
  EXPECT_TRUE(r.request_id.empty());
}

}  // namespace
}  // namespace cpi::rpc
