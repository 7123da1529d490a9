#pragma once
/// A proxy configuration written to files and loaded, for the tests that run
/// the proxy in-process (tests/session/). Header only: unit_tests compiles no
/// tests/support sources.

#include "config/config.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>

#include <unistd.h>

namespace cacheproxy::test_config {

/// rules.yaml and proxy.yaml in a folder of their own under the temp folder
/// (removed with this), and the configuration they load to (a failure to
/// load is a test failure). Outlives whatever holds a reference to config().
class ConfigFiles {
public:
    /// `proxy_yaml` is proxy.yaml without its `rules:` line (added: rules.yaml).
    ConfigFiles(std::string_view name, std::string_view rules_yaml, std::string_view proxy_yaml)
        : dir_(std::filesystem::temp_directory_path() / (std::string(name) + "_" + std::to_string(::getpid()))) {
        std::filesystem::create_directories(dir_);
        std::ofstream(dir_ / "rules.yaml") << rules_yaml;
        std::ofstream(dir_ / "proxy.yaml") << proxy_yaml << "rules: rules.yaml\n";
        if (auto err = config::load_config((dir_ / "proxy.yaml").string(), cfg_)) ADD_FAILURE() << err->message;
    }
    ~ConfigFiles() {
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    ConfigFiles(const ConfigFiles&) = delete;
    ConfigFiles& operator=(const ConfigFiles&) = delete;

    const config::Config& config() const { return cfg_; }

private:
    std::filesystem::path dir_;
    config::Config cfg_;
};

}  // namespace cacheproxy::test_config
