// The connection layer against libvirt's in-process test driver.

#include <gtest/gtest.h>
#include <libvirt/virterror.h>

#include "cpi/errors.hpp"
#include "cpi/virt/connect.hpp"
#include "cpi/virt/error.hpp"
#include "cpi/virt/libvirt_hypervisor.hpp"

namespace cpi::virt {
namespace {

class ConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override { install_quiet_error_handler(); }

  // The message of the CloudError that opening `uri` fails with ("" and a failure when it opens).
  static std::string open_error(const std::string& uri) {
    config::LibvirtConfig config;
    config.uri = uri;
    try {
      [[maybe_unused]] auto opened = open_connection(config);
    } catch (const CloudError& e) {
      return e.what();
    }
    ADD_FAILURE() << uri << " opened";
    return "";
  }
};

TEST_F(ConnectionTest, OpensTestDriverAndReleasesEveryHandle) {
  config::LibvirtConfig config;
  config.uri = "test:///default";
  auto open = open_connection(config);
  ASSERT_TRUE(open.connection);
  {
    LibvirtHypervisor hv{*open.connection};
    EXPECT_EQ(hv.uri(), "test:///default");
    auto domain = hv.find_domain("test");
    ASSERT_TRUE(domain.has_value());
    EXPECT_FALSE(hv.find_domain("vm-absent").has_value());
    EXPECT_TRUE(hv.find_pool("default-pool").has_value());
    EXPECT_TRUE(hv.find_network("default").has_value());
  }
  EXPECT_EQ(virConnectClose(open.connection.release()), 0) << "a libvirt handle leaked";
}

TEST_F(ConnectionTest, UnsupportedCallBecomesLibvirtErrorWithCode) {
  config::LibvirtConfig config;
  config.uri = "test:///default";
  auto open = open_connection(config);
  LibvirtHypervisor hv{*open.connection};
  auto pool = hv.find_pool("default-pool");
  ASSERT_TRUE(pool);
  auto volume = hv.create_volume(**pool, "<volume><name>v.img</name><capacity>1024</capacity></volume>");
  try {
    hv.resize_volume(*volume, 4096);
    FAIL() << "test driver resized";
  } catch (const LibvirtError& e) {
    EXPECT_EQ(e.code(), VIR_ERR_NO_SUPPORT);
    EXPECT_NE(std::string{e.what()}.find("resizing volume 'v.img'"), std::string::npos);
  }
  hv.delete_volume(*volume);
}

TEST_F(ConnectionTest, BadUriNamesItAndGivesAHint) {
  const std::string message = open_error("nosuchdriver:///x");
  EXPECT_NE(message.find("'nosuchdriver:///x'"), std::string::npos) << message;
  EXPECT_NE(message.find("check"), std::string::npos) << message;
}

TEST_F(ConnectionTest, MissingSocketSaysLibvirtdIsNotRunning) {
  const std::string message = open_error("qemu:///system?socket=/nonexistent/libvirt-sock");
  EXPECT_NE(message.find("libvirtd is running"), std::string::npos) << message;
}

}  // namespace
}  // namespace cpi::virt
