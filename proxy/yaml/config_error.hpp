#pragma once
/// The few types every file that reads YAML shares (the config and the rules
/// alike): a duration, a host and port, and the error that names file, line,
/// column and key. In namespace config, where they have always been named.

#include <chrono>
#include <cstdint>
#include <string>

namespace cacheproxy::config {

using Duration = std::chrono::milliseconds;

/// A host and a port, as written "HOST:PORT" ("[::1]:8080" for IPv6).
struct HostPort {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
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

}  // namespace cacheproxy::config
