#include "config/config.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <vector>
#include <string>

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using cacheproxy::config::Config;
using cacheproxy::config::ConfigError;
using cacheproxy::config::describe;
using cacheproxy::config::load_config;
using cacheproxy::config::validate;

namespace {

/// A fresh directory under the system temp dir, removed with everything in it.
class TempDir {
public:
    TempDir() {
        static int counter = 0;
        path_ = fs::temp_directory_path() /
                ("cacheproxy-config-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
        fs::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    /// Writes `text` to `name` (folders created) and returns the file's path.
    std::string write(const std::string& name, const std::string& text) const {
        fs::path file = path_ / name;
        fs::create_directories(file.parent_path());
        std::ofstream(file) << text;
        return file.string();
    }
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

const fs::path source_dir = fs::path(__FILE__).parent_path().parent_path().parent_path();

constexpr const char* one_route_rules =
    "routes:\n"
    "  - name: ticker\n"
    "    match: { path: /api/trading/ticker }\n"
    "    ttl: 5s\n"
    "    shared: true\n";

/// Loads `yaml` written to a fresh file; expects failure and returns the error.
ConfigError load_error(const std::string& yaml) {
    TempDir dir;
    std::string path = dir.write("cacheproxy.yaml", yaml);
    Config cfg;
    auto error = load_config(path, cfg);
    EXPECT_TRUE(error.has_value()) << "expected an error for:\n" << yaml;
    if (!error) return {};
    EXPECT_EQ(error->file, path);
    return *error;
}

/// Loads `yaml` written to a fresh file; expects success.
Config load_ok(const std::string& yaml) {
    TempDir dir;
    Config cfg;
    auto error = load_config(dir.write("cacheproxy.yaml", yaml), cfg);
    EXPECT_FALSE(error.has_value()) << error->to_string();
    return cfg;
}

/// Every field a config file can set, compared one by one.
void expect_same_settings(const Config& a, const Config& b) {
    EXPECT_EQ(a.listen.host, b.listen.host);
    EXPECT_EQ(a.listen.port, b.listen.port);
    EXPECT_EQ(a.threads, b.threads);
    EXPECT_EQ(a.upstream.url, b.upstream.url);
    EXPECT_EQ(a.upstream.host, b.upstream.host);
    EXPECT_EQ(a.upstream.port, b.upstream.port);
    EXPECT_EQ(a.upstream.max_connections, b.upstream.max_connections);
    EXPECT_EQ(a.upstream.max_idle_connections, b.upstream.max_idle_connections);
    EXPECT_EQ(a.server.trusted_proxies, b.server.trusted_proxies);
    EXPECT_EQ(a.upstream.idle_timeout, b.upstream.idle_timeout);
    EXPECT_EQ(a.upstream.connect_timeout, b.upstream.connect_timeout);
    EXPECT_EQ(a.upstream.response_timeout, b.upstream.response_timeout);
    EXPECT_EQ(a.upstream.health_path, b.upstream.health_path);
    EXPECT_EQ(a.upstream.health_interval, b.upstream.health_interval);
    EXPECT_EQ(a.upstream.health_timeout, b.upstream.health_timeout);
    EXPECT_EQ(a.limits.max_header_bytes, b.limits.max_header_bytes);
    EXPECT_EQ(a.limits.max_body_bytes, b.limits.max_body_bytes);
    EXPECT_EQ(a.limits.max_chunk_extension_bytes, b.limits.max_chunk_extension_bytes);
    EXPECT_EQ(a.limits.header_timeout, b.limits.header_timeout);
    EXPECT_EQ(a.limits.idle_timeout, b.limits.idle_timeout);
    EXPECT_EQ(a.limits.body_timeout, b.limits.body_timeout);
    EXPECT_EQ(a.limits.max_client_connections, b.limits.max_client_connections);
    EXPECT_EQ(a.limits.drain_timeout, b.limits.drain_timeout);
    EXPECT_EQ(a.logging.level, b.logging.level);
    EXPECT_EQ(a.logging.file, b.logging.file);
    EXPECT_EQ(a.logging.max_file_bytes, b.logging.max_file_bytes);
    EXPECT_EQ(a.logging.max_files, b.logging.max_files);
    EXPECT_EQ(a.logging.access_log, b.logging.access_log);
    EXPECT_EQ(a.compression.enabled, b.compression.enabled);
    EXPECT_EQ(a.compression.min_size, b.compression.min_size);
    EXPECT_EQ(a.compression.level, b.compression.level);
    EXPECT_EQ(a.compression.stream_level, b.compression.stream_level);
    EXPECT_EQ(a.admin.enabled, b.admin.enabled);
    EXPECT_EQ(a.admin.listen.host, b.admin.listen.host);
    EXPECT_EQ(a.admin.listen.port, b.admin.listen.port);
    EXPECT_EQ(a.admin.token, b.admin.token);
}

}  // namespace

TEST(ConfigTest, EmptyFileGivesTheDefaults) {
    for (const char* yaml : {"", "# nothing but a comment\n", "upstream:\nlimits:\n"}) {
        Config cfg = load_ok(yaml);
        expect_same_settings(cfg, Config{});
        EXPECT_EQ(cfg.rules_path, "");
        EXPECT_TRUE(cfg.rules.routes.empty());
    }
}

TEST(ConfigTest, AbsentKeysKeepTheirDefaults) {
    Config cfg = load_ok("upstream:\n  connect_timeout: 5s\n");
    EXPECT_EQ(cfg.upstream.connect_timeout, 5s);
    Config expected;
    expected.upstream.connect_timeout = 5s;
    expect_same_settings(cfg, expected);
}

TEST(ConfigTest, ReadsEveryKey) {
    Config cfg = load_ok(R"(listen: 0.0.0.0:0
threads: 4
upstream:
  url: http://10.0.0.5:9000/
  max_connections: 20
  idle_timeout: 1m
  connect_timeout: 500ms
  response_timeout: 20s
  health: { path: /ping, interval: 5s, timeout: 2s }
limits:
  max_header_bytes: 8KiB
  max_body_bytes: 2MB
  max_chunk_extension_bytes: 128
  header_timeout: 5s
  idle_timeout: 30s
  body_timeout: 10s
  max_client_connections: 500
  drain_timeout: 1h
logging: { level: debug, file: /var/log/cacheproxy.log, max_file_size: 1GiB, max_files: 3, access_log: false }
admin: { enabled: false, listen: "[::1]:9000", token: secret }
)");
    EXPECT_EQ(cfg.listen.host, "0.0.0.0");
    EXPECT_EQ(cfg.listen.port, 0);
    EXPECT_EQ(cfg.threads, 4u);
    EXPECT_EQ(cfg.upstream.url, "http://10.0.0.5:9000/");
    EXPECT_EQ(cfg.upstream.host, "10.0.0.5");
    EXPECT_EQ(cfg.upstream.port, 9000);
    EXPECT_EQ(cfg.upstream.max_connections, 20u);
    EXPECT_EQ(cfg.upstream.idle_timeout, 60s);
    EXPECT_EQ(cfg.upstream.connect_timeout, 500ms);
    EXPECT_EQ(cfg.upstream.response_timeout, 20s);
    EXPECT_EQ(cfg.upstream.health_path, "/ping");
    EXPECT_EQ(cfg.upstream.health_interval, 5s);
    EXPECT_EQ(cfg.upstream.health_timeout, 2s);
    EXPECT_EQ(cfg.limits.max_header_bytes, 8u * 1024);
    EXPECT_EQ(cfg.limits.max_body_bytes, 2'000'000u);
    EXPECT_EQ(cfg.limits.max_chunk_extension_bytes, 128u);
    EXPECT_EQ(cfg.limits.header_timeout, 5s);
    EXPECT_EQ(cfg.limits.idle_timeout, 30s);
    EXPECT_EQ(cfg.limits.body_timeout, 10s);
    EXPECT_EQ(cfg.limits.max_client_connections, 500u);
    EXPECT_EQ(cfg.limits.drain_timeout, 1h);
    EXPECT_EQ(cfg.logging.level, "debug");
    EXPECT_EQ(cfg.logging.file, "/var/log/cacheproxy.log");
    EXPECT_EQ(cfg.logging.max_file_bytes, 1024u * 1024 * 1024);
    EXPECT_EQ(cfg.logging.max_files, 3u);
    EXPECT_FALSE(cfg.logging.access_log);
    EXPECT_FALSE(cfg.admin.enabled);
    EXPECT_EQ(cfg.admin.listen.host, "::1");
    EXPECT_EQ(cfg.admin.listen.port, 9000);
    EXPECT_EQ(cfg.admin.token, "secret");
}

TEST(ConfigTest, ShippedConfigShowsTheDefaultsAndLoadsTheTradingRules) {
    std::string path = (source_dir / "config" / "cacheproxy.yaml").string();
    Config cfg;
    auto error = load_config(path, cfg);
    ASSERT_FALSE(error.has_value()) << error->to_string();
    expect_same_settings(cfg, Config{});
    EXPECT_EQ(cfg.source_path, path);
    EXPECT_EQ(fs::path(cfg.rules_path), (source_dir / "rules" / "trading.yaml").lexically_normal());
    EXPECT_EQ(cfg.rules.routes.size(), 5u);
}

TEST(ConfigTest, CompressionLevelOutOfRangeNamesTheKey) {
    ConfigError e = load_error("compression:\n  level: 12\n");
    EXPECT_EQ(e.key, "compression.level");
    EXPECT_EQ(e.line, 2);
}

TEST(ConfigTest, MissingFile) {
    Config cfg;
    auto error = load_config("/nonexistent/cacheproxy.yaml", cfg);
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->to_string(), "/nonexistent/cacheproxy.yaml:0:0: : cannot open file");
}

TEST(ConfigTest, ErrorFormat) {
    ConfigError e{"/etc/cacheproxy/cacheproxy.yaml", 7, 20, "upstream.connect_timeout", "bad duration"};
    EXPECT_EQ(e.to_string(), "/etc/cacheproxy/cacheproxy.yaml:7:20: upstream.connect_timeout: bad duration");
}

TEST(ConfigTest, UnknownKeyNamesItsPathAndLine) {
    ConfigError e = load_error("listen: 127.0.0.1:8080\nlimits:\n  max_body_bytes: 1MiB\n  max_hedaer_bytes: 16KiB\n");
    EXPECT_EQ(e.line, 4);
    EXPECT_EQ(e.column, 3);
    EXPECT_EQ(e.key, "limits.max_hedaer_bytes");
    EXPECT_EQ(e.message, "unknown key");
    EXPECT_EQ(e.to_string(), e.file + ":4:3: limits.max_hedaer_bytes: unknown key");
}

TEST(ConfigTest, UnknownKeysAtEveryLevel) {
    EXPECT_EQ(load_error("listne: 127.0.0.1:8080\n").key, "listne");
    EXPECT_EQ(load_error("upstream:\n  health:\n    intervall: 2s\n").key, "upstream.health.intervall");
    EXPECT_EQ(load_error("logging: { levle: info }\n").key, "logging.levle");
    EXPECT_EQ(load_error("admin:\n  tokn: x\n").key, "admin.tokn");
}

TEST(ConfigTest, WrongTypeNamesTheKeyAndShowsTheValue) {
    ConfigError e = load_error("listen: 127.0.0.1:8080\nthreads: two\n");
    EXPECT_EQ(e.line, 2);
    EXPECT_EQ(e.column, 10);
    EXPECT_EQ(e.key, "threads");
    EXPECT_EQ(e.message, "expected an unsigned integer, got \"two\"");
}

TEST(ConfigTest, WrongTypes) {
    EXPECT_EQ(load_error("threads: -1\n").key, "threads");
    EXPECT_NE(load_error("threads: \"4\"\n").message.find("without quotes"), std::string::npos);
    EXPECT_EQ(load_error("threads: 99999999999\n").message, "out of range: 99999999999 (at most 4294967295)");
    EXPECT_EQ(load_error("logging:\n  access_log: yes\n").message, "expected true or false, got \"yes\"");
    EXPECT_EQ(load_error("limits: 5\n").key, "limits");
    EXPECT_EQ(load_error("upstream:\n  url: [a, b]\n").message,
              "expected a string (\"\" for an empty one), got a list");
    ConfigError null_token = load_error("admin:\n  token:\nlogging: {}\n");
    EXPECT_EQ(null_token.key, "admin.token");
    EXPECT_EQ(null_token.line, 2);  // not the next line, where yaml-cpp puts the empty value
    EXPECT_EQ(load_error("- a\n- b\n").message, "expected a mapping (key: value lines), got a list");
}

TEST(ConfigTest, BadDuration) {
    ConfigError e = load_error("upstream:\n  url: http://127.0.0.1:8765\n  connect_timeout: 5 sec\n");
    EXPECT_EQ(e.to_string(),
              e.file + ":3:20: upstream.connect_timeout: bad duration \"5 sec\" (expected e.g. 300ms, 15s, 2m)");
}

TEST(ConfigTest, BadSize) {
    ConfigError e = load_error("limits:\n  max_header_bytes: 16KiB\n  max_body_bytes: 1 MB\n");
    EXPECT_EQ(e.line, 3);
    EXPECT_EQ(e.column, 19);
    EXPECT_EQ(e.key, "limits.max_body_bytes");
    EXPECT_EQ(e.message, "bad size \"1 MB\" (expected e.g. 512, 16KiB, 10MiB, 1GB)");
}

TEST(ConfigTest, BadAddress) {
    ConfigError e = load_error("threads: 1\nlisten: 127.0.0.1\n");
    EXPECT_EQ(e.line, 2);
    EXPECT_EQ(e.key, "listen");
    EXPECT_NE(e.message.find("missing :PORT"), std::string::npos) << e.message;
}

TEST(ConfigTest, YamlSyntaxError) {
    ConfigError e = load_error("listen: 127.0.0.1:8080\nupstream:\n  url: [http://x\n");
    EXPECT_GT(e.line, 2);
    EXPECT_GT(e.column, 0);
    EXPECT_EQ(e.key, "");
    EXPECT_EQ(e.message.rfind("invalid YAML: ", 0), 0u) << e.message;

    ConfigError tab = load_error("upstream:\n\turl: http://x:1\n");
    EXPECT_EQ(tab.line, 2);
}

TEST(ConfigTest, DuplicateKey) {
    ConfigError e = load_error("threads: 1\nlisten: 127.0.0.1:1\nthreads: 2\n");
    EXPECT_EQ(e.line, 3);
    EXPECT_EQ(e.key, "threads");
    EXPECT_EQ(e.message, "duplicate key (first given on line 1)");
}

TEST(ConfigTest, HttpsUpstreamRefused) {
    ConfigError e = load_error("threads: 1\nupstream:\n  url: https://127.0.0.1:8765\n");
    EXPECT_EQ(e.line, 3);
    EXPECT_EQ(e.column, 8);
    EXPECT_EQ(e.key, "upstream.url");
    EXPECT_NE(e.message.find("https is not supported"), std::string::npos) << e.message;
}

TEST(ConfigTest, UpstreamUrlWithPathOrPortZeroRefused) {
    EXPECT_EQ(load_error("upstream:\n  url: http://127.0.0.1:8765/api\n").key, "upstream.url");
    EXPECT_EQ(load_error("upstream:\n  url: http://127.0.0.1:0\n").key, "upstream.url");
    EXPECT_EQ(load_ok("upstream:\n  url: http://legacy\n").upstream.port, 80);
}

TEST(ConfigTest, NonLoopbackAdminNeedsAToken) {
    ConfigError e = load_error("threads: 1\nadmin:\n  listen: 0.0.0.0:9901\n");
    EXPECT_EQ(e.key, "admin.token");
    EXPECT_EQ(e.line, 3);  // the admin section, where the token belongs
    EXPECT_NE(e.message.find("0.0.0.0:9901"), std::string::npos) << e.message;

    ConfigError empty = load_error("admin:\n  listen: 10.1.2.3:9901\n  token: \"\"\n");
    EXPECT_EQ(empty.key, "admin.token");
    EXPECT_EQ(empty.line, 3);

    EXPECT_EQ(load_ok("admin:\n  listen: 0.0.0.0:9901\n  token: s3cret\n").admin.token, "s3cret");
    load_ok("admin:\n  listen: 0.0.0.0:9901\n  enabled: false\n");
    load_ok("admin:\n  listen: localhost:9901\n");
    load_ok("admin:\n  listen: \"[::1]:0\"\n");
    load_ok("admin:\n  listen: 127.0.0.2:9901\n");
}

TEST(ConfigTest, ValidationErrorsPointAtTheValue) {
    ConfigError threads = load_error("listen: 127.0.0.1:8080\nthreads: 300\n");
    EXPECT_EQ(threads.key, "threads");
    EXPECT_EQ(threads.line, 2);
    EXPECT_EQ(threads.column, 10);

    ConfigError level = load_error("logging:\n  file: x.log\n  level: loud\n");
    EXPECT_EQ(level.key, "logging.level");
    EXPECT_EQ(level.line, 3);

    ConfigError timeout = load_error("upstream:\n  connect_timeout: 0s\n");
    EXPECT_EQ(timeout.key, "upstream.connect_timeout");
    EXPECT_EQ(timeout.line, 2);
    EXPECT_EQ(timeout.message, "must be > 0, got 0s");

    EXPECT_EQ(load_error("logging:\n  max_files: 0\n").key, "logging.max_files");
    EXPECT_EQ(load_error("upstream:\n  max_connections: -1\n").key, "upstream.max_connections");
    EXPECT_EQ(load_error("upstream:\n  health: { path: health }\n").key, "upstream.health.path");
    EXPECT_EQ(load_error("limits:\n  drain_timeout: 0ms\n").key, "limits.drain_timeout");
}

TEST(ConfigTest, AcceptedEdgeValues) {
    Config cfg = load_ok("listen: 127.0.0.1:0\nthreads: 256\nlogging: { level: warn }\nupstream: { health: { path: \"\" } }\n");
    EXPECT_EQ(cfg.listen.port, 0);
    EXPECT_EQ(cfg.threads, 256u);
    EXPECT_EQ(cfg.upstream.health_path, "");
    for (const char* level : {"trace", "debug", "info", "warning", "error", "err", "critical", "off"})
        EXPECT_EQ(load_ok(std::string("logging: { level: ") + level + " }\n").logging.level, level);
}

TEST(ConfigTest, RulesPathIsRelativeToTheConfigFile) {
    TempDir dir;
    dir.write("rules/mine.yaml", one_route_rules);
    std::string path = dir.write("etc/cacheproxy.yaml", "rules: ../rules/mine.yaml\n");
    Config cfg;
    auto error = load_config(path, cfg);
    ASSERT_FALSE(error.has_value()) << error->to_string();
    EXPECT_EQ(cfg.rules_path, (dir.path() / "rules" / "mine.yaml").string());
    ASSERT_EQ(cfg.rules.routes.size(), 1u);
    EXPECT_EQ(cfg.rules.routes[0].name, "ticker");

    std::string absolute = dir.write("other/cacheproxy.yaml", "rules: " + cfg.rules_path + "\n");
    Config again;
    ASSERT_FALSE(load_config(absolute, again).has_value());
    EXPECT_EQ(again.rules_path, cfg.rules_path);
}

TEST(ConfigTest, MissingRulesFileIsReportedAtTheRulesKey) {
    ConfigError e = load_error("threads: 1\nrules: ../nowhere/rules.yaml\n");
    EXPECT_EQ(e.line, 2);
    EXPECT_EQ(e.column, 8);
    EXPECT_EQ(e.key, "rules");
    EXPECT_NE(e.message.find("cannot open file"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("nowhere/rules.yaml"), std::string::npos) << e.message;

    EXPECT_EQ(load_error("rules: \"\"\n").key, "rules");
}

TEST(ConfigTest, ErrorsInTheRulesFileNameTheRulesFile) {
    TempDir dir;
    std::string rules = dir.write("rules.yaml", "routes:\n  - name: x\n    match: { path: /x }\n    ttl: 0s\n    shared: true\n");
    std::string path = dir.write("cacheproxy.yaml", "rules: rules.yaml\n");
    Config cfg;
    auto error = load_config(path, cfg);
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->file, rules);
    EXPECT_EQ(error->key, "routes[0].ttl");
    EXPECT_EQ(error->line, 4);
}

TEST(ConfigTest, ValidateAcceptsTheDefaults) { EXPECT_FALSE(validate(Config{}).has_value()); }

TEST(ConfigTest, ValidateWithoutAFileHasNoPosition) {
    Config cfg;
    cfg.source_path = "x.yaml";
    cfg.upstream.url = "https://a:1";
    auto error = validate(cfg);
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->to_string().rfind("x.yaml:0:0: upstream.url: ", 0), 0u) << error->to_string();
}

TEST(ConfigTest, DescribeShowsEffectiveValuesAndMasksTheToken) {
    TempDir dir;
    dir.write("rules.yaml", one_route_rules);
    Config cfg;
    auto error = load_config(dir.write("cacheproxy.yaml",
                                       "rules: rules.yaml\nadmin: { listen: 0.0.0.0:9901, token: s3cret-token }\n"
                                       "upstream: { connect_timeout: 1500ms }\n"),
                             cfg);
    ASSERT_FALSE(error.has_value()) << error->to_string();
    std::string text = describe(cfg);
    EXPECT_EQ(text.find("s3cret-token"), std::string::npos) << text;
    EXPECT_NE(text.find("token: \"***\""), std::string::npos) << text;
    EXPECT_NE(text.find("connect_timeout: 1500ms"), std::string::npos) << text;
    EXPECT_NE(text.find("response_timeout: 1m"), std::string::npos) << text;
    EXPECT_NE(text.find("max_header_bytes: 16KiB"), std::string::npos) << text;
    EXPECT_NE(text.find("listen: 0.0.0.0:9901"), std::string::npos) << text;
    EXPECT_NE(text.find("  - ticker: GET /api/trading/ticker, ttl 5s, shared"), std::string::npos) << text;

    cfg.admin.token.clear();
    EXPECT_EQ(describe(cfg).find("***"), std::string::npos);
}

TEST(ConfigTest, DescribeReadsBackAsTheSameSettings) {
    Config cfg = load_ok("listen: \"[::1]:0\"\nupstream: { url: http://legacy:9000/, idle_timeout: 90s }\n"
                         "limits: { max_body_bytes: 1500 }\nlogging: { file: \"/tmp/a b#c.log\", level: warn }\n");
    std::string text = describe(cfg);
    std::string settings = text.substr(0, text.find("\nrules:") + 1);  // the rest describes the rules file
    expect_same_settings(load_ok(settings), cfg);
}

TEST(ConfigTest, OnlyOneYamlDocument) {
    ConfigError e = load_error("threads: 1\n---\nthreads: 2\n");
    EXPECT_EQ(e.line, 3);
    EXPECT_EQ(e.key, "");
    EXPECT_NE(e.message.find("second YAML document"), std::string::npos) << e.message;
    EXPECT_EQ(load_ok("---\nthreads: 2\n").threads, 2u);
}

TEST(ConfigTest, AStrayFlowIndicatorEndsWithAnErrorNotALoop) {
    // yaml-cpp 0.7's LoadAll never returns on these (found by fuzzing).
    for (std::string text : {",", ", a", "threads: 1\n---\n,", ",\n,\n"}) {
        ConfigError e = load_error(text);
        EXPECT_GE(e.line, 1) << text;
        EXPECT_FALSE(e.message.empty()) << text;
    }
}

TEST(ConfigTest, NumericLimitsHaveRangesThatNameTheirKey) {
    struct Case {
        const char* yaml;
        const char* key;
        int line;
    };
    for (const Case& c : {Case{"limits:\n  max_header_bytes: 5GiB\n", "limits.max_header_bytes", 2},
                          Case{"limits:\n  max_header_bytes: 10\n", "limits.max_header_bytes", 2},
                          Case{"limits:\n  max_client_connections: 0\n", "limits.max_client_connections", 2},
                          Case{"limits:\n  request_buffer_bytes: 1GiB\n", "limits.request_buffer_bytes", 2},
                          Case{"upstream:\n  max_connections: 1000000\n", "upstream.max_connections", 2},
                          Case{"compression:\n  max_decoded_bytes: 0\n", "compression.max_decoded_bytes", 2},
                          Case{"upstream:\n  idle_timeout: 1000000h\n", "upstream.idle_timeout", 2}}) {
        ConfigError e = load_error(c.yaml);
        EXPECT_EQ(e.key, c.key) << c.yaml << " -> " << e.to_string();
        EXPECT_EQ(e.line, c.line) << e.to_string();
    }
    const Config ok = load_ok("limits:\n  max_header_bytes: 64KiB\n  request_buffer_bytes: 0\n  min_body_rate: 0\n");
    EXPECT_EQ(ok.limits.max_header_bytes, 64u * 1024);
    EXPECT_EQ(ok.limits.request_buffer_bytes, 0u);
}

// ------------------------------------------------------------------ upstream pool caps, health, trusted fronts

TEST(ConfigTest, PoolCapsDefaultToManyActiveAndFewIdleConnections) {
    const Config defaults;
    EXPECT_EQ(defaults.upstream.max_connections, 4096u) << "long-lived responses must not exhaust the pool";
    EXPECT_EQ(defaults.upstream.max_idle_connections, 32u);
    const Config cfg = load_ok("upstream:\n  max_connections: 0\n  max_idle_connections: 0\n");
    EXPECT_EQ(cfg.upstream.max_connections, 0u) << "0 = no cap on active connections";
    EXPECT_EQ(cfg.upstream.max_idle_connections, 0u) << "0 = nothing kept alive";
    ConfigError e = load_error("upstream:\n  max_idle_connections: 200000\n");
    EXPECT_EQ(e.key, "upstream.max_idle_connections");
    EXPECT_EQ(e.line, 2);
    EXPECT_EQ(load_error("upstream:\n  max_idle_connections: lots\n").key, "upstream.max_idle_connections");
}

TEST(ConfigTest, TheActiveHealthCheckIsOffUnlessAPathIsGiven) {
    EXPECT_EQ(Config{}.upstream.health_path, "");
    EXPECT_EQ(load_ok("upstream:\n  health: { path: /health }\n").upstream.health_path, "/health");
    EXPECT_NE(describe(Config{}).find("health checks off"), std::string::npos);
}

TEST(ConfigTest, TrustedProxiesAreReadAndDefaultToNoOne) {
    EXPECT_TRUE(Config{}.server.trusted_proxies.empty());
    const Config cfg = load_ok("server:\n  trusted_proxies: [127.0.0.1, \"::1\", 10.0.0.0/8, \"fd00::/8\"]\n");
    EXPECT_EQ(cfg.server.trusted_proxies,
              (std::vector<std::string>{"127.0.0.1", "::1", "10.0.0.0/8", "fd00::/8"}));
    const Config block = load_ok("server:\n  trusted_proxies:\n    - 192.0.2.1\n    - 2001:db8::/32\n");
    EXPECT_EQ(block.server.trusted_proxies.size(), 2u);
}

TEST(ConfigTest, ABadTrustedProxyNamesItsElementAndLine) {
    ConfigError e = load_error("threads: 1\nserver:\n  trusted_proxies:\n    - 127.0.0.1\n    - localhost\n");
    EXPECT_EQ(e.key, "server.trusted_proxies[1]");
    EXPECT_EQ(e.line, 5);
    EXPECT_NE(e.message.find("localhost"), std::string::npos) << e.message;
    ConfigError bits = load_error("server: { trusted_proxies: [10.0.0.1/8] }\n");
    EXPECT_EQ(bits.key, "server.trusted_proxies[0]");
    EXPECT_EQ(bits.line, 1);
    EXPECT_NE(bits.message.find("past the prefix"), std::string::npos) << bits.message;
    EXPECT_EQ(load_error("server: { trusted_proxies: [\"::/200\"] }\n").key, "server.trusted_proxies[0]");
    EXPECT_EQ(load_error("server: { trusted_proxies: 127.0.0.1 }\n").key, "server.trusted_proxies");
    EXPECT_EQ(load_error("server: { trusted: [] }\n").key, "server.trusted");
    // validate() refuses the same without a file (CLI-built configs).
    Config direct;
    direct.server.trusted_proxies = {"10.0.0.0/33"};
    auto error = validate(direct);
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->key, "server.trusted_proxies[0]");
}

TEST(ConfigTest, DescribeShowsThePoolCapsAndTrustedProxiesAndReadsBack) {
    const Config cfg = load_ok("server: { trusted_proxies: [127.0.0.1, \"::1\"] }\n"
                               "upstream: { max_connections: 0, max_idle_connections: 7 }\n");
    const std::string text = describe(cfg);
    EXPECT_NE(text.find("max_idle_connections: 7"), std::string::npos) << text;
    EXPECT_NE(text.find("max_connections: 0   # no cap"), std::string::npos) << text;
    EXPECT_NE(text.find("trusted_proxies: [127.0.0.1, \"::1\"]"), std::string::npos) << text;
    const std::string settings = text.substr(0, text.find("\nrules:") + 1);
    expect_same_settings(load_ok(settings), cfg);
}

// ------------------------------------------------------------------ shared_tier (issue 15)

TEST(ConfigTest, SharedTierIsOffByDefaultAndReadWhole) {
    EXPECT_FALSE(load_ok("").shared_tier.enabled());
    const Config cfg = load_ok(
        "shared_tier:\n"
        "  cluster: [\"127.0.0.1:7000\", \"[::1]:7001\"]\n"
        "  identity_key_file: /etc/cacheproxy/identity.key\n"
        "  op_timeout: 20ms\n"
        "  barrier_timeout: 30ms\n"
        "  publish_timeout: 1s\n"
        "  max_invalidation_lag: 5ms\n"
        "  on_redis_down: local\n"
        "  l2: false\n"
        "  lease_ttl: 3s\n");
    const auto& t = cfg.shared_tier;
    EXPECT_TRUE(t.enabled());
    EXPECT_EQ(t.cluster.size(), 2u);
    EXPECT_EQ(t.op_timeout, 20ms);
    EXPECT_EQ(t.barrier_timeout, 30ms);
    EXPECT_EQ(t.max_invalidation_lag, 5ms);
    EXPECT_EQ(t.on_redis_down, "local");
    EXPECT_FALSE(t.l2);
    EXPECT_EQ(t.lease_ttl, 3s);
    const auto text = describe(cfg);
    EXPECT_NE(text.find("identity_key_file: /etc/cacheproxy/identity.key   # its bytes are not shown"), std::string::npos)
        << text;
}

TEST(ConfigTest, SharedTierMistakesNameTheirKey) {
    struct Case {
        const char* yaml;
        const char* key;
    };
    const Case cases[] = {
        {"shared_tier:\n  redis: \"127.0.0.1:6379\"\n", "shared_tier.identity_key_file"},
        {"shared_tier:\n  redis: \"redis.local:6379\"\n  identity_key_file: k\n", "shared_tier.redis"},
        {"shared_tier:\n  redis: \"127.0.0.1\"\n  identity_key_file: k\n", "shared_tier.redis"},
        {"shared_tier:\n  redis: \"127.0.0.1:6379\"\n  cluster: [\"127.0.0.1:7000\"]\n  identity_key_file: k\n",
         "shared_tier.cluster"},
        {"shared_tier:\n  cluster: [\"127.0.0.1:7000\", \"x:1\"]\n  identity_key_file: k\n", "shared_tier.cluster[1]"},
        {"shared_tier:\n  redis: \"127.0.0.1:6379\"\n  identity_key_file: k\n  on_redis_down: ignore\n",
         "shared_tier.on_redis_down"},
        {"shared_tier:\n  redis: \"127.0.0.1:6379\"\n  identity_key_file: k\n  op_timeout: 0s\n", "shared_tier.op_timeout"},
        {"shared_tier:\n  redis: \"127.0.0.1:6379\"\n  identity_key_file: k\n  max_invalidation_lag: 2m\n",
         "shared_tier.max_invalidation_lag"},
        {"shared_tier:\n  redis: \"127.0.0.1:6379\"\n  identity_key_file: k\n  secret: x\n", "shared_tier.secret"},
    };
    for (const auto& c : cases) {
        const ConfigError e = load_error(c.yaml);
        EXPECT_EQ(e.key, c.key) << c.yaml << e.to_string();
        EXPECT_GT(e.line, 0) << c.yaml << e.to_string();
    }
}
