#pragma once
/// The command line: which config file to read, --check, and a few overrides
/// of the file (listen address, upstream, admin address, threads, log level).

#include "config/config.hpp"

#include <optional>
#include <string>

namespace cacheproxy::config {

/// What the command line asked for; overrides are unset when not given.
struct CliOptions {
    std::string config_path = "config/cacheproxy.yaml";
    bool check = false, help = false, version = false;
    std::optional<std::string> listen, upstream, admin, log_level;
    std::optional<unsigned> threads;
};

/// Parses argv ("--flag value" or "--flag=value"); returns an error message on
/// bad usage (unknown flag, missing value, a value given to --check...).
std::optional<std::string> parse_cli(int argc, char** argv, CliOptions& out);

/// Applies --listen/--upstream/--admin/--threads/--log-level over the loaded file,
/// then validates the result; errors name the flag as key and "command line" as file.
std::optional<ConfigError> apply_overrides(const CliOptions& cli, Config& cfg);

/// The --help text.
std::string usage();

}  // namespace cacheproxy::config
