// Shared pieces of the `kmm` tool's subcommands (kmm.cpp, top.cpp, campaign.cpp).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <unistd.h>

#include "kmm/machine.h"
#include "kmm/scenario.h"

namespace kmm::tool {

[[noreturn]] void usage_error(const std::string& msg);
std::string read_file(const std::string& path);
Scenario load_text(const std::string& path); // exits 2 with "FILE:LINE: ..." when malformed
bool wants_help(const std::vector<std::string>& args);

struct MachineArgs {
  Scenario s;
  std::vector<std::string> rest;
  bool have_file = false;
};
// [--boot LINE] [FILE.kmm] ARGS...
MachineArgs machine_args(const std::vector<std::string>& args, const char* cmd);
// Runs s, then fn with the machine still current. Returns the run's exit status.
int run_then(const Scenario& s, const std::function<void(Machine&)>& fn, bool quiet);

int cmd_top(std::vector<std::string> args);
int cmd_campaign(std::vector<std::string> args);

} // namespace kmm::tool
