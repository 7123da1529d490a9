#pragma once
/// The admin API's pure part: a request in, a response out, no I/O (Beast's
/// advanced_server shape). admin_server.cpp only reads and writes sockets.
///
///   GET  /healthz     the process is alive
///   GET  /readyz      config loaded and the upstream healthy (503 otherwise)
///   GET  /stats       everything, as JSON (stats::render_json)
///   GET  /metrics     the same in Prometheus' text format (stats::render_prometheus)
///   GET  /dashboard   one self-contained HTML page that polls /stats and draws charts
///   POST /purge       ?route=NAME | ?all=1, optionally X-Purge-Credential: one user's entries
///
/// Guards: POST /purge always needs "Authorization: Bearer <admin.token>"
/// (403 when no token is configured, 401 when it is wrong or missing). When
/// the listener is reachable beyond loopback (reads_need_token), /stats and
/// /metrics need it too; /healthz, /readyz and the dashboard's static HTML
/// carry no data and stay open. No credential is ever logged or echoed.

#include "core/worker.hpp"
#include "stats/report.hpp"

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <functional>
#include <string_view>

namespace cacheproxy::admin {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

/// What the admin API reads and acts on.
struct AdminContext {
    app::ServerContext& ctx;
    /// Gathers the stats report (the server merges its workers' stats here).
    std::function<stats::Report()> report;
    /// The listener is bound beyond loopback: reads need the token too.
    bool reads_need_token = false;
};

/// Answers one admin request. No I/O; safe to call from the admin thread
/// while the workers run (it reads their stats through relaxed atomics).
Response handle(const Request& req, AdminContext& admin);

/// True when `req` carries exactly one "Authorization: Bearer <token>" equal
/// to `token` (compared in constant time for equal lengths). False when
/// `token` is empty.
bool authorized(const Request& req, std::string_view token);

/// The dashboard page (self-contained HTML: inline CSS and JS, no CDN).
std::string_view dashboard_html();

}  // namespace cacheproxy::admin
