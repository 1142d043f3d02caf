// libvirt's own error survives to the exception: LibvirtHypervisor copies the thread's error
// before it names the object (a name lookup resets the error), whatever order the compiler
// evaluates arguments in. Real failing calls on libvirt's in-process test driver.

#include <gtest/gtest.h>
#include <libvirt/virterror.h>

#include <string>

#include "cpi/config/config.hpp"
#include "cpi/cloud/libvirt_cloud.hpp"
#include "cpi/errors.hpp"
#include "cpi/virt/connect.hpp"
#include "cpi/virt/error.hpp"
#include "cpi/virt/libvirt_hypervisor.hpp"

namespace cpi::virt {
namespace {

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class LibvirtErrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    install_quiet_error_handler();
    config::LibvirtConfig config;
    config.uri = "test:///default";
    m_open = open_connection(config);
  }

  // A handle to a domain that no longer exists: defined, then undefined (the handle stays valid
  // to hold, and every call on it fails with VIR_ERR_NO_DOMAIN).
  Domain stale_domain(LibvirtHypervisor& hv, const std::string& name) {
    auto domain = hv.define_domain("<domain type='test'><name>" + name +
                                   "</name><memory unit='MiB'>64</memory><os><type>hvm</type>"
                                   "</os></domain>");
    hv.undefine_domain(*domain);
    return domain;
  }

  OpenConnection m_open;
};

// The operation, the object, libvirt's own text and its code; a CloudError on the wire.
void expect_libvirt_error(const std::function<void()>& call, int code, const std::string& what,
                          const std::string& libvirt_text) {
  try {
    call();
    ADD_FAILURE() << "no error for " << what;
  } catch (const LibvirtError& e) {
    const std::string message = e.what();
    EXPECT_EQ(e.code(), code) << message;
    EXPECT_TRUE(has(message, what)) << message;
    EXPECT_TRUE(has(message, libvirt_text)) << message;
    EXPECT_FALSE(has(message, "no error detail")) << message;
    const CloudError& as_cloud_error = e;  // what rpc::dispatch answers
    EXPECT_STREQ(as_cloud_error.type(), "Bosh::Clouds::CloudError");
  }
  EXPECT_EQ(last_error_code(), VIR_ERR_OK) << "the error was copied and reset";
}

// domain_state() named the domain (virDomainGetName, which resets the error) before it copied
// the error, and lost it on every compiler: "libvirt reported no error detail".
TEST_F(LibvirtErrorTest, DomainStateKeepsLibvirtsMessageAndCode) {
  LibvirtHypervisor hv{*m_open.connection};
  auto domain = stale_domain(hv, "cpi-error-test-state");
  expect_libvirt_error([&] { hv.domain_state(*domain); }, VIR_ERR_NO_DOMAIN,
                       "reading the state of domain 'cpi-error-test-state'",
                       "no domain with matching");
}

// check(rc, "..." + name_of(x)) kept the error only when the name was built before the call
// (GCC's order); the description is now built after the error is copied, under any order.
TEST_F(LibvirtErrorTest, DomainCallsKeepLibvirtsMessageAndCode) {
  LibvirtHypervisor hv{*m_open.connection};
  auto domain = stale_domain(hv, "cpi-error-test-calls");
  expect_libvirt_error([&] { hv.start_domain(*domain); }, VIR_ERR_NO_DOMAIN,
                       "starting domain 'cpi-error-test-calls'", "no domain with matching");
  expect_libvirt_error([&] { hv.domain_xml(*domain, true); }, VIR_ERR_NO_DOMAIN,
                       "reading domain 'cpi-error-test-calls'", "no domain with matching");
  expect_libvirt_error([&] { hv.set_domain_autostart(*domain); }, VIR_ERR_NO_DOMAIN,
                       "setting autostart on domain 'cpi-error-test-calls'",
                       "no domain with matching");
}

// A volume lookup in a pool that was deleted under its handle: the pool is named in the message.
TEST_F(LibvirtErrorTest, VolumeLookupInADeletedPoolKeepsLibvirtsMessageAndCode) {
  LibvirtHypervisor hv{*m_open.connection};
  auto pool = hv.define_pool(
      "<pool type='dir'><name>cpi-error-test-pool</name><target><path>/cpi-error-test-pool"
      "</path></target></pool>");
  hv.undefine_pool(*pool);
  expect_libvirt_error([&] { hv.find_volume(*pool, "v.img"); }, VIR_ERR_NO_STORAGE_POOL,
                       "looking up volume 'v.img' in pool 'cpi-error-test-pool'",
                       "no storage pool with matching");
  expect_libvirt_error([&] { hv.pool_info(*pool); }, VIR_ERR_NO_STORAGE_POOL,
                       "reading storage pool 'cpi-error-test-pool'",
                       "no storage pool with matching");
}

// A definition libvirt refuses names the object from the XML the CPI gave.
TEST_F(LibvirtErrorTest, RefusedDefinitionNamesTheObject) {
  LibvirtHypervisor hv{*m_open.connection};
  expect_libvirt_error(
      [&] { hv.define_domain("<domain type='nosuchtype'><name>cpi-error-test-bad</name></domain>"); },
      VIR_ERR_CONFIG_UNSUPPORTED, "defining domain 'cpi-error-test-bad'", "nosuchtype");
}

// The settings no URI can be built from are virt's InvalidSettings; the cloud boundary answers
// them as CpiError with the same message (the wire is unchanged).
TEST(LibvirtBoundaryTest, InvalidConnectionSettingsAreACpiErrorAtTheCloudBoundary) {
  config::Config config = config::default_config();
  config.libvirt.uri = "qemu+tls://127.0.0.1/system";
  config.libvirt.tls.ca_cert.value = "/nonexistent/ca.pem";
  EXPECT_THROW(build_target(config.libvirt), InvalidSettings);
  try {
    cloud::open_libvirt_cloud(config);
    ADD_FAILURE() << "opened a cloud without client_cert and client_key";
  } catch (const CpiError& e) {
    EXPECT_STREQ(e.type(), "Bosh::Clouds::CpiError");
    EXPECT_TRUE(has(e.what(), "client_cert and client_key must all be set")) << e.what();
  }
}

// A connection failure is a LibvirtError: the CloudError BOSH got before, with libvirt's code.
TEST(LibvirtBoundaryTest, ConnectionFailureIsACloudErrorWithLibvirtsCode) {
  config::Config config = config::default_config();
  config.libvirt.uri = "nosuchdriver:///x";
  install_quiet_error_handler();
  try {
    cloud::open_libvirt_cloud(config);
    ADD_FAILURE() << "opened nosuchdriver:///x";
  } catch (const LibvirtError& e) {
    EXPECT_STREQ(e.type(), "Bosh::Clouds::CloudError");
    EXPECT_NE(e.code(), VIR_ERR_OK);
    EXPECT_TRUE(has(e.what(), "connecting to libvirt at 'nosuchdriver:///x'")) << e.what();
  }
}

}  // namespace
}  // namespace cpi::virt
