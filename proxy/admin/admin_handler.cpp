#include "admin/admin_handler.hpp"

#include "cache/cache_key.hpp"
#include "log/logging.hpp"
#include "stats/json_writer.hpp"
#include "util/ascii.hpp"

#include <boost/beast/http/field.hpp>
#include <spdlog/spdlog.h>

#include <optional>
#include <string>

namespace cacheproxy::admin {

namespace bhttp = boost::beast::http;

namespace {

constexpr std::string_view kJson = "application/json";

/// Equal contents, in time that depends only on the lengths.
bool constant_time_equal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    unsigned char diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        diff |= static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i]);
    return diff == 0;
}

void set_body(Response& res, bhttp::status status, std::string_view content_type, std::string body) {
    res.result(status);
    res.set(bhttp::field::content_type, content_type);
    res.body() = std::move(body);
}

std::string error_json(std::string_view message) {
    stats::JsonWriter w;
    w.begin_object().member("error", message).end_object();
    return w.take();
}

void unauthorized(Response& res) {
    res.set(bhttp::field::www_authenticate, "Bearer realm=\"cacheproxy-admin\"");
    set_body(res, bhttp::status::unauthorized, kJson, error_json("unauthorized: send Authorization: Bearer <admin.token>"));
}

/// The query's parameters; false when one is malformed or repeated.
struct PurgeQuery {
    std::optional<std::string_view> route;
    bool all = false;
};
std::optional<PurgeQuery> fail(std::string& why, std::string_view message) {
    why = message;
    return std::nullopt;
}
std::optional<PurgeQuery> parse_purge_query(std::string_view query, std::string& why) {
    PurgeQuery q;
    bool saw_all = false;
    while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (pair.empty()) continue;
        const auto eq = pair.find('=');
        const std::string_view k = pair.substr(0, eq);
        const std::string_view v = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
        if (k == "route") {
            if (q.route) return fail(why, "route given twice");
            q.route = v;
        } else if (k == "all") {
            if (saw_all) return fail(why, "all given twice");
            saw_all = true;
            if (v != "1" && v != "true") return fail(why, "all must be 1");
            q.all = true;
        } else {
            return fail(why, "unknown parameter (use route=NAME or all=1)");
        }
    }
    if (q.all == q.route.has_value()) return fail(why, "give exactly one of route=NAME or all=1");
    if (q.route && q.route->empty()) return fail(why, "route is empty");
    return q;
}

/// POST /purge: drops a route's entries, one user's entries, or everything.
void purge(const Request& req, std::string_view query, AdminContext& admin, Response& res) {
    const auto& token = admin.ctx.cfg.admin.token;
    if (token.empty()) {
        set_body(res, bhttp::status::forbidden, kJson, error_json("set admin.token to enable purge"));
        return;
    }
    if (!authorized(req, token)) return unauthorized(res);

    std::string why;
    const auto q = parse_purge_query(query, why);
    if (!q) return set_body(res, bhttp::status::bad_request, kJson, error_json(why));

    std::optional<std::string_view> credential;
    if (const auto n = req.count("X-Purge-Credential"); n > 1) {
        return set_body(res, bhttp::status::bad_request, kJson, error_json("X-Purge-Credential given more than once"));
    } else if (n == 1) {
        credential = util::trim_ows(req["X-Purge-Credential"]);
        if (credential->empty())
            return set_body(res, bhttp::status::bad_request, kJson, error_json("X-Purge-Credential is empty"));
    }

    app::CacheContext* shared = admin.ctx.cache.get();
    const auto running = shared ? shared->current() : nullptr;  // the rules running now
    const app::RuleSnapshot* cc = running.get();
    std::size_t first = 0, last = 0;  // routes [first, last)
    if (q->route) {
        const std::size_t idx = cc ? cc->route_index(*q->route) : static_cast<std::size_t>(-1);
        if (idx == static_cast<std::size_t>(-1))
            return set_body(res, bhttp::status::not_found, kJson, error_json("no cached route by that name"));
        if (credential && !cache::per_user(cc->matcher.routes()[idx]))
            return set_body(res, bhttp::status::bad_request, kJson,
                            error_json("the route is shared: it has no per-user entries (purge it without X-Purge-Credential)"));
        first = idx;
        last = idx + 1;
    } else if (cc) {
        last = cc->matcher.routes().size();
    }

    std::uint64_t dropped = 0;
    if (cc) {
        std::optional<cache::IdentityHash> identity;
        if (credential) identity = cc->hasher.hash(*credential);
        for (std::size_t i = first; i < last; ++i) {
            std::size_t n = 0;
            if (identity) {
                if (!cache::per_user(cc->matcher.routes()[i])) continue;
                // As a widened write does: a fill of this user already in flight is then never stored.
                n = cc->cache.invalidate({*identity, {}, {cc->slot(i)}, {}, std::nullopt});
            } else {
                n = cc->cache.purge_route(cc->slot(i));
            }
            shared->purged[cc->slot(i)].fetch_add(n, std::memory_order_relaxed);
            dropped += n;
        }
    }
    spdlog::info("admin purge: {} {}dropped {} entr{}", q->route ? "route " + std::string(*q->route) : std::string("all routes"),
                 credential ? "(one user) " : "", dropped, dropped == 1 ? "y" : "ies");
    stats::JsonWriter w;
    w.begin_object().member("dropped", dropped).end_object();
    set_body(res, bhttp::status::ok, kJson, w.take());
}

}  // namespace

bool authorized(const Request& req, std::string_view token) {
    if (token.empty() || req.count(bhttp::field::authorization) != 1) return false;
    const std::string_view v = util::trim_ows(req[bhttp::field::authorization]);
    constexpr std::string_view scheme = "Bearer ";
    if (v.size() <= scheme.size() || !util::iequals(v.substr(0, scheme.size()), scheme)) return false;
    return constant_time_equal(util::trim_ows(v.substr(scheme.size())), token);
}

Response handle(const Request& req, AdminContext& admin) {
    Response res{bhttp::status::ok, req.version()};
    res.set(bhttp::field::cache_control, "no-store");
    res.set("X-Content-Type-Options", "nosniff");
    const std::string_view target = req.target();
    const auto qpos = target.find('?');
    const std::string_view path = target.substr(0, qpos);
    const std::string_view query = qpos == std::string_view::npos ? std::string_view{} : target.substr(qpos + 1);
    const bool read = req.method() == bhttp::verb::get || req.method() == bhttp::verb::head;

    auto method_not_allowed = [&](std::string_view allow) {
        res.set(bhttp::field::allow, allow);
        set_body(res, bhttp::status::method_not_allowed, kJson, error_json("method not allowed"));
    };
    const auto& token = admin.ctx.cfg.admin.token;

    if (path == "/purge") {
        if (req.method() != bhttp::verb::post) method_not_allowed("POST");
        else purge(req, query, admin, res);
    } else if (path == "/healthz" || path == "/readyz" || path == "/stats" || path == "/metrics" ||
               path == "/dashboard" || path == "/") {
        if (!read) {
            method_not_allowed("GET, HEAD");
        } else if (path == "/healthz") {
            set_body(res, bhttp::status::ok, kJson, R"({"status":"ok"})");
        } else if (path == "/readyz") {
            const bool up = !admin.ctx.health.is_down(std::chrono::steady_clock::now()) &&
                            admin.ctx.health.last_check_ok.load();
            stats::JsonWriter w;
            w.begin_object()
                .member("status", up ? "ready" : "not ready")
                .member("config", "loaded")
                .member("config_version", admin.ctx.reloads.text().running_version)
                .member("upstream", up ? "up" : "down");
            // The shared tier never makes the instance unready: without it, it serves L1 only.
            if (admin.ctx.cache && admin.ctx.cache->tier) w.member("shared_tier", admin.ctx.cache->tier->state());
            w.end_object();
            set_body(res, up ? bhttp::status::ok : bhttp::status::service_unavailable, kJson, w.take());
        } else if (path == "/") {
            res.result(bhttp::status::found);
            res.set(bhttp::field::location, "/dashboard");
        } else if (path == "/dashboard") {
            set_body(res, bhttp::status::ok, "text/html; charset=utf-8", std::string(dashboard_html()));
            // Everything is inline; the page may only talk to this listener.
            res.set("Content-Security-Policy",
                    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                    "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'");
        } else if (admin.reads_need_token && !authorized(req, token)) {
            unauthorized(res);
        } else if (path == "/stats") {
            set_body(res, bhttp::status::ok, kJson, stats::render_json(admin.report()));
        } else {  // /metrics
            set_body(res, bhttp::status::ok, "text/plain; version=0.0.4; charset=utf-8",
                     stats::render_prometheus(admin.report()));
        }
    } else {
        set_body(res, bhttp::status::not_found, kJson, error_json("not found"));
    }

    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    if (req.method() == bhttp::verb::head) res.body().clear();  // Content-Length stays that of the GET
    spdlog::debug("admin {} {} -> {}", req.method_string(), path, res.result_int());
    return res;
}

}  // namespace cacheproxy::admin
