#pragma once
// Talking to the real BOSH agent in a guest (tests/e2e/agent-stemcell) under the tier's NETWORK
// RULE. GuestSubnet is a network namespace made by the test with a veth pair whose other end is a
// port of the isolated libvirt bridge: the guest subnet's gateway address exists only inside that
// namespace, the bridge and the host end of the veth have no address and IPv6 off, so the host
// itself still talks to nobody, and the guest reaches nothing but the namespace. Mbus is the
// agent's HTTPS message bus, reached with curl run inside the namespace, as the director or
// `bosh create-env` would post to it.

#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "e2e/support/e2e_console.hpp"
#include "e2e/support/e2e_env.hpp"
#include "e2e/support/e2e_host.hpp"
#include "support/run_cpi.hpp"

namespace cpi::testing::e2e {

inline const std::vector<std::string>& tool_env() {
  static const std::vector<std::string> env{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"};
  return env;
}

// Runs a host tool; throws with its output when it fails.
inline std::string must_run(const std::vector<std::string>& argv, const std::string& input = "") {
  const auto run = run_process(argv.at(0), {argv.begin() + 1, argv.end()}, input, tool_env(),
                               std::chrono::seconds(120));
  if (run.exit_code != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += a + " ";
    throw std::runtime_error(cmd + "failed (" + std::to_string(run.exit_code) + "): " + run.err +
                             run.out);
  }
  return run.out;
}

inline std::string ip_binary() {
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  throw std::runtime_error("no ip(8) (iproute2)");
}

// tests/e2e/agent-stemcell/build.sh into `out_dir` (cached by its inputs' hashes under
// /var/cache/bosh-libvirt-cpi; the first build debootstraps, minutes).
inline CpiRun build_agent_stemcell(const std::string& source_dir, const std::string& out_dir) {
  return run_process("/bin/bash", {source_dir + "/tests/e2e/agent-stemcell/build.sh", out_dir}, "",
                     tool_env(), std::chrono::seconds(3600));
}

// Network namespaces (and their veths) of e2e runs that died; call under the host lock, when no
// other run is alive.
inline void remove_stale_namespaces() {
  const auto ip = ip_binary();
  const auto list = run_process(ip, {"netns", "list"}, "", tool_env());
  std::istringstream lines{list.out};
  for (std::string line; std::getline(lines, line);) {
    const std::string name = line.substr(0, line.find(' '));
    if (name.rfind(k_name_root, 0) != 0) continue;
    run_process(ip, {"link", "del", name.substr(name.size() - 8) + "h"}, "", tool_env());
    run_process(ip, {"netns", "del", name}, "", tool_env());
    std::printf("[e2e] stale run: removed network namespace %s\n", name.c_str());
  }
}

// 10.244.<octet>.0/24 inside namespace `name`, bridged onto `bridge`. Removed (namespace, veth)
// when it goes away.
class GuestSubnet {
 public:
  GuestSubnet(const std::string& bridge, const std::string& name, int octet)
      : m_ip(ip_binary()), m_ns(name), m_host_end(name.substr(name.size() - 8) + "h"),
        m_ns_end(name.substr(name.size() - 8) + "n"), m_octet(octet) {
    remove();  // a run that died left it
    Ipv6Guard quiet;  // both veth ends come up without IPv6 in the host namespace
    must_run({m_ip, "netns", "add", m_ns});
    must_run({m_ip, "link", "add", m_host_end, "type", "veth", "peer", "name", m_ns_end});
    if (!Ipv6Guard::disable_on(m_host_end)) throw std::runtime_error("IPv6 on " + m_host_end);
    must_run({m_ip, "link", "set", m_ns_end, "netns", m_ns});
    // A device moved into a namespace gets that namespace's IPv6 defaults: off there too, before
    // any device of the namespace is up (these knobs belong to the namespace, not the host).
    exec({"/bin/sh", "-c",
          "for k in all default " + m_ns_end +
              "; do echo 1 >/proc/sys/net/ipv6/conf/$k/disable_ipv6; done"});
    must_run({m_ip, "-n", m_ns, "addr", "add", gateway() + "/24", "dev", m_ns_end});
    must_run({m_ip, "-n", m_ns, "link", "set", "lo", "up"});
    must_run({m_ip, "-n", m_ns, "link", "set", m_ns_end, "up"});
    must_run({m_ip, "link", "set", m_host_end, "master", bridge});
    must_run({m_ip, "link", "set", m_host_end, "up"});
  }
  GuestSubnet(const GuestSubnet&) = delete;
  GuestSubnet& operator=(const GuestSubnet&) = delete;
  ~GuestSubnet() { remove(); }

  const std::string& ns() const { return m_ns; }
  const std::string& host_end() const { return m_host_end; }
  std::string address(int host) const {
    return "10.244." + std::to_string(m_octet) + "." + std::to_string(host);
  }
  std::string gateway() const { return address(1); }

  // Runs argv inside the namespace.
  CpiRun exec(const std::vector<std::string>& argv, const std::string& input = "",
              std::chrono::seconds timeout = std::chrono::seconds(120)) const {
    std::vector<std::string> args{"netns", "exec", m_ns};
    args.insert(args.end(), argv.begin(), argv.end());
    return run_process(m_ip, args, input, tool_env(), timeout);
  }

  // The MAC the namespace learnt for `ip` (ARP), or "".
  std::string neighbour_mac(const std::string& ip) const {
    const auto run = exec({m_ip, "neigh", "show", ip});
    std::smatch m;
    static const std::regex lladdr{"lladdr ([0-9a-f:]{17})"};
    return std::regex_search(run.out, m, lladdr) ? m[1].str() : "";
  }

  // Addresses on the host end of the veth (must stay none: the host never joins the subnet).
  std::string host_end_addresses() const {
    return must_run({m_ip, "-o", "addr", "show", "dev", m_host_end});
  }

 private:
  void remove() {
    run_process(m_ip, {"link", "del", m_host_end}, "", tool_env());
    run_process(m_ip, {"netns", "del", m_ns}, "", tool_env());
  }

  std::string m_ip, m_ns, m_host_end, m_ns_end;
  int m_octet;
};

// A GuestSubnet (10.244.1xx.0/24, the octet drawn at random) bridged onto libvirt network
// `network`, in a namespace named k_name_root + random hex.
inline std::unique_ptr<GuestSubnet> subnet_on_network(virConnect& conn, const std::string& network) {
  virt::Network net{virNetworkLookupByName(&conn, network.c_str())};
  if (!net) throw std::runtime_error("no libvirt network " + network);
  virt::OwnedCString bridge{virNetworkGetBridgeName(net.get())};
  if (!bridge) throw std::runtime_error("libvirt network " + network + " has no bridge");
  const int octet = 100 + static_cast<int>(std::stoul(random_hex(2), nullptr, 16) % 100);
  return std::make_unique<GuestSubnet>(bridge.get(), std::string{k_name_root} + random_hex(8),
                                       octet);
}

// A self-signed certificate for the agent's mbus listener at `ip` (the settings'
// env.bosh.mbus.cert), made with openssl into `dir`.
struct MbusCert {
  std::string certificate, private_key, ca_file;
};
inline MbusCert make_mbus_cert(const std::filesystem::path& dir, const std::string& ip) {
  const auto key = (dir / "mbus.key").string(), crt = (dir / "mbus.crt").string();
  must_run({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", crt, "-days", "2",
            "-subj", "/CN=" + ip, "-addext", "subjectAltName=IP:" + ip});
  ::chmod(key.c_str(), 0600);
  return {read_whole_file(crt), read_whole_file(key), crt};
}

// The agent's HTTPS mbus at https://<ip>:6868/agent, posted to from inside the subnet's namespace.
class Mbus {
 public:
  Mbus(const GuestSubnet& subnet, std::string ip, const std::string& user,
       const std::string& password, const std::filesystem::path& dir, std::string ca_file)
      : m_subnet(subnet), m_ip(std::move(ip)), m_ca(std::move(ca_file)),
        m_curl_config((dir / ("curl-" + m_ip + ".conf")).string()) {
    // The credentials go in a 0600 file, never on a command line.
    std::ofstream{m_curl_config} << "user = \"" << user << ":" << password << "\"\n";
    ::chmod(m_curl_config.c_str(), 0600);
  }

  // One message; returns the whole answer ({"value": ...} or {"exception": ...}). Throws when
  // the agent cannot be reached or answers something that is not JSON.
  nlohmann::json send(const std::string& method, const nlohmann::json& arguments) const {
    const nlohmann::json message{
        {"method", method}, {"arguments", arguments}, {"reply_to", "e2e-test"}};
    const auto run = m_subnet.exec(
        {"/usr/bin/curl", "-sS", "--max-time", "60", "--config", m_curl_config, "--cacert", m_ca,
         "-H", "Content-Type: application/json", "--data-binary", "@-",
         "https://" + m_ip + ":6868/agent"},
        message.dump());
    if (run.exit_code != 0) throw std::runtime_error("mbus " + method + ": " + run.err);
    auto answer = nlohmann::json::parse(run.out, nullptr, false);
    if (answer.is_discarded()) throw std::runtime_error("mbus " + method + " answered " + run.out);
    return answer;
  }

  // The value of a message; throws with the agent's exception.
  nlohmann::json value(const std::string& method, const nlohmann::json& arguments) const {
    const auto answer = send(method, arguments);
    if (!answer.contains("value")) {
      throw std::runtime_error("agent " + method + " failed: " + answer.dump());
    }
    return answer["value"];
  }

  // A long-running action (mount_disk, unmount_disk, ...): posts it, then polls get_task until
  // it is no longer running; returns its result, throws with its exception or after `timeout`.
  nlohmann::json task(const std::string& method, const nlohmann::json& arguments,
                      std::chrono::seconds timeout = std::chrono::seconds(600)) const {
    auto v = value(method, arguments);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (v.is_object() && v.value("state", "") == "running") {
      if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error("agent " + method + " still running after " +
                                 std::to_string(timeout.count()) + " s");
      }
      std::this_thread::sleep_for(std::chrono::seconds(1));
      v = value("get_task", nlohmann::json::array({v.at("agent_task_id")}));
    }
    return v;
  }

  // Pings until the agent answers "pong"; false after `timeout`.
  bool wait_pong(std::chrono::seconds timeout, std::string& last_error) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      try {
        if (value("ping", nlohmann::json::array()) == "pong") return true;
      } catch (const std::exception& e) {
        last_error = e.what();
      }
      std::this_thread::sleep_for(std::chrono::seconds(2));
    }
    return false;
  }

 private:
  const GuestSubnet& m_subnet;
  std::string m_ip, m_ca, m_curl_config;
};

// Waits until the console log at `path` has a line (at or after byte `from`) matching `pattern`;
// returns it, or throws with the log's tail after `timeout`.
inline std::string wait_console_line(const std::string& path, const std::regex& pattern,
                                     std::chrono::seconds timeout, std::size_t from = 0,
                                     const std::string& what = "") {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const std::string log = read_whole_file(path);
    if (log.size() > from) {
      std::size_t at = from;
      while (at < log.size()) {
        auto end = log.find('\n', at);
        if (end == std::string::npos) break;  // a line still being written
        std::string line = log.substr(at, end - at);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (std::regex_search(line, pattern)) return line;
        at = end + 1;
      }
    }
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("no console line for " + what + " in " + path + " after " +
                               std::to_string(timeout.count()) + " s; tail:\n" +
                               console_tail(path, 30));
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace cpi::testing::e2e
