#include "cpi/tools/local_checks.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>
#include <system_error>
#include <vector>

#include "cpi/errors.hpp"
#include "cpi/util/private_dir.hpp"

namespace cpi::tools {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t k_max_output = 64U << 10;
constexpr std::int64_t k_day = 24 * 60 * 60;
constexpr std::int64_t k_warn_days = 30;
constexpr std::streamoff k_tail_bytes = 256 << 10;

struct PipeCloser {
  void operator()(FILE* pipe) const noexcept {
    if (pipe != nullptr) {
      ::pclose(pipe);
    }
  }
};

std::string value_after(const std::string& output, const std::string& key) {
  std::istringstream lines{output};
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(key, 0) == 0) {
      return line.substr(key.size());
    }
  }
  return {};
}

}  // namespace

std::optional<fs::path> find_program(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs{path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin"};
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) {
      continue;
    }
    const fs::path candidate = fs::path{dir} / program;
    if (::access(candidate.c_str(), X_OK) == 0 && !fs::is_directory(candidate)) {
      return candidate;
    }
  }
  return std::nullopt;
}

CommandResult run_command(const std::string& command) {
  CommandResult result;
  const std::string full = "(" + command + ") </dev/null 2>/dev/null";
  std::unique_ptr<FILE, PipeCloser> pipe{::popen(full.c_str(), "r")};
  if (!pipe) {
    return result;
  }
  char buffer[4096];
  std::size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, pipe.get())) > 0) {
    if (result.output.size() < k_max_output) {
      result.output.append(buffer, got);
    }
  }
  const int status = ::pclose(pipe.release());
  result.status = (status != -1 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    out += c == '\'' ? std::string{"'\\''"} : std::string(1, c);
  }
  return out + "'";
}

std::optional<std::int64_t> parse_openssl_time(const std::string& text) {
  std::tm tm{};
  const char* end = ::strptime(text.c_str(), "%b %d %H:%M:%S %Y", &tm);
  if (end == nullptr) {
    return std::nullopt;
  }
  return static_cast<std::int64_t>(::timegm(&tm));
}

std::string format_date(std::int64_t epoch_seconds) {
  const auto t = static_cast<std::time_t>(epoch_seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%d", &tm);
  return buffer;
}

std::optional<CertificateDates> certificate_dates(const std::string& pem) {
  const auto openssl = find_program("openssl");
  if (!openssl) {
    return std::nullopt;
  }
  const util::PrivateDir scratch{"cpi-doctor"};
  const auto file = scratch.write_file("cert.pem", pem);
  const auto result =
      run_command(shell_quote(openssl->string()) +
                  " x509 -noout -startdate -enddate -subject -in " + shell_quote(file.string()));
  const auto not_before = parse_openssl_time(value_after(result.output, "notBefore="));
  const auto not_after = parse_openssl_time(value_after(result.output, "notAfter="));
  if (result.status != 0 || !not_before || !not_after) {
    throw CloudError("openssl cannot read the certificate (is it PEM?)");
  }
  return CertificateDates{*not_before, *not_after, value_after(result.output, "subject=")};
}

Check certificate_check(const std::string& name, const std::string& what, const std::string& pem,
                        std::int64_t now) {
  std::optional<CertificateDates> dates;
  try {
    dates = certificate_dates(pem);
  } catch (const std::exception& e) {
    return {name, Verdict::fail, what + ": " + e.what(),
            "check that " + what + " holds a PEM certificate (-----BEGIN CERTIFICATE-----)"};
  }
  if (!dates) {
    return {name, Verdict::warn, what + ": validity not checked (no openssl command)",
            "install openssl to let doctor check certificate dates"};
  }
  return certificate_verdict(name, what, *dates, now);
}

Check certificate_verdict(const std::string& name, const std::string& what,
                          const CertificateDates& dates, std::int64_t now) {
  const std::string subject = dates.subject.empty() ? "" : " (" + dates.subject + ")";
  if (now < dates.not_before) {
    return {name, Verdict::fail,
            what + " is not valid before " + format_date(dates.not_before) + subject,
            "check this machine's clock, or issue a certificate valid now"};
  }
  if (now > dates.not_after) {
    return {name, Verdict::fail, what + " expired on " + format_date(dates.not_after) + subject,
            "issue a new certificate and update " + what};
  }
  const std::int64_t days = (dates.not_after - now) / k_day;
  if (days < k_warn_days) {
    return {name, Verdict::warn,
            what + " expires on " + format_date(dates.not_after) + " (in " + std::to_string(days) +
                " days)" + subject,
            "renew it before then: libvirt refuses expired certificates"};
  }
  return {name, Verdict::ok, what + " valid until " + format_date(dates.not_after) + subject, ""};
}

std::string tail_file(const fs::path& file, int lines) {
  std::ifstream in{file, std::ios::binary};
  if (!in) {
    throw std::system_error(errno, std::generic_category(), "reading '" + file.string() + "'");
  }
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff start = size > k_tail_bytes ? size - k_tail_bytes : 0;
  in.seekg(start);
  std::string text{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
  if (!text.empty() && text.back() == '\n') {
    text.pop_back();
  }
  if (lines <= 0 || text.empty()) {
    return {};
  }
  std::size_t from = 0;  // the whole text unless it has more than `lines` lines
  int found = 0;
  for (std::size_t at = text.size(); at > 0;) {
    const std::size_t newline = text.rfind('\n', at - 1);
    if (newline == std::string::npos) break;
    if (++found == lines) {
      from = newline + 1;
      break;
    }
    at = newline;
  }
  return text.substr(from) + "\n";
}

}  // namespace cpi::tools
