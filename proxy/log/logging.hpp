#pragma once
/// Logging: spdlog to the console and an optional rotating file, plus the
/// access log (one line per request). No credential or cookie value is ever
/// passed to a logger: callers log paths without query strings and never
/// log header values.

#include "config/config.hpp"

#include <spdlog/logger.h>

#include <chrono>
#include <memory>
#include <string_view>

namespace cacheproxy::log {

/// Installs the default logger ("cacheproxy") and the access logger.
void setup(const config::LoggingConfig& cfg);

/// The default logger's level from now on (a reload's logging.level; an
/// atomic inside spdlog: safe while every thread logs). True when it changed.
bool set_level(const std::string& level);

/// One request, as the access log records it.
struct AccessRecord {
    std::string_view method;
    std::string_view target;     ///< the path only is logged, never the query string
    unsigned status = 0;
    std::string_view route;      ///< rule name, or "-" for pass-through
    std::string_view cache;      ///< HIT, MISS, STALE, BYPASS, or "-"
    double upstream_ms = -1;     ///< -1: no upstream call
    double total_ms = 0;
};

/// Writes one access-log line (no-op when the access log is off).
void access(const AccessRecord& rec);

/// The path part of a request target (query string dropped).
std::string_view path_only(std::string_view target);

}  // namespace cacheproxy::log
