#include "cpi/tools/cli.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

#include "cpi/cloud/driver_loader.hpp"

namespace cpi::tools {
namespace {

CLI::App* subcommand(CLI::App& app, ToolRequest& request, const char* name,
                     const char* description) {
  CLI::App* sub = app.add_subcommand(name, description);
  sub->add_option("-c,--config", request.config_path,
                  "CPI config file (JSON), as the BOSH job renders it");
  sub->add_flag("--json", request.json, "print one JSON document instead of text");
  sub->callback([&request, name] { request.tool = name; });
  return sub;
}

}  // namespace

void add_tool_commands(CLI::App& app, ToolRequest& request) {
  subcommand(app, request, "doctor",
             "check the config, the libvirt connection, KVM, storage pool, network and volume "
             "streams; exit 1 when a check fails");

  CLI::App* inspect =
      subcommand(app, request, "inspect",
                 "show VMs, disks, snapshots or stemcells by CID; without a CID, every object "
                 "this CPI owns, with orphans flagged");
  inspect->add_option("cid", request.cids, "vm-..., disk-..., snap-... or sc-... CIDs");
  inspect->add_option("--lines", request.log_lines, "console log lines to show (default 20)")
      ->check(CLI::Range(0, 100000));
  inspect
      ->add_option("--min-age", request.min_age_seconds,
                   "mark orphans changed less than this many seconds ago as recent (600)")
      ->check(CLI::NonNegativeNumber);

  CLI::App* cleanup =
      subcommand(app, request, "cleanup",
                 "delete orphans: VM volumes without their VM, VMs whose create_vm never "
                 "finished (with their VM volumes), .meta volumes without their disk, snapshot "
                 "or stemcell (never a persistent disk or stemcell)");
  cleanup->add_flag("--orphans", request.orphans, "delete the orphans inspect flags")->required();
  cleanup->add_flag("--dry-run", request.dry_run, "only list what would be deleted");
  cleanup
      ->add_option("--min-age", request.min_age_seconds,
                   "spare orphans changed less than this many seconds ago (default 600: a "
                   "create_vm may be under way)")
      ->check(CLI::NonNegativeNumber);
  for (CLI::App* sub : {inspect, cleanup}) {
    sub->add_option("--incomplete-age", request.incomplete_age_seconds,
                    "a VM whose create_vm has not finished for this many seconds is an orphan "
                    "(default 3600)")
        ->check(CLI::NonNegativeNumber);
  }
}

int run_tool_command(const ToolRequest& request) {
  RunToolFunction run = nullptr;
  try {
    run = reinterpret_cast<RunToolFunction>(cloud::load_driver_symbol(k_run_tool_symbol));
  } catch (const std::exception& e) {
    std::cerr << "cpi " << request.tool << ": " << e.what() << '\n';
    return k_exit_error;
  }
  return run(tool_request_text(request).c_str());
}

}  // namespace cpi::tools
