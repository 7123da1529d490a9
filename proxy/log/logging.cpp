#include "log/logging.hpp"

#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <vector>

namespace cacheproxy::log {

namespace {
std::shared_ptr<spdlog::logger> g_access;
}

void setup(const config::LoggingConfig& cfg) {
    std::vector<spdlog::sink_ptr> sinks;
    sinks.push_back(std::make_shared<spdlog::sinks::stdout_sink_mt>());
    if (!cfg.file.empty()) {
        sinks.push_back(std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
            cfg.file, cfg.max_file_bytes, cfg.max_files));
    }
    auto main = std::make_shared<spdlog::logger>("cacheproxy", sinks.begin(), sinks.end());
    main->set_level(spdlog::level::from_str(cfg.level));
    // Loggers sharing sinks share the sinks' formatter: one pattern for both.
    main->set_pattern("%Y-%m-%dT%H:%M:%S.%e %n %l [%t] %v");
    main->flush_on(spdlog::level::info);
    spdlog::set_default_logger(main);

    if (cfg.access_log) {
        g_access = std::make_shared<spdlog::logger>("access", sinks.begin(), sinks.end());
        g_access->set_level(spdlog::level::info);
        g_access->flush_on(spdlog::level::info);
    } else {
        g_access.reset();
    }
}

bool set_level(const std::string& level) {
    const auto next = spdlog::level::from_str(level);
    const auto logger = spdlog::default_logger();
    if (logger->level() == next) return false;
    logger->set_level(next);
    return true;
}

std::string_view path_only(std::string_view target) {
    const auto q = target.find('?');
    return q == std::string_view::npos ? target : target.substr(0, q);
}

void access(const AccessRecord& r) {
    if (!g_access) return;
    if (r.upstream_ms >= 0) {
        g_access->info("{} {} {} route={} cache={} upstream_ms={:.1f} total_ms={:.1f}", r.method,
                       path_only(r.target), r.status, r.route, r.cache, r.upstream_ms, r.total_ms);
    } else {
        g_access->info("{} {} {} route={} cache={} upstream_ms=- total_ms={:.1f}", r.method,
                       path_only(r.target), r.status, r.route, r.cache, r.total_ms);
    }
}

}  // namespace cacheproxy::log
