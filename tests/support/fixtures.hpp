#pragma once
/// The systems under test, as objects a test can start, drive and look into:
/// the legacy simulator (scripts/legacy_sim.py) and the cacheproxy binary,
/// each in its own temporary folder with its log, each killed and reaped by
/// its destructor. Plus the shared gtest fixture that runs one simulator per
/// test suite.

#include "support/process.hpp"
#include "support/raw_client.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#ifndef CACHEPROXY_BINARY
#error "CACHEPROXY_BINARY must be defined (absolute path of the built proxy)"
#endif
#ifndef CACHEPROXY_SOURCE_DIR
#error "CACHEPROXY_SOURCE_DIR must be defined (the repository root)"
#endif

namespace cacheproxy::e2e {

/// A fresh folder under $TMPDIR (or /tmp). Removed by the destructor unless
/// the current test has failed: then it is kept and its path printed.
class TempDir {
public:
    explicit TempDir(const std::string& prefix = "cacheproxy-e2e");
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    /// path()/name
    std::string file(const std::string& name) const { return path_ + "/" + name; }
    /// Writes `content` to path()/name and returns that path.
    std::string write(const std::string& name, const std::string& content) const;

private:
    std::string path_;
};

/// The deterministic bytes the simulator serves: byte i = (i*31+7) % 251.
std::string sim_bytes(std::size_t n, std::size_t offset = 0);
/// Index of the first byte of `body` that differs from sim_bytes(), or npos.
std::size_t first_sim_bytes_mismatch(const std::string& body, std::size_t offset = 0);
/// `n` bytes of every value (CR/LF and NUL included), not periodic at any
/// power of two and not the simulator's pattern; `seed` picks the sequence.
std::string binary_body(std::size_t n, unsigned seed = 1);
/// Lower-case hex SHA-256.
std::string sha256_hex(const std::string& data);

/// What the simulator's ANY /echo/{path} says it received.
struct EchoSeen {
    std::string method, path, raw_path, raw_query, http_version;
    Headers headers;                ///< as received, in order (names lower-cased by uvicorn)
    long long body_len = 0;
    std::string body_sha256;

    /// Every value of the fields named `name` (case-insensitive).
    std::vector<std::string> values(std::string_view name) const;
    /// The first value of `name`, if any.
    std::optional<std::string> header(std::string_view name) const;
    /// "name: value" lines, for failure messages.
    std::string headers_text() const;
};

/// Parses an /echo answer; std::nullopt (and *error) if it is not one.
std::optional<EchoSeen> parse_echo(const std::string& body, std::string* error = nullptr);

// ------------------------------------------------------------------ simulator

/// The simulator's GET /__sim/stats.
struct SimStats {
    std::map<std::string, long long> requests;  ///< per route name
    long long total = 0;
    long long connections = 0;                  ///< distinct client (host, port) seen
    std::string json;                           ///< the raw answer

    /// requests[route], 0 if absent.
    long long route(const std::string& name) const;
    /// Requests other than the proxy's own health checks.
    long long non_health_total() const { return total - route("health"); }
};

/// scripts/legacy_sim.py on a loopback port picked by itself (--port 0).
class Simulator {
public:
    struct Options {
        double latency = 0.0;             ///< --latency: exchange-backed routes
        double keepalive_timeout = 5.0;   ///< --keepalive-timeout
        std::vector<std::string> extra_args;
        std::chrono::milliseconds ready_timeout = std::chrono::seconds(15);
    };

    /// Starts it and waits until GET /health answers 200. Throws
    /// std::runtime_error (with the simulator's log) if it does not.
    explicit Simulator(Options options);
    Simulator() : Simulator(Options{}) {}
    ~Simulator() = default;

    std::uint16_t port() const { return port_; }
    /// "http://127.0.0.1:PORT"
    std::string url() const;
    Process& process() { return *process_; }
    std::string log() const { return process_->read_log(); }

    /// GET /__sim/stats, parsed. Throws std::runtime_error on failure.
    SimStats stats();
    /// POST /__sim/reset?all=1: counters, user state, latency and failures.
    void reset();
    /// POST /__sim/latency with `json_body` (e.g. {"default":0.0,"positions":2.5}).
    void set_latency(const std::string& json_body);
    /// POST /__sim/fail {"route","mode","count"}; count <= 0 means "until told otherwise".
    void fail(const std::string& route, const std::string& mode, int count = 1);

    /// A control request straight to the simulator (never through the proxy).
    Response direct(const std::string& method, const std::string& target, const Headers& headers = {},
                    const std::string& body = {});

private:
    void control(const std::string& method, const std::string& target, const std::string& body = {});

    TempDir dir_{"legacy-sim"};
    std::unique_ptr<Process> process_;
    std::uint16_t port_ = 0;
};

// ------------------------------------------------------------------ proxy

/// The YAML config file the harness writes for the proxy, as a tree of keys.
/// Values are YAML scalars written as given ("1s", "\"\"", "true", "/health").
class ProxyConfig {
public:
    /// The defaults every test starts from (see the test plan): listen and
    /// admin on fresh loopback ports, upstream at `upstream_url`, debug logs
    /// to the console, health check on /health every 1 s.
    explicit ProxyConfig(const std::string& upstream_url);

    /// Sets a dotted key, e.g. set("upstream.response_timeout", "1s").
    ProxyConfig& set(const std::string& dotted_key, const std::string& yaml_value);
    /// Removes a key (and everything under it).
    ProxyConfig& erase(const std::string& dotted_key);
    /// The value of a leaf key, if set.
    std::optional<std::string> get(const std::string& dotted_key) const;

    std::uint16_t listen_port() const { return listen_port_; }
    std::uint16_t admin_port() const { return admin_port_; }

    /// The file's text.
    std::string to_yaml() const;

private:
    struct Node {
        std::string name;
        std::optional<std::string> value;
        std::vector<Node> children;
    };
    static void emit(const Node& node, int indent, std::string& out);

    Node root_;
    std::uint16_t listen_port_ = 0;
    std::uint16_t admin_port_ = 0;
};

/// The cacheproxy binary (CACHEPROXY_BINARY --config FILE) in a temp folder:
/// config.yaml (and rules.yaml when given), proxy.log (stdout + stderr).
class Proxy {
public:
    struct Options {
        /// Changes to the default config before it is written.
        std::function<void(ProxyConfig&)> configure;
        /// Contents of rules.yaml; when set, `rules:` points at it.
        std::optional<std::string> rules_yaml;
        /// Extra command-line arguments after --config FILE.
        std::vector<std::string> extra_args;
        /// How long to wait for the listen port to accept a connection.
        std::chrono::milliseconds ready_timeout = std::chrono::seconds(10);
    };

    /// Writes the config, starts the proxy, waits until its listen port
    /// accepts a TCP connection (polled every 20 ms). Throws
    /// std::runtime_error with the proxy's log if it exits or is not ready in time.
    Proxy(const std::string& upstream_url, Options options);
    /// Options whose only change is `configure`.
    static Options with_config(std::function<void(ProxyConfig&)> configure) {
        Options o;
        o.configure = std::move(configure);
        return o;
    }
    explicit Proxy(const std::string& upstream_url) : Proxy(upstream_url, Options{}) {}
    /// Kills the proxy (SIGKILL) if it still runs. If the test failed, prints
    /// the tail of its log and keeps its folder.
    ~Proxy();

    std::uint16_t port() const { return config_.listen_port(); }
    std::uint16_t admin_port() const { return config_.admin_port(); }
    const ProxyConfig& config() const { return config_; }
    const std::string& dir() const { return dir_.path(); }
    std::string config_path() const { return dir_.file("config.yaml"); }
    std::string log_path() const { return dir_.file("proxy.log"); }
    std::string log() const { return process_->read_log(); }
    Process& process() { return *process_; }

    /// SIGTERM.
    void terminate() { process_->terminate(); }
    /// See Process::wait_exit.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout) { return process_->wait_exit(timeout); }

private:
    TempDir dir_{"cacheproxy"};
    ProxyConfig config_;
    std::unique_ptr<Process> process_;
};

// ------------------------------------------------------------------ fixture

/// Base fixture: one simulator shared by every test of a suite. A derived
/// fixture calls StartSharedSimulator() from its SetUpTestSuite() and
/// StopSharedSimulator() from its TearDownTestSuite(). SetUp() fails the test
/// if the simulator is not there and resets it (counters, state, faults).
class SimulatorTest : public ::testing::Test {
protected:
    static void StartSharedSimulator(Simulator::Options options = {});
    static void StopSharedSimulator();
    static Simulator& sim() { return *shared_sim_; }

    void SetUp() override;

    /// A proxy in front of the shared simulator.
    std::unique_ptr<Proxy> StartProxy(Proxy::Options options = {});

private:
    static std::unique_ptr<Simulator> shared_sim_;
    static std::string shared_sim_error_;
};

}  // namespace cacheproxy::e2e
