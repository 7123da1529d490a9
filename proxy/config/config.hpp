#pragma once
/// The proxy's configuration: plain data, filled by load_config() and the CLI
/// overrides, validated before the proxy starts. Nothing here does I/O.

#include "rules/route_rule.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace cacheproxy::config {

using Duration = std::chrono::milliseconds;

/// A host and a port, as written "HOST:PORT" ("[::1]:8080" for IPv6).
struct HostPort {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
};

/// The legacy webapp the proxy fronts (only plain http:// upstreams).
struct UpstreamConfig {
    std::string url = "http://127.0.0.1:8765";  ///< as given, for display
    std::string host = "127.0.0.1";              ///< parsed from url
    std::uint16_t port = 8765;                   ///< parsed from url
    std::size_t max_connections = 50;            ///< whole pool, all threads
    Duration idle_timeout = std::chrono::seconds(300);
    Duration connect_timeout = std::chrono::seconds(3);
    Duration response_timeout = std::chrono::seconds(30);  ///< request sent -> response done; 504
    std::string health_path = "/health";         ///< active check; "" disables it
    Duration health_interval = std::chrono::seconds(2);
    Duration health_timeout = std::chrono::seconds(1);
};

/// Bounds on every client connection.
struct LimitsConfig {
    std::size_t max_header_bytes = 16 * 1024;     ///< request header section -> 431
    std::size_t max_body_bytes = 1024 * 1024;     ///< request body -> 413
    std::size_t max_chunk_extension_bytes = 256;  ///< per chunk -> 400
    Duration header_timeout = std::chrono::seconds(10);  ///< first byte -> end of header (slowloris)
    Duration idle_timeout = std::chrono::seconds(60);    ///< keep-alive wait for the next request
    Duration body_timeout = std::chrono::seconds(30);    ///< no progress reading/writing a body
    std::size_t max_client_connections = 10000;
    Duration drain_timeout = std::chrono::seconds(30);   ///< SIGTERM: in-flight requests get this long
    /// A request body up to this size is read whole before an upstream
    /// connection is taken (and the first this-many bytes of a larger one), so
    /// a slow client cannot hold upstream connections (nginx's request buffering).
    std::size_t request_buffer_bytes = 64 * 1024;
    /// The part of a body streamed upstream must average at least this many
    /// bytes per second once it has run for min_body_rate_grace; 0 = no minimum.
    std::size_t min_body_rate = 1024;
};

/// How long a streamed request body may run before min_body_rate applies.
inline constexpr Duration min_body_rate_grace = std::chrono::seconds(5);

struct LoggingConfig {
    std::string level = "info";         ///< trace, debug, info, warn, error, critical, off
    std::string file;                    ///< rotating log file; "" = console only
    std::size_t max_file_bytes = 10 * 1024 * 1024;
    std::size_t max_files = 5;
    bool access_log = true;              ///< one line per request
};

/// gzip towards clients that accept it (RFC 9110 Accept-Encoding).
struct CompressionConfig {
    bool enabled = true;
    std::size_t min_size = 1000;   ///< smaller bodies are sent as they are (the seed's GZipMiddleware minimum)
    int level = 6;                 ///< cached bodies: compressed once per fill
    int stream_level = 1;          ///< pass-through bodies: compressed on the fly, per piece
    /// The most an upstream's gzip body is decoded to for a client without gzip
    /// (the whole body, not per piece: a zip-bomb guard); past it the response is cut.
    std::size_t max_decoded_bytes = 64 * 1024 * 1024;
};

struct AdminConfig {
    bool enabled = true;
    HostPort listen{"127.0.0.1", 9901};
    std::string token;                   ///< required for state-changing endpoints
};

struct Config {
    std::string source_path;             ///< the YAML file this came from ("" = built-in defaults)
    HostPort listen{"127.0.0.1", 8080};
    UpstreamConfig upstream;
    unsigned threads = 0;                ///< 0 = one per core
    LimitsConfig limits;
    LoggingConfig logging;
    CompressionConfig compression;
    AdminConfig admin;
    std::string rules_path;              ///< resolved against the config file's folder
    rules::RuleSet rules;                ///< loaded from rules_path
};

/// Where and why a configuration was refused.
struct ConfigError {
    std::string file;
    int line = 0;      ///< 1-based; 0 when not tied to a line
    int column = 0;    ///< 1-based
    std::string key;   ///< dotted path, e.g. "upstream.connect_timeout" or "routes[1].ttl"
    std::string message;
    /// "FILE:LINE:COLUMN: KEY: MESSAGE"
    std::string to_string() const;
};

/// Reads and validates the config file and the rules file it names.
/// On failure returns the first error; `out` is then unspecified.
std::optional<ConfigError> load_config(const std::string& path, Config& out);

/// Checks cross-field constraints (after CLI overrides too).
std::optional<ConfigError> validate(const Config& cfg);

/// What --check prints: the understood configuration, secrets masked.
std::string describe(const Config& cfg);

}  // namespace cacheproxy::config
