#include "config/cli.hpp"

#include "yaml/units.hpp"

#include <algorithm>
#include <charconv>
#include <string_view>

namespace cacheproxy::config {
namespace {

/// A flag that takes a value: its name, what the value looks like, and where it goes.
struct ValueFlag {
    std::string_view name;
    std::string_view hint;
    std::optional<std::string> CliOptions::*target;  ///< nullptr for --config and --threads
};

constexpr ValueFlag value_flags[] = {
    {"--config", "FILE", nullptr},
    {"--listen", "HOST:PORT", &CliOptions::listen},
    {"--upstream", "http://HOST:PORT", &CliOptions::upstream},
    {"--admin", "HOST:PORT", &CliOptions::admin},
    {"--threads", "N", nullptr},
    {"--log-level", "LEVEL", &CliOptions::log_level},
};

/// Which flag answers for an error validate() reports under `key`, if it was given.
std::optional<std::string> flag_for(const CliOptions& cli, const std::string& key) {
    if (key == "listen" && cli.listen) return "--listen";
    if (key == "upstream.url" && cli.upstream) return "--upstream";
    if ((key == "admin.listen" || key == "admin.token") && cli.admin) return "--admin";
    if (key == "threads" && cli.threads) return "--threads";
    if (key == "logging.level" && cli.log_level) return "--log-level";
    return std::nullopt;
}

std::optional<unsigned> parse_unsigned(std::string_view text) {
    unsigned value = 0;
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc{} || ptr != end) return std::nullopt;
    return value;
}

}  // namespace

std::optional<std::string> parse_cli(int argc, char** argv, CliOptions& out) {
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "-h") arg = "--help";
        if (!arg.starts_with("--")) return "unexpected argument \"" + std::string(arg) + "\" (see --help)";

        auto eq = arg.find('=');
        std::string name(arg.substr(0, eq));
        std::optional<std::string_view> value;
        if (eq != std::string_view::npos) value = arg.substr(eq + 1);

        bool* toggle = name == "--check" ? &out.check : name == "--help" ? &out.help : name == "--version" ? &out.version : nullptr;
        if (toggle) {
            if (value) return name + " takes no value";
            *toggle = true;
            continue;
        }

        auto flag = std::find_if(std::begin(value_flags), std::end(value_flags),
                                 [&](const ValueFlag& f) { return f.name == name; });
        if (flag == std::end(value_flags)) return "unknown option " + name + " (see --help)";
        if (!value && i + 1 < argc && !std::string_view(argv[i + 1]).starts_with("--")) value = argv[++i];
        if (!value || value->empty()) return name + " needs a value (" + std::string(flag->hint) + ")";

        if (flag->target) {
            out.*(flag->target) = std::string(*value);
        } else if (name == "--config") {
            out.config_path = std::string(*value);
        } else {  // --threads
            auto n = parse_unsigned(*value);
            if (!n) return "--threads expects a number (0 = one per core), got \"" + std::string(*value) + "\"";
            out.threads = *n;
        }
    }
    return std::nullopt;
}

std::optional<ConfigError> apply_overrides(const CliOptions& cli, Config& cfg) {
    auto error = [](std::string flag, std::string message) {
        return ConfigError{"command line", 0, 0, std::move(flag), std::move(message)};
    };
    if (cli.listen)
        if (auto why = parse_host_port(*cli.listen, cfg.listen))
            return error("--listen", "bad address \"" + *cli.listen + "\": " + *why);
    if (cli.upstream) {
        HostPort upstream;
        if (auto why = parse_http_url(*cli.upstream, upstream))
            return error("--upstream", "bad URL \"" + *cli.upstream + "\": " + *why);
        cfg.upstream.url = *cli.upstream;
        cfg.upstream.host = upstream.host;
        cfg.upstream.port = upstream.port;
    }
    if (cli.admin) {
        if (auto why = parse_host_port(*cli.admin, cfg.admin.listen))
            return error("--admin", "bad address \"" + *cli.admin + "\": " + *why);
        cfg.admin.enabled = true;  // naming an address asks for the endpoint
    }
    if (cli.threads) cfg.threads = *cli.threads;
    if (cli.log_level) cfg.logging.level = *cli.log_level;

    auto invalid = validate(cfg);
    if (!invalid) return std::nullopt;
    if (auto flag = flag_for(cli, invalid->key)) return error(*flag, invalid->message);
    return invalid;
}

std::string usage() {
    return "Usage: cacheproxy [options]\n"
           "\n"
           "A caching reverse proxy in front of the legacy trading API. Only the routes\n"
           "named in the rules file are cached; every other request passes through.\n"
           "\n"
           "Options:\n"
           "  --config FILE        configuration file (default: config/cacheproxy.yaml)\n"
           "  --check              read and check the configuration and rules, print them, exit\n"
           "  --listen HOST:PORT   where clients connect (overrides listen; port 0 = any free port)\n"
           "  --upstream URL       the legacy app, http://HOST:PORT (overrides upstream.url)\n"
           "  --admin HOST:PORT    admin endpoint address, and turn it on (overrides admin.listen)\n"
           "  --threads N          worker threads, 0 = one per core (overrides threads)\n"
           "  --log-level LEVEL    trace, debug, info, warn, error, critical or off (overrides logging.level)\n"
           "  --help, -h           show this help and exit\n"
           "  --version            print the version and exit\n"
           "\n"
           "Values go as \"--flag value\" or \"--flag=value\".\n";
}

}  // namespace cacheproxy::config
