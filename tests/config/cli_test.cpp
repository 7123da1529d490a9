#include "config/cli.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using cacheproxy::config::apply_overrides;
using cacheproxy::config::CliOptions;
using cacheproxy::config::Config;
using cacheproxy::config::parse_cli;
using cacheproxy::config::usage;

namespace {

/// parse_cli() over "cacheproxy" + `args`; returns its error message.
std::optional<std::string> parse(std::vector<std::string> args, CliOptions& out) {
    args.insert(args.begin(), "cacheproxy");
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    return parse_cli(static_cast<int>(args.size()), argv.data(), out);
}

CliOptions parse_ok(std::vector<std::string> args) {
    CliOptions out;
    auto error = parse(std::move(args), out);
    EXPECT_FALSE(error.has_value()) << *error;
    return out;
}

std::string parse_error(std::vector<std::string> args) {
    CliOptions out;
    auto error = parse(std::move(args), out);
    EXPECT_TRUE(error.has_value());
    return error.value_or("");
}

}  // namespace

TEST(CliTest, NoArgumentsGiveTheDefaults) {
    CliOptions cli = parse_ok({});
    EXPECT_EQ(cli.config_path, "config/cacheproxy.yaml");
    EXPECT_FALSE(cli.check);
    EXPECT_FALSE(cli.help);
    EXPECT_FALSE(cli.version);
    EXPECT_FALSE(cli.listen || cli.upstream || cli.admin || cli.log_level || cli.threads);
}

TEST(CliTest, EachFlagWithASeparateValue) {
    CliOptions cli = parse_ok({"--config", "/etc/cp.yaml", "--check", "--listen", "0.0.0.0:80", "--upstream",
                               "http://10.0.0.1:8765", "--admin", "127.0.0.1:9999", "--threads", "8", "--log-level",
                               "debug", "--help", "--version"});
    EXPECT_EQ(cli.config_path, "/etc/cp.yaml");
    EXPECT_TRUE(cli.check);
    EXPECT_EQ(cli.listen, "0.0.0.0:80");
    EXPECT_EQ(cli.upstream, "http://10.0.0.1:8765");
    EXPECT_EQ(cli.admin, "127.0.0.1:9999");
    EXPECT_EQ(cli.threads, 8u);
    EXPECT_EQ(cli.log_level, "debug");
    EXPECT_TRUE(cli.help);
    EXPECT_TRUE(cli.version);
    EXPECT_TRUE(parse_ok({"-h"}).help);
}

TEST(CliTest, EachFlagWithEquals) {
    CliOptions cli = parse_ok({"--config=/etc/cp.yaml", "--listen=0.0.0.0:80", "--upstream=http://h:1",
                               "--admin=[::1]:9", "--threads=0", "--log-level=warn"});
    EXPECT_EQ(cli.config_path, "/etc/cp.yaml");
    EXPECT_EQ(cli.listen, "0.0.0.0:80");
    EXPECT_EQ(cli.upstream, "http://h:1");
    EXPECT_EQ(cli.admin, "[::1]:9");
    EXPECT_EQ(cli.threads, 0u);
    EXPECT_EQ(cli.log_level, "warn");
}

TEST(CliTest, LaterFlagWins) { EXPECT_EQ(parse_ok({"--threads", "2", "--threads=3"}).threads, 3u); }

TEST(CliTest, UnknownFlag) {
    EXPECT_EQ(parse_error({"--check", "--bogus"}), "unknown option --bogus (see --help)");
    EXPECT_EQ(parse_error({"--listen-on=1"}), "unknown option --listen-on (see --help)");
    EXPECT_EQ(parse_error({"-x"}), "unexpected argument \"-x\" (see --help)");
    EXPECT_EQ(parse_error({"config.yaml"}), "unexpected argument \"config.yaml\" (see --help)");
}

TEST(CliTest, MissingValue) {
    EXPECT_EQ(parse_error({"--listen"}), "--listen needs a value (HOST:PORT)");
    EXPECT_EQ(parse_error({"--config", "--check"}), "--config needs a value (FILE)");
    EXPECT_EQ(parse_error({"--upstream="}), "--upstream needs a value (http://HOST:PORT)");
    EXPECT_EQ(parse_error({"--threads"}), "--threads needs a value (N)");
}

TEST(CliTest, BadValues) {
    EXPECT_EQ(parse_error({"--threads", "two"}), "--threads expects a number (0 = one per core), got \"two\"");
    EXPECT_EQ(parse_error({"--threads=-1"}), "--threads expects a number (0 = one per core), got \"-1\"");
    EXPECT_EQ(parse_error({"--check=yes"}), "--check takes no value");
}

TEST(CliTest, OverridesAreApplied) {
    CliOptions cli = parse_ok({"--listen", "0.0.0.0:0", "--upstream=http://legacy:9000/", "--admin", "[::1]:9902",
                               "--threads", "4", "--log-level", "trace"});
    Config cfg;
    cfg.admin.enabled = false;
    auto error = apply_overrides(cli, cfg);
    ASSERT_FALSE(error.has_value()) << error->to_string();
    EXPECT_EQ(cfg.listen.host, "0.0.0.0");
    EXPECT_EQ(cfg.listen.port, 0);
    EXPECT_EQ(cfg.upstream.url, "http://legacy:9000/");
    EXPECT_EQ(cfg.upstream.host, "legacy");
    EXPECT_EQ(cfg.upstream.port, 9000);
    EXPECT_TRUE(cfg.admin.enabled);
    EXPECT_EQ(cfg.admin.listen.host, "::1");
    EXPECT_EQ(cfg.admin.listen.port, 9902);
    EXPECT_EQ(cfg.threads, 4u);
    EXPECT_EQ(cfg.logging.level, "trace");
}

TEST(CliTest, NoOverridesLeaveTheFileAlone) {
    Config cfg;
    cfg.threads = 3;
    ASSERT_FALSE(apply_overrides(CliOptions{}, cfg).has_value());
    EXPECT_EQ(cfg.threads, 3u);
    EXPECT_EQ(cfg.listen.port, 8080);
}

TEST(CliTest, OverridesAreValidatedAndNameTheFlag) {
    struct Case {
        std::vector<std::string> args;
        std::string flag;
        std::string message_part;
    };
    const Case cases[] = {
        {{"--listen", "127.0.0.1"}, "--listen", "missing :PORT"},
        {{"--upstream", "https://legacy:443"}, "--upstream", "https is not supported"},
        {{"--upstream", "http://legacy:8765/api"}, "--upstream", "path"},
        {{"--upstream", "http://legacy:0"}, "--upstream", "1..65535"},
        {{"--admin", "nohost"}, "--admin", "missing :PORT"},
        {{"--admin", "0.0.0.0:9901"}, "--admin", "admin.token"},
        {{"--threads", "300"}, "--threads", "at most 256"},
        {{"--log-level", "loud"}, "--log-level", "unknown level \"loud\""},
    };
    for (const Case& c : cases) {
        Config cfg;
        auto error = apply_overrides(parse_ok(c.args), cfg);
        ASSERT_TRUE(error.has_value()) << c.args[0] << " " << c.args[1];
        EXPECT_EQ(error->file, "command line");
        EXPECT_EQ(error->key, c.flag);
        EXPECT_NE(error->message.find(c.message_part), std::string::npos) << error->message;
        EXPECT_EQ(error->to_string().rfind("command line:0:0: " + c.flag + ": ", 0), 0u) << error->to_string();
    }
}

TEST(CliTest, PublicAdminIsFineWithATokenFromTheFile) {
    Config cfg;
    cfg.admin.token = "s3cret";
    EXPECT_FALSE(apply_overrides(parse_ok({"--admin", "0.0.0.0:9901"}), cfg).has_value());
}

TEST(CliTest, FileErrorsNotCausedByAFlagKeepTheirKey) {
    Config cfg;
    cfg.source_path = "cacheproxy.yaml";
    cfg.logging.max_files = 0;
    auto error = apply_overrides(parse_ok({"--threads", "2"}), cfg);
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->file, "cacheproxy.yaml");
    EXPECT_EQ(error->key, "logging.max_files");
}

TEST(CliTest, UsageNamesEveryFlag) {
    std::string text = usage();
    for (const char* flag : {"--config FILE", "--check", "--listen HOST:PORT", "--upstream URL", "--admin HOST:PORT",
                             "--threads N", "--log-level LEVEL", "--help", "--version"})
        EXPECT_NE(text.find(flag), std::string::npos) << flag;
}
