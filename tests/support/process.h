// Runs a command (argv, no shell) and captures its exit status, stdout and stderr.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace pylon::test {

struct ProcessResult {
    int exit_code = -1;  // -1 when killed by a signal
    std::string out;
    std::string err;
};

// `stdin_data` is written to the child's standard input. `env` adds variables.
ProcessResult run_process(const std::vector<std::string>& argv, const std::string& stdin_data = {},
                          const std::map<std::string, std::string>& env = {});

// Path of a Pylon binary in the build tree (build/bin/NAME).
std::string pylon_binary(const std::string& name = "pylon");

}  // namespace pylon::test
