/// /metrics and /dashboard against real consumers: promtool checks the text
/// format, a real Prometheus server scrapes the admin listener and answers a
/// hit-ratio query, and headless Chromium loads the dashboard, draws charts
/// from live traffic and takes a screenshot.
///
/// The tools come from Debian's packages (prometheus, chromium; scripts/deps.sh
/// installs them). A test whose tool is not on PATH skips with a message.

#include "support/cache_helpers.hpp"
#include "support/fixtures.hpp"
#include "support/json_lite.hpp"
#include "support/ports.hpp"
#include "support/process.hpp"
#include "support/raw_client.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

namespace cacheproxy::e2e {
namespace {

using std::chrono::milliseconds;

/// The absolute path of `name` found on $PATH, or "".
std::string find_on_path(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
    std::size_t start = 0;
    while (start <= dirs.size()) {
        const auto end = dirs.find(':', start);
        std::string dir = dirs.substr(start, end == std::string::npos ? std::string::npos : end - start);
        if (dir.empty()) dir = ".";
        const std::string candidate = dir + "/" + name;
        if (::access(candidate.c_str(), X_OK) == 0) return std::filesystem::absolute(candidate).string();
        if (end == std::string::npos) break;
        start = end + 1;
    }
    return "";
}

std::string percent_encode(const std::string& s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    return out;
}

/// Requests from a background thread until destroyed: user1..user4's
/// balances (hits after the first of each), the ticker, and a pass-through.
class Traffic {
public:
    explicit Traffic(std::uint16_t port) : port_(port), thread_([this] { run(); }) {}
    ~Traffic() {
        stop_ = true;
        thread_.join();
    }
    std::size_t sent() const { return sent_; }

private:
    void run() {
        auto client = std::make_unique<RawClient>(port_, milliseconds(2000));
        for (std::size_t i = 0; !stop_; ++i) {
            Response r;
            if (i % 10 == 9)
                r = client->request("GET", "/api/trading/ticker?symbol=BTCUSDT");
            else if (i % 25 == 24)
                r = client->request("GET", "/echo/traffic");
            else
                r = client->request("GET", balance_target(), bearer(static_cast<int>(i % 4) + 1));
            ++sent_;
            if (r.status == 0 || !r.keep_alive) client = std::make_unique<RawClient>(port_, milliseconds(2000));
            std::this_thread::sleep_for(milliseconds(5));
        }
    }
    std::uint16_t port_;
    std::atomic<bool> stop_{false};
    std::atomic<std::size_t> sent_{0};
    std::thread thread_;
};

class Metrics : public SimulatorTest {
protected:
    static void SetUpTestSuite() { StartSharedSimulator(); }
    static void TearDownTestSuite() { StopSharedSimulator(); }

    std::unique_ptr<Proxy> StartCachingProxy() {
        return StartProxy(with_rules(rules_yaml("  - name: balance\n"
                                                "    match: { method: GET, path: /api/trading/balance }\n"
                                                "    ttl: 60s\n"
                                                "    key: { identity: true, query: [exchange, account_type] }\n"
                                                "  - name: ticker\n"
                                                "    match: { method: GET, path: /api/trading/ticker }\n"
                                                "    ttl: 60s\n"
                                                "    shared: true\n"
                                                "    key: { query: [symbol] }\n"),
                                     [](ProxyConfig& c) { c.set("logging.level", "info"); }));
    }
};

// --------------------------------------------------------------- promtool

TEST_F(Metrics, PassesPromtoolCheckMetrics) {
    const std::string promtool = find_on_path("promtool");
    if (promtool.empty()) GTEST_SKIP() << "promtool not found on PATH: install Debian's prometheus package (scripts/deps.sh)";
    auto proxy = StartCachingProxy();
    {
        Traffic traffic(proxy->port());
        ASSERT_TRUE(wait_until([&] { return traffic.sent() >= 50; }, milliseconds(10000)));
    }
    Response m = http_request(proxy->admin_port(), "GET", "/metrics");
    ASSERT_EQ(m.status, 200u);
    ASSERT_NE(m.body.find("cacheproxy_response_seconds_bucket"), std::string::npos);

    TempDir dir("promtool");
    const std::string file = dir.write("metrics.txt", m.body);
    Process check({"/bin/sh", "-c", "exec \"$0\" check metrics < \"$1\"", promtool, file}, dir.file("promtool.log"));
    const auto code = check.wait_exit(milliseconds(30000));
    ASSERT_TRUE(code.has_value()) << "promtool did not finish";
    // promtool prints nothing and exits 0 when the exposition has neither errors nor lint problems.
    EXPECT_EQ(*code, 0) << check.read_log();
    EXPECT_EQ(check.read_log(), "") << check.read_log();
}

// --------------------------------------------------------------- a real Prometheus

TEST_F(Metrics, ARealPrometheusScrapesTheProxyAndAnswersTheHitRatio) {
    const std::string prometheus = find_on_path("prometheus");
    if (prometheus.empty())
        GTEST_SKIP() << "prometheus not found on PATH: install Debian's prometheus package (scripts/deps.sh)";
    auto proxy = StartCachingProxy();
    Traffic traffic(proxy->port());

    TempDir dir("prometheus");
    const auto port = free_port();
    const std::string config = dir.write("prometheus.yml",
                                         "global:\n"
                                         "  scrape_interval: 1s\n"
                                         "  evaluation_interval: 1s\n"
                                         "scrape_configs:\n"
                                         "  - job_name: cacheproxy\n"
                                         "    scrape_interval: 1s\n"
                                         "    scrape_timeout: 1s\n"
                                         "    static_configs:\n"
                                         "      - targets: ['127.0.0.1:" +
                                             std::to_string(proxy->admin_port()) + "']\n");
    Process server({prometheus, "--config.file=" + config, "--storage.tsdb.path=" + dir.file("data"),
                    "--web.listen-address=127.0.0.1:" + std::to_string(port), "--log.level=warn"},
                   dir.file("prometheus.log"));
    ASSERT_TRUE(wait_until([&] { return http_request(port, "GET", "/-/ready", {}, {}, milliseconds(500)).status == 200; },
                           milliseconds(20000), milliseconds(200)))
        << "prometheus did not get ready\n" << server.log_tail();

    // The hit ratio of the balance route over the last 5 s, as a person would ask Grafana.
    const std::string expr =
        "sum(rate(cacheproxy_requests_total{route=\"balance\",cache=~\"HIT|STALE\"}[5s]))"
        " / sum(rate(cacheproxy_requests_total{route=\"balance\"}[5s]))";
    const std::string target = "/api/v1/query?query=" + percent_encode(expr);
    double ratio = -1;
    std::string last;
    const bool answered = wait_until(
        [&] {
            Response r = http_request(port, "GET", target, {}, {}, milliseconds(1000));
            last = r.body;
            auto j = parse_json(r.body);
            if (r.status != 200 || !j || (*j)["status"].as_string() != "success") return false;
            const Json& result = (*j)["data"]["result"];
            if (result.size() != 1) return false;
            const std::string v = result.at(0)["value"].at(1).as_string();
            if (v.empty() || v == "NaN") return false;
            ratio = std::stod(v);
            return true;
        },
        milliseconds(20000), milliseconds(250));
    ASSERT_TRUE(answered) << "no hit ratio from prometheus within 20 s; last answer: " << last << "\n"
                          << server.log_tail();
    std::cout << "[ e2e ] prometheus: balance hit ratio over 5s = " << ratio << "\n";
    // Four users, one miss each, then hits: the ratio over the last seconds is (nearly) 1.
    EXPECT_GT(ratio, 0.5);
    EXPECT_LE(ratio, 1.0);

    // The scrape target is up, and the upstream gauge came through.
    Response up = http_request(port, "GET", "/api/v1/query?query=" + percent_encode("cacheproxy_upstream_up"));
    EXPECT_NE(up.body.find("\"1\""), std::string::npos) << up.body;

    // deploy/grafana-dashboard.json: every panel's query is valid PromQL for this
    // Prometheus, and every metric it names is one the proxy exports.
    const std::string dashboard = read_file(std::string(CACHEPROXY_SOURCE_DIR) + "/deploy/grafana-dashboard.json");
    auto dash = parse_json(dashboard);
    ASSERT_TRUE(dash.has_value()) << "deploy/grafana-dashboard.json is not JSON";
    const std::string exported = http_request(proxy->admin_port(), "GET", "/metrics").body;
    std::size_t queries = 0;
    const Json& panels = (*dash)["panels"];
    for (std::size_t i = 0; i < panels.size(); ++i) {
        const Json& targets = panels.at(i)["targets"];
        for (std::size_t t = 0; t < targets.size(); ++t) {
            std::string expr = targets.at(t)["expr"].as_string();
            for (const auto& [var, value] : {std::pair<std::string, std::string>{"$__rate_interval", "5s"},
                                             {"$route", ".*"}, {"$instance", ".*"}})
                for (std::size_t at; (at = expr.find(var)) != std::string::npos;) expr.replace(at, var.size(), value);
            Response r = http_request(port, "GET", "/api/v1/query?query=" + percent_encode(expr));
            EXPECT_EQ(r.status, 200u) << panels.at(i)["title"].as_string() << ": " << expr << "\n" << r.body;
            EXPECT_NE(r.body.find("\"status\":\"success\""), std::string::npos) << expr << "\n" << r.body;
            static const std::regex name_re(R"re(\b((?:cacheproxy|process)_[A-Za-z0-9_]+))re");
            for (auto it = std::sregex_iterator(expr.begin(), expr.end(), name_re); it != std::sregex_iterator(); ++it) {
                std::string name = (*it)[1];
                if (name.size() > 7 && name.compare(name.size() - 7, 7, "_bucket") == 0) name.resize(name.size() - 7);
                EXPECT_NE(exported.find("# TYPE " + name + " "), std::string::npos)
                    << "the dashboard uses " << name << ", which /metrics does not export";
            }
            ++queries;
        }
    }
    EXPECT_GE(queries, 20u);
    server.terminate();
    server.wait_exit(milliseconds(5000));
}

// --------------------------------------------------------------- the dashboard in a browser

/// Chromium's headless flags (the brief's, plus a fresh profile in `profile`).
std::vector<std::string> chromium_argv(const std::string& chromium, const std::string& profile) {
    return {chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--user-data-dir=" + profile,
            "--window-size=1280,900",
            "--virtual-time-budget=5000"};
}

TEST_F(Metrics, TheDashboardLoadsInHeadlessChromiumAndDrawsChartsFromLiveTraffic) {
    std::string chromium = find_on_path("chromium");
    if (chromium.empty()) chromium = find_on_path("chromium-browser");
    if (chromium.empty())
        GTEST_SKIP() << "chromium not found on PATH: install Debian's chromium package (scripts/deps.sh)";
    auto proxy = StartCachingProxy();
    Traffic traffic(proxy->port());
    ASSERT_TRUE(wait_until([&] { return traffic.sent() >= 50; }, milliseconds(10000)));
    const std::string url = "http://127.0.0.1:" + std::to_string(proxy->admin_port()) + "/dashboard";

    // 1. The DOM after ~5 s of (virtual) time: every chart has drawn points.
    TempDir dir("dashboard");
    auto argv = chromium_argv(chromium, dir.file("profile-dom"));
    argv.push_back("--dump-dom");
    argv.push_back(url);
    Process dom(argv, dir.file("dom.html"));
    auto code = dom.wait_exit(milliseconds(90000));
    ASSERT_TRUE(code.has_value()) << "chromium --dump-dom did not finish";
    const std::string html = dom.read_log();  // the DOM on stdout (and Chromium's own noise on stderr)
    ASSERT_NE(html.find("<canvas"), std::string::npos) << html.substr(0, 3000);

    std::smatch m;
    ASSERT_TRUE(std::regex_search(html, m, std::regex(R"re(data-polls="(\d+)")re"))) << html.substr(0, 3000);
    EXPECT_GE(std::stoi(m[1]), 2) << "the page should have polled /stats several times";
    const std::regex canvas_re(R"re(<canvas id="(c-[a-z0-9]+)" data-points="(\d+)")re");
    std::map<std::string, int> points;
    for (auto it = std::sregex_iterator(html.begin(), html.end(), canvas_re); it != std::sregex_iterator(); ++it)
        points[(*it)[1]] = std::stoi((*it)[2]);
    for (const char* chart : {"c-rps", "c-hit", "c-p50", "c-p99", "c-pool", "c-inv"}) {
        ASSERT_TRUE(points.count(chart)) << chart << " missing";
        EXPECT_GT(points[chart], 0) << chart << " drew nothing";
    }
    EXPECT_NE(html.find(R"(<span id="status">updated )"), std::string::npos) << "the page could not poll /stats";
    EXPECT_NE(html.find(R"(<div id="banner" style="display: none;">)"), std::string::npos) << "the page shows an error";
    EXPECT_NE(html.find("<td>balance</td>"), std::string::npos) << "the route table is empty";

    // 2. A screenshot, kept (overwritten per run) for a person to look at.
    const std::string shots = (std::getenv("TMPDIR") ? std::string(std::getenv("TMPDIR")) : std::string("/tmp")) +
                              "/cacheproxy-dashboard";
    std::filesystem::create_directories(shots);
    const std::string png = shots + "/dashboard.png";
    std::filesystem::remove(png);
    argv = chromium_argv(chromium, dir.file("profile-shot"));
    argv.push_back("--screenshot=" + png);
    argv.push_back(url);
    Process shot(argv, dir.file("screenshot.log"));
    code = shot.wait_exit(milliseconds(90000));
    ASSERT_TRUE(code.has_value()) << "chromium --screenshot did not finish";
    const std::string bytes = read_file(png);
    ASSERT_GT(bytes.size(), 20'000u) << "screenshot missing or blank: " << png << "\n" << shot.log_tail();
    EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
    std::cout << "[ e2e ] dashboard screenshot: " << png << " (" << bytes.size() << " bytes)\n";
    RecordProperty("dashboard_screenshot", png);
}

}  // namespace
}  // namespace cacheproxy::e2e
