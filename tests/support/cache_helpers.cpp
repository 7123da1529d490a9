#include "support/cache_helpers.hpp"

#include <atomic>
#include <cctype>
#include <latch>
#include <thread>

namespace cacheproxy::e2e {

// ------------------------------------------------------------------ rules

std::string rules_yaml(const std::string& routes_yaml, const std::string& coalesce) {
    return "# written by tests/e2e cache tests\n"
           "identity: { header: Authorization }\n"
           "coalesce: " +
           coalesce +
           "\n"
           "routes:\n" +
           routes_yaml;
}

std::string per_user_route(const std::string& name, const std::string& path, const std::string& ttl) {
    return "  - name: " + name +
           "\n"
           "    match: { method: GET, path: " +
           path +
           " }\n"
           "    ttl: " +
           ttl +
           "\n"
           "    max_entries: 1000\n"
           "    key: { identity: true, query: [exchange, account_type] }\n";
}

Proxy::Options with_rules(std::string rules, std::function<void(ProxyConfig&)> configure) {
    Proxy::Options o;
    o.rules_yaml = std::move(rules);
    o.configure = std::move(configure);
    return o;
}

// ------------------------------------------------------------------ users

Headers bearer(int user) { return {{"Authorization", "Bearer user" + std::to_string(user)}}; }

Headers bearer(int user, const Headers& extra) {
    Headers h = bearer(user);
    h.insert(h.end(), extra.begin(), extra.end());
    return h;
}

std::string balance_target(const std::string& exchange, const std::string& account_type) {
    return "/api/trading/balance?exchange=" + exchange + "&account_type=" + account_type;
}

// ------------------------------------------------------------------ bodies

std::optional<Json> body_json(const Response& r) { return parse_json(r.body); }

long long seq_of(const Response& r) {
    auto j = body_json(r);
    if (!j || (*j)["seq"].kind != Json::Kind::number) return -1;
    return (*j)["seq"].as_int();
}

long long user_id_of(const Response& r) {
    auto j = body_json(r);
    if (!j || (*j)["user_id"].kind != Json::Kind::number) return -1;
    return (*j)["user_id"].as_int();
}

std::string trim_ows(std::string_view s) {
    std::size_t b = 0, e = s.size();
    while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
    return std::string(s.substr(b, e - b));
}

std::string describe(const Response& r, std::size_t max_body) {
    std::string out = r.head_text();
    if (!r.error.empty()) out += "\n(error: " + r.error + ")";
    out += "\nbody (" + std::to_string(r.body.size()) + " bytes): " + r.body.substr(0, max_body);
    return out;
}

// ------------------------------------------------------------------ cache headers

namespace {

/// "cacheproxy; hit; ttl=3" -> {"cacheproxy", "hit", "ttl=3"}
std::vector<std::string> split_params(std::string_view v) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (;;) {
        std::size_t semi = v.find(';', start);
        out.push_back(trim_ows(v.substr(start, semi == std::string_view::npos ? std::string_view::npos : semi - start)));
        if (semi == std::string_view::npos) break;
        start = semi + 1;
    }
    return out;
}

bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    return true;
}

bool lower_equals(std::string_view a, std::string_view b) { return iequals(a, b); }

}  // namespace

std::string x_cache(const Response& r) { return r.header("X-Cache").value_or("<none>"); }

long long age_of(const Response& r) {
    auto a = r.header("Age");
    if (!a || !all_digits(trim_ows(*a))) return -1;
    try {
        return std::stoll(trim_ows(*a));
    } catch (...) {
        return -1;
    }
}

::testing::AssertionResult CacheIs(const Response& r, std::string_view expected) {
    auto fail = [&](const std::string& why) {
        return ::testing::AssertionFailure() << "expected a cache " << expected << " answer, but " << why << "\n"
                                             << describe(r, 200);
    };
    if (r.status == 0) return fail("there was no response");
    const auto xs = r.header_values("X-Cache");
    std::optional<std::string> status;
    for (const auto& v : r.header_values("Cache-Status"))
        if (v.rfind("cacheproxy", 0) == 0) status = v;

    if (expected == "NONE") {
        if (!xs.empty()) return fail("it has X-Cache: " + xs.front());
        if (status) return fail("it has Cache-Status: " + *status);
        return ::testing::AssertionSuccess();
    }

    if (xs.empty()) return fail("it has no X-Cache header");
    if (xs.size() > 1) return fail("it has " + std::to_string(xs.size()) + " X-Cache headers");
    if (!lower_equals(trim_ows(xs.front()), expected)) return fail("X-Cache is " + xs.front());

    if (!status) return fail("it has no Cache-Status starting with \"cacheproxy;\"");
    if (status->rfind("cacheproxy;", 0) != 0)
        return fail("Cache-Status does not start with \"cacheproxy;\": " + *status);
    const auto params = split_params(*status);
    auto has = [&](std::string_view p) {
        for (const auto& x : params)
            if (lower_equals(x, p)) return true;
        return false;
    };
    if (expected == "HIT") {
        if (!has("hit")) return fail("Cache-Status has no `hit`: " + *status);
        bool ttl_ok = false;
        for (const auto& x : params) {
            if (x.size() > 4 && lower_equals(x.substr(0, 4), "ttl=")) {
                std::string n = x.substr(4);
                if (!n.empty() && n[0] == '-') n = n.substr(1);  // a TTL may be negative (RFC 9211)
                ttl_ok = all_digits(n);
            }
        }
        if (!ttl_ok) return fail("Cache-Status has no `ttl=N`: " + *status);
    } else if (expected == "MISS") {
        if (!has("fwd=miss")) return fail("Cache-Status has no `fwd=miss`: " + *status);
    } else if (expected == "STALE") {
        if (!has("fwd=stale")) return fail("Cache-Status has no `fwd=stale`: " + *status);
    } else if (expected == "BYPASS") {
        if (!has("fwd=bypass")) return fail("Cache-Status has no `fwd=bypass`: " + *status);
    } else {
        return ::testing::AssertionFailure() << "CacheIs: unknown expectation " << expected;
    }
    if (expected == "HIT" || expected == "STALE") {
        if (!r.has_header("Age")) return fail("it has no Age header");
        if (age_of(r) < 0) return fail("Age is not whole seconds: " + r.header("Age").value_or(""));
    }
    return ::testing::AssertionSuccess();
}

// ------------------------------------------------------------------ time

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

Timed timed_request(std::uint16_t port, std::string_view method, std::string_view target, const Headers& headers,
                    std::chrono::milliseconds timeout) {
    const auto t0 = Clock::now();
    Timed t;
    t.response = http_request(port, method, target, headers, {}, timeout);
    t.seconds = seconds_since(t0);
    return t;
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        if (pred()) return true;
        if (Clock::now() >= deadline) return pred();
        std::this_thread::sleep_for(interval);
    }
}

void sleep_until_offset(Clock::time_point t0, std::chrono::milliseconds offset) {
    std::this_thread::sleep_until(t0 + offset);
}

// ------------------------------------------------------------------ concurrency

BatchResult concurrent_requests(std::uint16_t port, const std::vector<RequestSpec>& specs,
                                std::chrono::milliseconds timeout) {
    const std::size_t n = specs.size();
    BatchResult out;
    out.responses.resize(n);
    std::latch connected(static_cast<std::ptrdiff_t>(n));
    std::latch go(1);
    std::atomic<std::size_t> connect_failures{0};
    std::vector<Clock::time_point> done(n);
    std::vector<std::thread> threads;
    threads.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        threads.emplace_back([&, i] {
            RawClient c(port, timeout);
            const bool ok = c.connected();
            if (!ok) {
                connect_failures.fetch_add(1);
                out.responses[i].error = "connect: " + c.last_error();
            }
            connected.count_down();
            go.wait();
            if (ok) out.responses[i] = c.request(specs[i].method, specs[i].target, specs[i].headers);
            done[i] = Clock::now();
        });
    }
    connected.wait();
    const auto t0 = Clock::now();
    go.count_down();
    for (auto& t : threads) t.join();
    out.connect_failures = connect_failures.load();
    Clock::time_point last = t0;
    for (const auto& d : done) last = std::max(last, d);
    out.seconds = std::chrono::duration<double>(last - t0).count();
    return out;
}

}  // namespace cacheproxy::e2e
