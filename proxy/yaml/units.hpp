#pragma once
/// The value forms that config files and command-line flags are written in:
/// durations ("15s"), sizes ("10MiB"), addresses ("HOST:PORT") and the upstream
/// URL ("http://HOST:PORT"). Parsed strictly, formatted back for describe().
/// Pure functions: no I/O, no exceptions.

#include "yaml/config_error.hpp"

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace cacheproxy::config {

/// "300ms", "15s", "2m", "1h", "0s": a non-negative integer then a unit (ms, s, m, h).
/// nullopt for anything else: no unit, a sign, a fraction, spaces, overflow.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

/// "512" or "512B" (bytes), "16KiB" / "10MiB" / "1GiB" (powers of 1024),
/// "10KB" / "10MB" / "1GB" (powers of 1000). nullopt for anything else or overflow.
std::optional<std::size_t> parse_size(std::string_view text);

/// The largest whole unit parse_duration() reads back: "300ms", "15s", "90s", "2m", "1h".
std::string format_duration(std::chrono::milliseconds d);

/// The largest whole unit parse_size() reads back: "16KiB", "1MiB", "10MB", "256B".
std::string format_size(std::size_t bytes);

/// "HOST:PORT" or "[IPV6]:PORT" with a port in 0..65535 into `out`.
/// Returns why the text is not one (and leaves `out` alone).
std::optional<std::string> parse_host_port(std::string_view text, HostPort& out);

/// "HOST:PORT", with brackets around an IPv6 host: what parse_host_port() reads.
std::string format_host_port(const HostPort& hp);

/// "http://HOST[:PORT][/]" into `out` (port defaults to 80, must be 1..65535).
/// Returns why not: https, a path, a query, a bad host or port.
std::optional<std::string> parse_http_url(std::string_view text, HostPort& out);

/// True when `host` is only reachable from this machine: 127.x.x.x, ::1, localhost.
bool is_loopback_host(std::string_view host);

}  // namespace cacheproxy::config
