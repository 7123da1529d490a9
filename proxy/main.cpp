/// cacheproxy: a transparent caching reverse proxy in front of the legacy
/// trading webapp. This file only wires the command line, the configuration,
/// logging and the server together.

#include "app/server.hpp"
#include "config/cli.hpp"
#include "config/config.hpp"
#include "log/logging.hpp"

#include <spdlog/spdlog.h>

#include <iostream>

int main(int argc, char** argv) {
    using namespace cacheproxy;

    config::CliOptions cli;
    if (auto err = config::parse_cli(argc, argv, cli)) {
        std::cerr << "cacheproxy: " << *err << "\n\n" << config::usage();
        return 2;
    }
    if (cli.help) {
        std::cout << config::usage();
        return 0;
    }
    if (cli.version) {
        std::cout << "cacheproxy " << CACHEPROXY_VERSION << "\n";
        return 0;
    }

    config::Config cfg;
    if (auto err = config::load_config(cli.config_path, cfg)) {
        std::cerr << "cacheproxy: configuration refused: " << err->to_string() << "\n";
        return 2;
    }
    if (auto err = config::apply_overrides(cli, cfg)) {
        std::cerr << "cacheproxy: configuration refused: " << err->to_string() << "\n";
        return 2;
    }
    if (cli.check) {
        std::cout << config::describe(cfg) << "configuration OK\n";
        return 0;
    }

    log::setup(cfg.logging);
    // SIGHUP re-reads the same files, with the same command-line overrides.
    app::Server server(cfg, [cli](config::Config& next) -> std::optional<config::ConfigError> {
        if (auto err = config::load_config(cli.config_path, next)) return err;
        return config::apply_overrides(cli, next);
    });
    if (auto err = server.start()) {
        spdlog::critical("cannot start: {}", *err);
        return 1;
    }
    return server.run();
}
