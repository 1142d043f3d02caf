// rpc::dispatch on hostile input of any size or shape: one well-formed JSON response, never a
// crash (the redactor, the depth limit, numbers that do not fit, NUL characters, many secrets).

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

#include "cpi/config/json_parse.hpp"
#include "cpi/errors.hpp"
#include "cpi/rpc/dispatcher.hpp"
#include "cpi/rpc/request.hpp"

namespace cpi::rpc {
namespace {

using nlohmann::json;

class HostileInputTest : public ::testing::Test {
 protected:
  // The module's tables, and no cloud: every request here must be answered before one is needed.
  json call(const std::string& input) {
    DispatchOptions options;
    options.tables = {&actions::local_actions(), &actions::driver_actions()};
    options.cloud_factory = [this](const config::Config&) -> std::shared_ptr<cloud::LibvirtCloud> {
      ++opened;
      throw CloudError("no cloud in this test");
    };
    const std::string text = dispatch(input, options);
    EXPECT_EQ(text.find('\n'), std::string::npos);
    json response = json::parse(text);
    EXPECT_TRUE(response.contains("result"));
    EXPECT_TRUE(response["log"].is_string());
    EXPECT_TRUE(response["error"].is_null() || response["error"]["message"].is_string());
    return response;
  }
  static std::string message(const json& r) { return r["error"]["message"].get<std::string>(); }
  int opened = 0;
};

std::string nested(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

std::string objects(std::size_t depth) {
  std::string out;
  out.reserve(depth * 6 + 1);
  for (std::size_t i = 0; i < depth; ++i) out += "{\"a\":";
  return out + "1" + std::string(depth, '}');
}

TEST_F(HostileInputTest, MethodNamedLikeAUrlWithAMebibyteTail) {
  const std::string method = "a://b:" + std::string(1 << 20, 'x');
  const auto r = call(json{{"method", method}, {"arguments", json::array()}}.dump());
  EXPECT_EQ(r["error"]["type"], "Bosh::Clouds::NotImplemented");
  EXPECT_NE(message(r).find("a://b:xxxx"), std::string::npos);
}

TEST_F(HostileInputTest, MethodHoldingAnUnterminatedPrivateKey) {
  const std::string method = "-----BEGIN RSA PRIVATE KEY-----" + std::string(1 << 20, 'Q');
  const auto r = call(json{{"method", method}, {"arguments", json::array()}}.dump());
  EXPECT_EQ(r["error"]["type"], "Bosh::Clouds::NotImplemented");
  EXPECT_EQ(message(r).find("QQQQ"), std::string::npos) << "the key body is redacted";
}

TEST_F(HostileInputTest, AMillionNestedArraysInArgumentsOrContext) {
  const std::string deep = nested(1000000);
  for (const std::string& input :
       {R"({"method":"info","arguments":)" + deep + "}",
        R"({"method":"info","arguments":[],"context":{"x":)" + deep + "}}",
        R"({"method":"info","arguments":[],"context":)" + objects(1000000) + "}"}) {
    const auto r = call(input);
    EXPECT_EQ(r["error"]["type"], "Bosh::Clouds::CpiError");
    EXPECT_NE(message(r).find("deeper than 512 levels"), std::string::npos) << message(r);
  }
}

TEST_F(HostileInputTest, NestingUpToTheLimitIsAccepted) {
  // The document is level 1 and "arguments" level 2: 510 more levels fit.
  const auto ok = call(R"({"method":"info","arguments":[)" + nested(510) + "]}");
  EXPECT_TRUE(ok["error"].is_null()) << ok;
  const auto deep = call(R"({"method":"info","arguments":[)" + nested(511) + "]}");
  EXPECT_EQ(deep["error"]["type"], "Bosh::Clouds::CpiError");
}

TEST_F(HostileInputTest, HundredThousandSecretsInTheContext) {
  json secrets = json::array();
  for (int i = 0; i < 100000; ++i) secrets.push_back("pw-" + std::to_string(i) + "-value");
  const auto r = call(json{{"method", "info"},
                           {"arguments", json::array()},
                           {"context", {{"password", secrets}}}}
                          .dump());
  EXPECT_TRUE(r["error"].is_null()) << r;
  EXPECT_EQ(r["result"]["api_version"], 2);
}

TEST_F(HostileInputTest, NumberThatDoesNotFitADoubleNamesTheArgument) {
  struct Case {
    std::string request;
    std::string part;
  };
  for (const Case& c : {
           Case{R"({"method":"create_disk","arguments":[1e400,{},null]})",
                "create_disk: argument 0 (size): number '1e400' is out of range"},
           Case{R"({"method":"create_disk","arguments":[-1E999,{},null]})",
                "argument 0 (size): number '-1E999' is out of range"},
           Case{R"({"method":"create_disk","arguments":[10,{"x":[1,2e999]},null]})",
                "argument 1 (cloud_properties): number '2e999' at arguments[1].x[1] is out of range"},
           Case{R"({"method":"resize_disk","arguments":["disk-0123456789abcde",1e309]})",
                "argument 1 (new_size): number '1e309'"},
       }) {
    const auto r = call(c.request);
    EXPECT_EQ(r["error"]["type"], "Bosh::Clouds::CpiError") << c.request;
    EXPECT_NE(message(r).find(c.part), std::string::npos) << message(r);
  }
  EXPECT_EQ(opened, 0);
}

TEST_F(HostileInputTest, HugeFiniteNumbersAreOutOfRangeNamingTheArgument) {
  for (const char* request : {R"({"method":"create_disk","arguments":[1e300,{},null]})",
                              R"({"method":"create_disk","arguments":[18446744073709551615,{},null]})",
                              R"({"method":"create_disk","arguments":[9223372036854775808,{},null]})"}) {
    const auto r = call(request);
    EXPECT_EQ(r["error"]["type"], "Bosh::Clouds::CpiError") << request;
    EXPECT_NE(message(r).find("argument 0 (size): number "), std::string::npos) << message(r);
    EXPECT_NE(message(r).find("is out of range"), std::string::npos) << message(r);
  }
}

TEST_F(HostileInputTest, OutOfRangeNumberInTheContextIsCpiError) {
  const auto r = call(R"({"method":"info","arguments":[],"context":{"port":1e400}})");
  EXPECT_EQ(r["error"]["type"], "Bosh::Clouds::CpiError");
  EXPECT_NE(message(r).find("context.port"), std::string::npos) << message(r);
}

TEST_F(HostileInputTest, ApiVersionOfAnySize) {
  struct Case {
    const char* version;
    const char* type;
    const char* part;
  };
  for (const Case& c : {
           Case{"9223372036854775808", "Bosh::Clouds::NotImplemented",
                "requested is '9223372036854775808', max supported is '3'"},
           Case{"18446744073709551615", "Bosh::Clouds::NotImplemented",
                "requested is '18446744073709551615'"},
           Case{"-9223372036854775808", "Bosh::Clouds::CpiError",
                "must not be negative, got -9223372036854775808"},
           Case{"2.5", "Bosh::Clouds::CpiError", "must be an integer, got a number"},
           Case{"1e400", "Bosh::Clouds::CpiError", "'api_version': number '1e400' is out of range"},
           Case{"-1e400", "Bosh::Clouds::CpiError", "is out of range"},
       }) {
    const auto r = call(std::string{R"({"method":"info","arguments":[],"api_version":)"} +
                        c.version + "}");
    EXPECT_EQ(r["error"]["type"], c.type) << c.version;
    EXPECT_NE(message(r).find(c.part), std::string::npos) << message(r);
  }
}

TEST_F(HostileInputTest, UriWithNulInTheContextIsRefused) {
  const auto r = call(
      "{\"method\":\"has_vm\",\"arguments\":[\"vm-1\"],\"context\":{\"uri\":\"qemu+ssh://h/"
      "system\\u0000\"}}");
  EXPECT_EQ(r["error"]["type"], "Bosh::Clouds::CpiError");
  EXPECT_NE(message(r).find("context.uri: must not contain a NUL"), std::string::npos)
      << message(r);
  EXPECT_EQ(opened, 0);
}

TEST(BoundedJsonTest, TooManyOutOfRangeNumbersIsCpiError) {
  std::string doc = "[";
  for (std::size_t i = 0; i <= config::k_max_out_of_range; ++i) doc += (i ? ",1e400" : "1e400");
  doc += "]";
  EXPECT_THROW(config::parse_bounded_json(doc, "doc"), CpiError);
  const auto parsed = config::parse_bounded_json("[1, {\"a\": [2, 3e999]}]", "doc");
  ASSERT_EQ(parsed.out_of_range.size(), 1U);
  EXPECT_EQ(config::json_path_text(parsed.out_of_range[0].path), "[1].a[1]");
  EXPECT_EQ(parsed.document, json::parse("[1, {\"a\": [2, null]}]"));
}

TEST(BoundedJsonTest, SyntaxErrorsStillThrowParseErrors) {
  EXPECT_THROW(config::parse_bounded_json("[1,", "doc"), json::parse_error);
  EXPECT_THROW(config::parse_bounded_json("{\"a\" 1}", "doc"), json::parse_error);
}

}  // namespace
}  // namespace cpi::rpc
