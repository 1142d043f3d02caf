#pragma once
// What doctor and inspect look at on the machine the CPI runs on (no libvirt): programs on
// PATH, certificate validity dates (through the openssl command line), the tail of a log file.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "cpi/tools/report.hpp"

namespace cpi::tools {

// The first executable `program` in $PATH; nullopt when there is none.
std::optional<std::filesystem::path> find_program(const std::string& program);

// Runs `command` with /bin/sh, stdin from /dev/null, stderr discarded. Returns the exit status
// (-1 when it could not run or was killed) and what it printed on stdout (at most 64 KiB).
struct CommandResult {
  int status = -1;
  std::string output;
};
CommandResult run_command(const std::string& command);

// `text` in single quotes for /bin/sh.
std::string shell_quote(const std::string& text);

// openssl's time format ("Jan  2 03:04:05 2030 GMT") as seconds since the epoch.
std::optional<std::int64_t> parse_openssl_time(const std::string& text);

// "2030-01-02" (UTC).
std::string format_date(std::int64_t epoch_seconds);

struct CertificateDates {
  std::int64_t not_before = 0;
  std::int64_t not_after = 0;
  std::string subject;
};

// The validity of the first certificate in `pem`, read by `openssl x509`. nullopt when the
// openssl command is not installed; throws CloudError when openssl cannot read the PEM.
std::optional<CertificateDates> certificate_dates(const std::string& pem);

// The verdict on a certificate with `dates` at time `now`: fail when expired or not yet valid,
// warn when it expires within 30 days, ok otherwise. `what` names it in the detail
// ("libvirt.tls.ca_cert").
Check certificate_verdict(const std::string& name, const std::string& what,
                          const CertificateDates& dates, std::int64_t now);

// certificate_verdict on the dates of `pem`; fail when openssl cannot read it, warn when the
// openssl command is missing.
Check certificate_check(const std::string& name, const std::string& what, const std::string& pem,
                        std::int64_t now);

// The last `lines` lines of a local text file (read from its last 256 KiB). Throws
// std::system_error (with errno) when it cannot be read.
std::string tail_file(const std::filesystem::path& file, int lines);

}  // namespace cpi::tools
