// Secrets never leak: every CPI method through the binary at debug log level, with a config full
// of secrets (mbus password, TLS client key, SSH private key) and create_vm env secrets
// (bosh.password, bosh.mbus.cert.private_key). None may appear on stderr, in the response, in a
// file the CPI left under its (fresh) TMPDIR, in the console log or in the domain XML. The config
// drive volume is 0600 and goes with delete_vm. Over TLS on every run, against a private libvirtd
// (e2e/private_host.hpp) that listens for TLS on 127.0.0.1 only with a PKI the test makes: the
// host's libvirtd, if any, is never restarted or touched.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "e2e/tls_host.hpp"
#include "e2e/support/e2e_ssh.hpp"
#include "e2e/support/e2e_tls.hpp"

namespace cpi::testing::e2e {
namespace {

namespace fs = std::filesystem;

const std::string k_mbus_password = "e2e-mbus-S3cret-pw-7f3a";
const std::string k_bosh_password = "$6$e2esecret$Zq8vN4mK2pL7xW9cR3tY6uH1jB5nG0fD";
const std::string k_cert_key_body =
    "MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiE2eMbusCertKeyBody0042";

class SecretsTest : public TlsHostTest {
 protected:
  SecretsTest() : TlsHostTest("secrets") {}

  // Fails for every secret found in `text` (`where` names the place).
  void expect_clean(const std::string& text, const std::string& where) {
    for (const auto& secret : m_secrets) {
      EXPECT_EQ(text.find(secret), std::string::npos)
          << "secret '" << secret.substr(0, 8) << "...' in " << where;
    }
  }

  // Distinctive pieces of a PEM's body (a leak of any line is found).
  void add_pem(const std::string& pem) {
    std::istringstream in{pem};
    std::string line;
    while (std::getline(in, line)) {
      if (line.size() >= 32 && line.find("-----") == std::string::npos) {
        m_secrets.push_back(line.substr(0, 32));
      }
    }
  }

  nlohmann::json call(const std::string& method, const nlohmann::json& arguments) {
    const nlohmann::json context{{"director_uuid", "e2e"},
                                 {"vm", {{"stemcell", {{"api_version", 2}}}}}};
    const auto tmp = m_dir / ("tmp-" + method);
    fs::create_directories(tmp);
    std::vector<std::string> env_vars = director_env(tmp.string());
    env_vars.push_back("CPI_LOG_LEVEL=debug");
    const auto run = run_process(CPI_BINARY, {"--config", m_config.string()},
                                 cpi_request(method, arguments, context, 2), env_vars);
    const auto response = parse_cpi_response(run);
    std::printf("[secrets] %-30s %s\n", method.c_str(),
                response["error"].is_null() ? "ok" : response["error"].dump().c_str());
    if (run.err.find(" debug ") != std::string::npos) m_saw_debug = true;
    expect_clean(run.err, method + " stderr");
    expect_clean(run.out, method + " response");
    std::error_code ec;
    for (const auto& entry : fs::recursive_directory_iterator(tmp, ec)) {
      if (entry.is_regular_file()) expect_clean(read_whole_file(entry.path().string()), "TMPDIR");
      // The per-VM lock files (empty, kept on purpose) are all a call may leave.
      const auto relative = entry.path().lexically_relative(tmp).string();
      if (relative.rfind("bosh-libvirt-cpi-locks", 0) != 0) {
        ADD_FAILURE() << method << " left " << entry.path() << " in its TMPDIR";
      }
    }
    return response;
  }

  bool m_saw_debug = false;
  std::vector<std::string> m_secrets{k_mbus_password, k_bosh_password, k_cert_key_body};
};

TEST_F(SecretsTest, NoMethodLeaksASecret) {
  const TestPki& pki = *m_pki;
  ASSERT_TRUE(loopback_listening(m_tls_port)) << m_host->daemon().describe();
  TestSshd sshd_keys{m_dir / "ssh"};  // only its client key is used (as a secret in the config)

  auto config = nlohmann::json::parse(read_whole_file(m_config.string()));
  config["agent"]["mbus"] = "https://mbus-user:" + k_mbus_password + "@10.244.0.1:6868";
  config["libvirt"]["tls"] = {{"ca_cert", pki.pem("cacert.pem")},
                              {"client_cert", pki.pem("clientcert.pem")},
                              {"client_key", pki.pem("clientkey.pem")}};
  config["libvirt"]["ssh"] = {{"private_key", sshd_keys.client_key()}};
  add_pem(pki.pem("clientkey.pem"));
  add_pem(sshd_keys.client_key());
  config["libvirt"].erase("uri");
  config["libvirt"].update({{"transport", "tls"}, {"host", "127.0.0.1"}, {"port", m_tls_port}});
  std::printf("[secrets] over qemu+tls://127.0.0.1:%d/system\n", m_tls_port);
  config["log_level"] = "debug";
  std::ofstream{m_config} << config.dump(2);

  const nlohmann::json vm_env{
      {"bosh",
       {{"password", k_bosh_password},
        {"mbus",
         {{"cert",
           {{"ca", "-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n"},
            {"certificate", "-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n"},
            {"private_key", "-----BEGIN RSA PRIVATE KEY-----\n" + k_cert_key_body +
                                "\n-----END RSA PRIVATE KEY-----\n"}}}}}}}};
  const auto image = (env().stemcell_dir() / "qcow2" / "image").string();
  const auto props = nlohmann::json::parse(
      read_whole_file((env().stemcell_dir() / "qcow2" / "cloud_properties.json").string()));

  call("info", nlohmann::json::array());
  call("calculate_vm_cloud_properties", {{{"cpu", 1}, {"ram", 256}, {"ephemeral_disk_size", 128}}});
  call("current_vm_id", nlohmann::json::array());  // fails off-director; its error is scanned
  const auto stemcell = call("create_stemcell", {image, props});
  ASSERT_TRUE(stemcell["error"].is_null());
  const nlohmann::json networks{{"private",
                                 {{"type", "manual"},
                                  {"ip", "10.244.0.11"},
                                  {"netmask", "255.255.255.0"},
                                  {"gateway", "10.244.0.1"},
                                  {"default", {"dns", "gateway"}},
                                  {"cloud_properties", {{"name", network_name()}}}}}};
  nlohmann::json created;
  {
    Ipv6Guard quiet;
    created = call("create_vm", {"agent-" + random_hex(8),
                                 stemcell["result"],
                                 {{"cpu", 1}, {"ram", 256}},
                                 networks,
                                 nlohmann::json::array(),
                                 vm_env});
  }
  ASSERT_TRUE(created["error"].is_null());
  const std::string vm = created["result"].at(0);
  expect_silent_taps(vm);

  // The config drive: a 0600 volume.
  const auto drive = find_volume(volume_name(vm) + "-config");
  ASSERT_TRUE(drive.has_value());
  virt::OwnedCString drive_path{virStorageVolGetPath(drive->get())};
  struct stat st {};
  ASSERT_EQ(::stat(drive_path.get(), &st), 0) << drive_path.get();
  EXPECT_EQ(st.st_mode & 07777, 0600U) << drive_path.get();
  virt::OwnedCString drive_xml{virStorageVolGetXMLDesc(drive->get(), 0)};
  EXPECT_NE(std::string{drive_xml.get()}.find("<mode>0600</mode>"), std::string::npos)
      << drive_xml.get();

  call("has_vm", {vm});
  call("set_vm_metadata", {vm, {{"director", "e2e"}, {"deployment", "secrets"}}});
  const std::string disk = call("create_disk", {16, nlohmann::json::object(), vm})["result"];
  call("set_disk_metadata", {disk, {{"deployment", "secrets"}}});
  call("resize_disk", {disk, 32});
  call("update_disk", {disk, 48, nlohmann::json::object()});
  call("attach_disk", {vm, disk});
  call("get_disks", {vm});
  call("has_disk", {disk});
  const auto snapshot = call("snapshot_disk", {disk, {{"deployment", "secrets"}}});
  if (snapshot["result"].is_string())
    call("delete_snapshot", nlohmann::json::array({snapshot["result"]}));
  call("reboot_vm", {vm});
  call("detach_disk", {vm, disk});

  for (const bool inactive : {false, true}) {
    pugi::xml_document doc;
    domain_xml(vm, doc, inactive);
    std::ostringstream text;
    doc.save(text);
    expect_clean(text.str(), inactive ? "persistent domain XML" : "live domain XML");
  }
  expect_clean(read_whole_file(console_log(vm)), "console log");

  EXPECT_TRUE(call("delete_vm", {vm})["error"].is_null());
  EXPECT_FALSE(volume_exists(volume_name(vm) + "-config")) << "config drive left";
  EXPECT_FALSE(fs::exists(drive_path.get())) << drive_path.get();
  call("delete_disk", {disk});
  call("delete_stemcell", nlohmann::json::array({stemcell["result"]}));
  EXPECT_TRUE(leftovers().empty());
  EXPECT_TRUE(m_saw_debug) << "no call logged at debug level";
}

}  // namespace
}  // namespace cpi::testing::e2e
