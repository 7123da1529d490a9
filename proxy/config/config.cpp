#include "config/config.hpp"

#include "yaml/units.hpp"
#include "yaml/yaml_reader.hpp"
#include "http/trusted_proxies.hpp"
#include "rules/rules_loader.hpp"

#include <spdlog/common.h>

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <charconv>
#include <cctype>
#include <exception>
#include <filesystem>
#include <sstream>
#include <string_view>
#include <utility>

namespace cacheproxy::config {
namespace {

void read_upstream(YamlReader up, UpstreamConfig& out) {
    up.read_string("url", out.url);
    HostPort parsed;
    if (!parse_http_url(out.url, parsed)) {  // a bad URL is reported, with its position, by validate()
        out.host = parsed.host;
        out.port = parsed.port;
    }
    up.read_unsigned("max_connections", out.max_connections);
    up.read_unsigned("max_idle_connections", out.max_idle_connections);
    up.read_duration("idle_timeout", out.idle_timeout);
    up.read_duration("connect_timeout", out.connect_timeout);
    up.read_duration("response_timeout", out.response_timeout);
    YamlReader health = up.child("health");
    health.read_string("path", out.health_path);
    health.read_duration("interval", out.health_interval);
    health.read_duration("timeout", out.health_timeout);
    health.finish();
    up.finish();
}

void read_server(YamlReader server, ServerConfig& out) {
    server.read_string_list("trusted_proxies", out.trusted_proxies);
    server.finish();
}

void read_timeouts(YamlReader& top, std::vector<PathTimeouts>& out) {
    for (auto& t : top.children("timeouts")) {
        PathTimeouts p;
        t.require("prefix");
        t.read_string("prefix", p.prefix);
        if (t.has("response")) {
            Duration d{};
            t.read_duration("response", d);
            p.response = d;
        }
        if (t.has("body")) {
            Duration d{};
            t.read_duration("body", d);
            p.body = d;
        }
        t.finish();
        out.push_back(std::move(p));
    }
}

void read_tunnel(YamlReader tunnel, TunnelConfig& out) {
    tunnel.read_string_list("protocols", out.protocols);
    tunnel.read_duration("idle_timeout", out.idle_timeout);
    tunnel.read_unsigned("max_open", out.max_open);
    tunnel.finish();
}

void read_limits(YamlReader limits, LimitsConfig& out) {
    limits.read_size("max_header_bytes", out.max_header_bytes);
    limits.read_size("max_body_bytes", out.max_body_bytes);
    limits.read_size("max_pass_through_body_bytes", out.max_pass_through_body_bytes);
    limits.read_size("max_chunk_extension_bytes", out.max_chunk_extension_bytes);
    limits.read_size("splice_from_bytes", out.splice_from_bytes);
    limits.read_duration("header_timeout", out.header_timeout);
    limits.read_duration("idle_timeout", out.idle_timeout);
    limits.read_duration("body_timeout", out.body_timeout);
    limits.read_duration("stream_timeout", out.stream_timeout);
    limits.read_unsigned("max_client_connections", out.max_client_connections);
    limits.read_duration("drain_timeout", out.drain_timeout);
    limits.read_size("request_buffer_bytes", out.request_buffer_bytes);
    limits.read_size("min_body_rate", out.min_body_rate);
    limits.finish();
}

void read_compression(YamlReader c, CompressionConfig& out) {
    c.read_bool("enabled", out.enabled);
    c.read_size("min_size", out.min_size);
    unsigned level = static_cast<unsigned>(out.level), stream_level = static_cast<unsigned>(out.stream_level);
    c.read_unsigned("level", level);
    c.read_unsigned("stream_level", stream_level);
    out.level = static_cast<int>(level);
    out.stream_level = static_cast<int>(stream_level);
    c.read_size("max_decoded_bytes", out.max_decoded_bytes);
    c.finish();
}

void read_logging(YamlReader logging, LoggingConfig& out) {
    logging.read_string("level", out.level);
    logging.read_string("file", out.file);
    logging.read_size("max_file_size", out.max_file_bytes);
    logging.read_unsigned("max_files", out.max_files);
    logging.read_bool("access_log", out.access_log);
    logging.finish();
}

void read_admin(YamlReader admin, AdminConfig& out) {
    admin.read_bool("enabled", out.enabled);
    admin.read_host_port("listen", out.listen);
    admin.read_string("token", out.token);
    admin.finish();
}

void read_shared_tier(YamlReader t, SharedTierConfig& out) {
    t.read_string("redis", out.redis);
    t.read_string_list("cluster", out.cluster);
    t.read_string("identity_key_file", out.identity_key_file);
    t.read_string("password_file", out.password_file);
    t.read_duration("connect_timeout", out.connect_timeout);
    t.read_duration("op_timeout", out.op_timeout);
    t.read_duration("barrier_timeout", out.barrier_timeout);
    t.read_duration("publish_timeout", out.publish_timeout);
    t.read_duration("max_invalidation_lag", out.max_invalidation_lag);
    t.read_string("on_redis_down", out.on_redis_down);
    t.read_bool("l2", out.l2);
    t.read_duration("lease_ttl", out.lease_ttl);
    t.finish();
}

/// `rules` as written in the config file, made relative to the config file's folder.
std::string resolve_rules_path(const std::string& config_path, const std::string& rules) {
    std::filesystem::path p(rules);
    if (p.is_relative()) p = std::filesystem::path(config_path).parent_path() / p;
    return p.lexically_normal().string();
}

bool is_log_level(const std::string& name) {
    return name == "off" || spdlog::level::from_str(name) != spdlog::level::off;
}

/// `s` as a YAML scalar: bare when that reads back as the same string, else double-quoted.
std::string yaml_string(const std::string& s) {
    bool bare = !s.empty() && s.front() != ' ' && s.back() != ' ' && s.back() != ':' &&
                std::string_view("!&*-?{}[],#|>@`\"'%:~").find(s.front()) == std::string_view::npos &&
                s.find(": ") == std::string::npos && s.find(" #") == std::string::npos &&
                std::none_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == '\\'; });
    if (bare) return s;
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

std::string yaml_list(const std::vector<std::string>& items) {
    std::string out = "[";
    for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + yaml_string(items[i]);
    return out + "]";
}

/// One line per route: what is matched, how long it is kept, what the key is made of.
std::string route_summary(const rules::RouteRule& r) {
    std::ostringstream s;
    s << r.name << ": " << r.method << " " << r.path << ", ttl " << format_duration(r.ttl)
      << (r.shared ? ", shared" : ", per user");
    if (!r.key.query.empty()) s << ", query " << yaml_list(r.key.query);
    if (!r.key.headers.empty()) s << ", headers " << yaml_list(r.key.headers);
    s << ", max " << r.max_entries << " entries / " << format_size(r.max_bytes) << " (" << format_size(r.max_object_bytes)
      << " each)";
    if (r.stale_while_revalidate.count()) s << ", stale-while-revalidate " << format_duration(r.stale_while_revalidate);
    if (r.stale_if_error.count()) s << ", stale-if-error " << format_duration(r.stale_if_error);
    if (r.refresh_ahead.count()) s << ", refresh-ahead " << format_duration(r.refresh_ahead);
    s << ", statuses [";
    for (std::size_t i = 0; i < r.statuses.size(); ++i) s << (i ? ", " : "") << r.statuses[i];
    s << "]";
    if (r.allow_client_no_cache) s << ", honours client no-cache";
    return s.str();
}

const char* identity_kind(rules::IdentitySource::Kind kind) {
    switch (kind) {
        case rules::IdentitySource::Kind::header: return "header";
        case rules::IdentitySource::Kind::cookie: return "cookie";
        case rules::IdentitySource::Kind::query: return "query";
    }
    return "?";
}

/// host:port with a numeric host (the tier resolves nothing on its path).
bool numeric_address(const std::string& text) {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) return false;
    std::string host = text.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    boost::system::error_code ec;
    boost::asio::ip::make_address(host, ec);
    if (ec) return false;
    unsigned port = 0;
    const auto digits = std::string_view(text).substr(colon + 1);
    const auto r = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    return r.ec == std::errc() && r.ptr == digits.data() + digits.size() && port > 0 && port <= 65535;
}

void describe_shared_tier(const SharedTierConfig& t, std::ostringstream& s) {
    if (!t.enabled()) {
        s << "shared_tier: {}   # off: this instance caches alone\n";
        return;
    }
    s << "shared_tier:\n";
    if (!t.redis.empty()) s << "  redis: " << yaml_string(t.redis) << "\n";
    if (!t.cluster.empty()) s << "  cluster: " << yaml_list(t.cluster) << "\n";
    s << "  identity_key_file: " << yaml_string(t.identity_key_file) << "   # its bytes are not shown\n"
      << "  password_file: " << yaml_string(t.password_file) << "\n"
      << "  connect_timeout: " << format_duration(t.connect_timeout) << "\n"
      << "  op_timeout: " << format_duration(t.op_timeout) << "\n"
      << "  barrier_timeout: " << format_duration(t.barrier_timeout) << "\n"
      << "  publish_timeout: " << format_duration(t.publish_timeout) << "\n"
      << "  max_invalidation_lag: " << format_duration(t.max_invalidation_lag)
      << (t.max_invalidation_lag.count() ? "" : "   # strict") << "\n"
      << "  on_redis_down: " << t.on_redis_down << "\n"
      << "  l2: " << (t.l2 ? "true" : "false") << "\n"
      << "  lease_ttl: " << format_duration(t.lease_ttl) << "\n";
}

std::optional<ConfigError> validate_shared_tier(const Config& cfg) {
    const SharedTierConfig& t = cfg.shared_tier;
    auto problem = [&](std::string key, std::string message) {
        return ConfigError{cfg.source_path, 0, 0, "shared_tier." + std::move(key), std::move(message)};
    };
    if (!t.enabled()) return std::nullopt;
    if (!t.redis.empty() && !t.cluster.empty()) return problem("cluster", "give either redis or cluster, not both");
    if (!t.redis.empty() && !numeric_address(t.redis))
        return problem("redis", "must be a numeric HOST:PORT (\"127.0.0.1:6379\"), got \"" + t.redis + "\"");
    for (std::size_t i = 0; i < t.cluster.size(); ++i)
        if (!numeric_address(t.cluster[i]))
            return problem("cluster[" + std::to_string(i) + "]", "must be a numeric HOST:PORT, got \"" + t.cluster[i] + "\"");
    if (t.identity_key_file.empty())
        return problem("identity_key_file",
                       "required with a shared tier: every instance must hash credentials with the same key");
    if (t.on_redis_down != "bypass" && t.on_redis_down != "local")
        return problem("on_redis_down", "must be bypass or local, got \"" + t.on_redis_down + "\"");
    const std::pair<const char*, Duration> positive[] = {{"connect_timeout", t.connect_timeout},
                                                         {"op_timeout", t.op_timeout},
                                                         {"barrier_timeout", t.barrier_timeout},
                                                         {"publish_timeout", t.publish_timeout},
                                                         {"lease_ttl", t.lease_ttl}};
    for (const auto& [key, value] : positive)
        if (value <= Duration::zero() || value > std::chrono::minutes(10))
            return problem(key, "must be > 0 and at most 10m, got " + format_duration(value));
    if (t.max_invalidation_lag < Duration::zero() || t.max_invalidation_lag > std::chrono::seconds(60))
        return problem("max_invalidation_lag", "must be 0 (strict) .. 60s, got " + format_duration(t.max_invalidation_lag));
    return std::nullopt;
}

}  // namespace

std::optional<ConfigError> load_config(const std::string& path, Config& out) {
    YAML::Node root;
    if (auto error = load_yaml_file(path, root)) return error;
    YamlSource source{path, std::nullopt};
    Config cfg;
    cfg.source_path = path;
    try {
        YamlReader top(source, root, "");
        top.read_host_port("listen", cfg.listen);
        top.read_unsigned("threads", cfg.threads);
        read_server(top.child("server"), cfg.server);
        read_upstream(top.child("upstream"), cfg.upstream);
        read_limits(top.child("limits"), cfg.limits);
        read_logging(top.child("logging"), cfg.logging);
        read_compression(top.child("compression"), cfg.compression);
        read_admin(top.child("admin"), cfg.admin);
        read_tunnel(top.child("tunnel"), cfg.tunnel);
        read_timeouts(top, cfg.timeouts);
        read_shared_tier(top.child("shared_tier"), cfg.shared_tier);
        if (top.has("rules")) {
            std::string rules;
            top.read_string("rules", rules);
            if (rules.empty())
                top.fail("rules", "must name a rules file (leave the key out to cache nothing)");
            else
                cfg.rules_path = resolve_rules_path(path, rules);
        }
        top.finish();
        if (!source.error)
            if (auto error = validate(cfg)) source.fail(locate(root, error->key), error->key, error->message);
        if (!source.error && !cfg.rules_path.empty()) {
            if (auto error = rules::load_rules(cfg.rules_path, cfg.rules)) {
                if (error->line != 0 || !error->key.empty()) return error;  // an error inside the rules file
                source.fail(locate(root, "rules"), "rules", error->message + ": " + cfg.rules_path);
            }
        }

    } catch (const std::exception& e) {  // yaml-cpp should not throw here; never let it escape
        source.fail(YAML::Mark::null_mark(), "", std::string("cannot read config: ") + e.what());
    }
    if (source.error) return source.error;
    out = std::move(cfg);
    return std::nullopt;
}

std::optional<ConfigError> validate(const Config& cfg) {
    auto problem = [&](std::string key, std::string message) {
        return ConfigError{cfg.source_path, 0, 0, std::move(key), std::move(message)};
    };
    if (cfg.threads > 256) return problem("threads", "at most 256 (0 = one per core), got " + std::to_string(cfg.threads));
    for (std::size_t i = 0; i < cfg.tunnel.protocols.size(); ++i) {
        const auto& p = cfg.tunnel.protocols[i];
        const bool token = !p.empty() && p.size() <= 64 && std::all_of(p.begin(), p.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~/").find(c) != std::string_view::npos;
        });
        if (!token) return problem("tunnel.protocols[" + std::to_string(i) + "]", "must be an HTTP token, got \"" + p + "\"");
    }
    if (cfg.tunnel.idle_timeout < Duration::zero() || cfg.tunnel.idle_timeout > std::chrono::hours(24 * 366))
        return problem("tunnel.idle_timeout", "must be 0 (never) .. 1 year, got " + format_duration(cfg.tunnel.idle_timeout));
    for (std::size_t i = 0; i < cfg.timeouts.size(); ++i) {
        const auto& t = cfg.timeouts[i];
        const std::string at = "timeouts[" + std::to_string(i) + "]";
        if (t.prefix.empty() || t.prefix.front() != '/') return problem(at + ".prefix", "must start with '/'");
        if (t.response && (*t.response <= Duration::zero() || *t.response > std::chrono::hours(24 * 366)))
            return problem(at + ".response", "must be > 0 and at most 1 year");
        if (t.body && (*t.body < Duration::zero() || *t.body > std::chrono::hours(24 * 366)))
            return problem(at + ".body", "must be 0 (none) .. 1 year");
    }
    if (cfg.limits.stream_timeout < Duration::zero() || cfg.limits.stream_timeout > std::chrono::hours(24 * 366))
        return problem("limits.stream_timeout", "must be 0 (none) .. 1 year");
    if (cfg.tunnel.max_open == 0 || cfg.tunnel.max_open > 1'000'000)
        return problem("tunnel.max_open", "must be 1..1000000, got " + std::to_string(cfg.tunnel.max_open));

    if (auto error = validate_shared_tier(cfg)) return error;

    const UpstreamConfig& up = cfg.upstream;
    HostPort parsed;
    if (auto why = parse_http_url(up.url, parsed)) return problem("upstream.url", "bad URL \"" + up.url + "\": " + *why);
    if (up.port == 0) return problem("upstream.url", "port must be 1..65535");
    if (!up.health_path.empty() && up.health_path.front() != '/')
        return problem("upstream.health.path", "must start with '/' (or be \"\" to disable health checks)");

    const std::pair<const char*, Duration> timeouts[] = {
        {"upstream.idle_timeout", up.idle_timeout},
        {"upstream.connect_timeout", up.connect_timeout},
        {"upstream.response_timeout", up.response_timeout},
        {"upstream.health.interval", up.health_interval},
        {"upstream.health.timeout", up.health_timeout},
        {"limits.header_timeout", cfg.limits.header_timeout},
        {"limits.idle_timeout", cfg.limits.idle_timeout},
        {"limits.body_timeout", cfg.limits.body_timeout},
        {"limits.drain_timeout", cfg.limits.drain_timeout},
    };
    for (const auto& [key, value] : timeouts)
        if (value <= Duration::zero()) return problem(key, "must be > 0, got " + format_duration(value));

    // Every numeric limit has a range: a value the code would truncate (a
    // 32-bit parser limit, say) is refused here, not misread later.
    struct Range {
        const char* key;
        std::size_t value, min, max;
        bool count = false;  ///< a number of things, not bytes
    };
    constexpr std::size_t KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;
    const Range ranges[] = {
        {"upstream.max_connections", up.max_connections, 0, 100000, true},
        {"upstream.max_idle_connections", up.max_idle_connections, 0, 100000, true},
        {"limits.max_header_bytes", cfg.limits.max_header_bytes, 256, 1 * MiB},
        {"limits.max_body_bytes", cfg.limits.max_body_bytes, 1, 64 * GiB},
        {"limits.max_pass_through_body_bytes", cfg.limits.max_pass_through_body_bytes, 0, 1024 * 1024 * GiB},
        {"limits.max_chunk_extension_bytes", cfg.limits.max_chunk_extension_bytes, 0, 64 * KiB},
        {"limits.splice_from_bytes", cfg.limits.splice_from_bytes, 0, 64 * GiB},
        {"limits.max_client_connections", cfg.limits.max_client_connections, 1, 1000000, true},
        {"limits.request_buffer_bytes", cfg.limits.request_buffer_bytes, 0, 64 * MiB},
        {"limits.min_body_rate", cfg.limits.min_body_rate, 0, 1 * GiB},
        {"logging.max_file_size", cfg.logging.max_file_bytes, 1, 64 * GiB},
        {"logging.max_files", cfg.logging.max_files, 1, 10000, true},
        {"compression.min_size", cfg.compression.min_size, 0, 1 * GiB},
        {"compression.max_decoded_bytes", cfg.compression.max_decoded_bytes, 1, 64 * GiB},
    };
    for (const auto& r : ranges) {
        if (r.value >= r.min && r.value <= r.max) continue;
        auto text = [&r](std::size_t v) { return r.count ? std::to_string(v) : format_size(v); };
        return problem(r.key, "must be " + text(r.min) + " to " + text(r.max) + ", got " + text(r.value));
    }
    const std::pair<const char*, Duration> long_ones[] = {
        {"upstream.idle_timeout", up.idle_timeout},       {"upstream.connect_timeout", up.connect_timeout},
        {"upstream.response_timeout", up.response_timeout}, {"upstream.health.interval", up.health_interval},
        {"upstream.health.timeout", up.health_timeout},     {"limits.header_timeout", cfg.limits.header_timeout},
        {"limits.idle_timeout", cfg.limits.idle_timeout},   {"limits.body_timeout", cfg.limits.body_timeout},
        {"limits.drain_timeout", cfg.limits.drain_timeout},
    };
    for (const auto& [key, value] : long_ones)
        if (value > std::chrono::hours(24 * 365)) return problem(key, "at most a year, got " + format_duration(value));

    for (std::size_t i = 0; i < cfg.server.trusted_proxies.size(); ++i) {
        std::string why;
        if (!http::parse_network(cfg.server.trusted_proxies[i], why))
            return problem("server.trusted_proxies[" + std::to_string(i) + "]", why);
    }

    if (!is_log_level(cfg.logging.level))
        return problem("logging.level", "unknown level \"" + cfg.logging.level +
                                            "\" (expected trace, debug, info, warn, error, critical or off)");
    if (cfg.compression.level < 1 || cfg.compression.level > 9)
        return problem("compression.level", "must be 1 (fastest) to 9 (smallest)");
    if (cfg.compression.stream_level < 1 || cfg.compression.stream_level > 9)
        return problem("compression.stream_level", "must be 1 (fastest) to 9 (smallest)");

    const AdminConfig& admin = cfg.admin;
    if (admin.enabled && !is_loopback_host(admin.listen.host) && admin.token.empty())
        return problem("admin.token", "admin.listen " + format_host_port(admin.listen) +
                                          " is reachable from other machines: set admin.token, or listen on 127.0.0.1");
    return std::nullopt;
}

std::string describe(const Config& cfg) {
    std::ostringstream s;
    const UpstreamConfig& up = cfg.upstream;
    const LimitsConfig& lim = cfg.limits;
    s << "# cacheproxy configuration as understood"
      << (cfg.source_path.empty() ? " (built-in defaults)" : " from " + cfg.source_path) << "\n"
      << "listen: " << yaml_string(format_host_port(cfg.listen)) << "\n"
      << "threads: " << cfg.threads << (cfg.threads == 0 ? "   # one per core" : "") << "\n"
      << "tunnel:\n"
      << "  protocols: " << yaml_list(cfg.tunnel.protocols) << "\n"
      << "  idle_timeout: " << format_duration(cfg.tunnel.idle_timeout) << "\n"
      << "  max_open: " << cfg.tunnel.max_open << "\n"
      << "server:\n"
      << "  trusted_proxies: " << yaml_list(cfg.server.trusted_proxies)
      << (cfg.server.trusted_proxies.empty() ? "   # trust no one's X-Forwarded-*" : "") << "\n"
      << "upstream:\n"
      << "  url: " << yaml_string(up.url) << "   # " << format_host_port({up.host, up.port}) << "\n"
      << "  max_connections: " << up.max_connections << (up.max_connections ? "   # in use at once" : "   # no cap")
      << "\n"
      << "  max_idle_connections: " << up.max_idle_connections << "   # kept alive for reuse\n"
      << "  idle_timeout: " << format_duration(up.idle_timeout) << "\n"
      << "  connect_timeout: " << format_duration(up.connect_timeout) << "\n"
      << "  response_timeout: " << format_duration(up.response_timeout) << "\n"
      << "  health:\n"
      << "    path: " << yaml_string(up.health_path) << (up.health_path.empty() ? "   # health checks off" : "") << "\n"
      << "    interval: " << format_duration(up.health_interval) << "\n"
      << "    timeout: " << format_duration(up.health_timeout) << "\n"
      << "limits:\n"
      << "  max_header_bytes: " << format_size(lim.max_header_bytes) << "\n"
      << "  max_body_bytes: " << format_size(lim.max_body_bytes) << "\n"
      << "  max_pass_through_body_bytes: " << format_size(lim.max_pass_through_body_bytes)
      << (lim.max_pass_through_body_bytes == 0 ? "   # no limit" : "") << "\n"
      << "  max_chunk_extension_bytes: " << format_size(lim.max_chunk_extension_bytes) << "\n"
      << "  splice_from_bytes: " << format_size(lim.splice_from_bytes)
      << (lim.splice_from_bytes == 0 ? "   # never" : "") << "\n"
      << "  header_timeout: " << format_duration(lim.header_timeout) << "\n"
      << "  idle_timeout: " << format_duration(lim.idle_timeout) << "\n"
      << "  body_timeout: " << format_duration(lim.body_timeout) << "\n"
      << "  max_client_connections: " << lim.max_client_connections << "\n"
      << "  drain_timeout: " << format_duration(lim.drain_timeout) << "\n"
      << "  request_buffer_bytes: " << format_size(lim.request_buffer_bytes) << "\n"
      << "  min_body_rate: " << format_size(lim.min_body_rate) << (lim.min_body_rate ? "   # per second" : "   # off")
      << "\n"
      << "logging:\n"
      << "  level: " << yaml_string(cfg.logging.level) << "\n"
      << "  file: " << yaml_string(cfg.logging.file) << (cfg.logging.file.empty() ? "   # console only" : "") << "\n"
      << "  max_file_size: " << format_size(cfg.logging.max_file_bytes) << "\n"
      << "  max_files: " << cfg.logging.max_files << "\n"
      << "  access_log: " << (cfg.logging.access_log ? "true" : "false") << "\n"
      << "compression:\n"
      << "  enabled: " << (cfg.compression.enabled ? "true" : "false") << "\n"
      << "  min_size: " << format_size(cfg.compression.min_size) << "\n"
      << "  level: " << cfg.compression.level << "\n"
      << "  stream_level: " << cfg.compression.stream_level << "\n"
      << "  max_decoded_bytes: " << format_size(cfg.compression.max_decoded_bytes) << "\n"
      << "admin:\n"
      << "  enabled: " << (cfg.admin.enabled ? "true" : "false") << "\n"
      << "  listen: " << yaml_string(format_host_port(cfg.admin.listen)) << "\n"
      << "  token: " << (cfg.admin.token.empty() ? "\"\"   # none" : "\"***\"   # set, not shown") << "\n";
    describe_shared_tier(cfg.shared_tier, s);

    const rules::RuleSet& rules = cfg.rules;
    if (cfg.rules_path.empty()) {
        s << "rules: \"\"   # no rules file: nothing is cached\n";
        return s.str();
    }
    s << "rules: " << yaml_string(cfg.rules_path) << "\n"
      << "identity: { " << identity_kind(rules.identity.kind) << ": " << yaml_string(rules.identity.name) << " }\n"
      << "coalesce: { timeout: " << format_duration(rules.coalesce_timeout) << ", max_waiters: " << rules.max_waiters
      << ", error_hold: " << format_duration(rules.coalesce_error_hold) << ", max_unshared: " << rules.max_unshared
      << " }\n"
      << "routes:   # " << rules.routes.size() << " cached; every other request passes through\n";
    for (const rules::RouteRule& r : rules.routes) s << "  - " << route_summary(r) << "\n";
    return s.str();
}

}  // namespace cacheproxy::config
