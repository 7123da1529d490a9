#pragma once
/// The proxy's configuration: plain data, filled by load_config() and the CLI
/// overrides, validated before the proxy starts. Nothing here does I/O.

#include "rules/route_rule.hpp"
#include "yaml/config_error.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cacheproxy::config {


/// The legacy webapp the proxy fronts (only plain http:// upstreams).
struct UpstreamConfig {
    std::string url = "http://127.0.0.1:8765";  ///< as given, for display
    std::string host = "127.0.0.1";              ///< parsed from url
    std::uint16_t port = 8765;                   ///< parsed from url
    /// Connections in use at once (leased or connecting), all threads; 0 = no
    /// cap. A request over it waits connect_timeout, then gets a 503. High on
    /// purpose: an event stream or a download holds one for as long as it runs.
    std::size_t max_connections = 4096;
    /// Idle keep-alive connections kept for reuse, all threads (nginx's
    /// `keepalive N`); one released beyond it closes the least recently used.
    std::size_t max_idle_connections = 32;
    Duration idle_timeout = std::chrono::seconds(300);
    Duration connect_timeout = std::chrono::seconds(3);
    Duration response_timeout = std::chrono::seconds(60);  ///< request sent -> response head (a fill: whole); 504 (nginx proxy_read_timeout)
    /// Active check (opt-in): GET this path every health_interval; "" = off.
    /// Only a probe's failed connect marks the upstream down (see health_checker.hpp).
    std::string health_path;
    /// Also how long a failed connect marks the upstream down (502 at once meanwhile).
    Duration health_interval = std::chrono::seconds(2);
    Duration health_timeout = std::chrono::seconds(1);
};

/// Bounds on every client connection.
struct LimitsConfig {
    std::size_t max_header_bytes = 16 * 1024;     ///< request header section -> 431
    std::size_t max_body_bytes = 1024 * 1024;     ///< request body held (cached and watched routes) -> 413
    std::size_t max_pass_through_body_bytes = 0;  ///< request body streamed through (0 = no limit) -> 413
    std::size_t max_chunk_extension_bytes = 256;  ///< per chunk -> 400
    /// A pass-through body relayed as it is with at least this much left goes
    /// socket to socket by splice(2) (net/splice.hpp): about half the proxy's
    /// CPU per byte, but on loopback the buffered copy moves more per second,
    /// so 0 (never) is the default, as HAProxy's splice options are off.
    std::size_t splice_from_bytes = 0;
    Duration header_timeout = std::chrono::seconds(10);  ///< first byte -> end of header (slowloris)
    Duration idle_timeout = std::chrono::seconds(60);    ///< keep-alive wait for the next request
    Duration body_timeout = std::chrono::seconds(60);    ///< no progress reading/writing a body
    /// Between reads of an event stream (a text/event-stream answer) relayed
    /// from the upstream; 0 = none (a quiet stream is never cut).
    Duration stream_timeout{0};
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

/// The client side: who may speak for the client.
struct ServerConfig {
    /// Addresses and CIDR blocks, as written ("127.0.0.1", "10.0.0.0/8", "::1"),
    /// whose X-Forwarded-For is appended to and X-Forwarded-Proto / -Host kept
    /// (a TLS front). Empty = trust no one. Parsed by http::TrustedProxies.
    std::vector<std::string> trusted_proxies;
};

/// Upgraded connections (WebSocket): after the upstream's 101 the connection
/// is a byte tunnel both ways, on an upstream connection of its own.
/// Timeouts of the pass-through requests under one path prefix (the longest
/// matching prefix wins; cached routes and watched writes keep the globals).
struct PathTimeouts {
    std::string prefix;                ///< "/api/reports" (matched against the path)
    std::optional<Duration> response;  ///< replaces upstream.response_timeout
    std::optional<Duration> body;      ///< replaces limits.body_timeout and stream_timeout for upstream reads (0 = none)
};

struct TunnelConfig {
    /// Upgrade tokens forwarded (case-insensitive); any other Upgrade is
    /// ignored, as an HTTP/1.1 server may: the request goes on without it.
    std::vector<std::string> protocols{"websocket"};
    Duration idle_timeout = std::chrono::hours(1);  ///< no byte either way for this long: closed (0 = never)
    std::size_t max_open = 1024;                    ///< open tunnels, whole process; more get 503
};

/// The shared tier (issue 15): N instances share L2 entries, fill leases
/// and invalidations through Redis (tier/shared_tier.hpp). Off unless
/// `shared_tier.redis` or `shared_tier.cluster` names a server.
struct SharedTierConfig {
    std::string redis;                   ///< "127.0.0.1:6379": one standalone server ("" = off)
    std::vector<std::string> cluster;    ///< Redis Cluster seed nodes ("host:port"); exclusive with `redis`
    /// 32 raw bytes or 64 hex characters, the same file on every instance: the
    /// identity HMAC key, so every instance names a user's keys alike.
    std::string identity_key_file;
    std::string password_file;           ///< AUTH password, first line ("" = none); never inline
    Duration connect_timeout = std::chrono::milliseconds(200);
    Duration op_timeout = std::chrono::milliseconds(50);       ///< every command; missed: the connection closes
    Duration barrier_timeout = std::chrono::milliseconds(50);  ///< a per-user read waits this long for the bus
    /// A write's answer waits this long for its invalidation to be
    /// acknowledged (a paused Redis answers late), then goes out with the
    /// invalidation queued (the debt: delivered when Redis answers again).
    Duration publish_timeout = std::chrono::seconds(2);
    /// 0 = strict cross-instance read-your-writes (a per-user read waits for a
    /// barrier sent after it arrived). > 0: a barrier completed within this
    /// long is enough: a read may miss a write made through another instance
    /// less than this long before it (ARCHITECTURE.md, "Across instances").
    Duration max_invalidation_lag{0};
    /// Per-user reads while the bus is down: "bypass" (forwarded uncached, the
    /// safe side) or "local" (served from this instance's cache: a user whose
    /// requests are balanced to one instance loses nothing).
    std::string on_redis_down = "bypass";
    bool l2 = true;                       ///< entries shared through Redis (else only invalidations and leases)
    Duration lease_ttl = std::chrono::seconds(5);  ///< a fill lease; renewed while its fetch runs
    bool enabled() const { return !redis.empty() || !cluster.empty(); }
};

struct Config {
    std::string source_path;             ///< the YAML file this came from ("" = built-in defaults)
    HostPort listen{"127.0.0.1", 8080};
    ServerConfig server;
    UpstreamConfig upstream;
    unsigned threads = 0;                ///< 0 = one per core
    LimitsConfig limits;
    LoggingConfig logging;
    CompressionConfig compression;
    AdminConfig admin;
    TunnelConfig tunnel;
    std::vector<PathTimeouts> timeouts;  ///< per path prefix (pass-through)
    SharedTierConfig shared_tier;
    std::string rules_path;              ///< resolved against the config file's folder
    rules::RuleSet rules;                ///< loaded from rules_path
};


/// Reads and validates the config file and the rules file it names.
/// On failure returns the first error; `out` is then unspecified.
std::optional<ConfigError> load_config(const std::string& path, Config& out);

/// Checks cross-field constraints (after CLI overrides too).
std::optional<ConfigError> validate(const Config& cfg);

/// What --check prints: the understood configuration, secrets masked.
std::string describe(const Config& cfg);

}  // namespace cacheproxy::config
