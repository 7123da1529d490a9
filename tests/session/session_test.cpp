// The session's handlers in-process: a ClientSession on a worker's
// io_context, an in-process origin on a loopback port chosen by the kernel,
// and a test clock (Worker::now_fn), so TTL, stale-while-revalidate and
// refresh-ahead are driven by moving the clock instead of sleeping.
#include "core/worker.hpp"
#include "config/config.hpp"
#include "session/client_session.hpp"
#include "support/config_files.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

namespace cacheproxy::session {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

/// The test clock: the steady clock moved on by `skew`.
std::atomic<std::int64_t> g_skew_ns{0};
cache::TimePoint test_now() { return cache::Clock::now() + std::chrono::nanoseconds(g_skew_ns.load()); }
void advance(std::chrono::nanoseconds d) { g_skew_ns.fetch_add(d.count()); }

/// An origin on its own thread: every request is answered 200 with a JSON
/// body naming how many requests it has seen.
class Origin {
public:
    Origin() : acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        asio::co_spawn(ioc_, accept(), asio::detached);
        thread_ = std::thread([this] { ioc_.run(); });
    }
    ~Origin() {
        ioc_.stop();
        thread_.join();
    }
    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    int requests() const { return requests_.load(); }

private:
    asio::awaitable<void> accept() {
        for (;;) {
            auto socket = co_await acceptor_.async_accept(asio::use_awaitable);
            asio::co_spawn(ioc_, serve(std::move(socket)), asio::detached);
        }
    }
    asio::awaitable<void> serve(tcp::socket socket) {
        boost::beast::flat_buffer buffer;
        for (;;) {
            bhttp::request<bhttp::string_body> req;
            boost::system::error_code ec;
            co_await bhttp::async_read(socket, buffer, req, asio::redirect_error(asio::use_awaitable, ec));
            if (ec) co_return;
            const int n = ++requests_;
            bhttp::response<bhttp::string_body> res{bhttp::status::ok, 11};
            res.set(bhttp::field::content_type, "application/json");
            res.body() = R"({"success": true, "user_id": 7, "n": )" + std::to_string(n) + "}";
            res.prepare_payload();
            co_await bhttp::async_write(socket, res, asio::redirect_error(asio::use_awaitable, ec));
            if (ec) co_return;
        }
    }
    asio::io_context ioc_;
    tcp::acceptor acceptor_;
    std::atomic<int> requests_{0};
    std::thread thread_;
};

/// A proxy worker with its listener, run on a thread of its own.
class Proxy {
public:
    explicit Proxy(std::uint16_t origin_port)
        : files_("session_test", R"(
identity: { header: Authorization }
routes:
  - name: balance
    match: { method: GET, path: /api/trading/balance }
    ttl: 15s
    key: { identity: true, query: [exchange] }
    stale_while_revalidate: 5s
)",
                 "listen: 127.0.0.1:1\nupstream:\n  url: http://127.0.0.1:" + std::to_string(origin_port) +
                     "\nlogging:\n  access_log: false\nadmin:\n  enabled: false\n") {
        ctx_ = std::make_unique<app::ServerContext>(files_.config());
        worker_ = std::make_unique<app::Worker>(*ctx_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), origin_port),
                                                upstream::PoolLimits::per_worker(files_.config().upstream, 1));
        worker_->now_fn = &test_now;
        acceptor_ = std::make_unique<tcp::acceptor>(worker_->ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        asio::co_spawn(worker_->ioc, accept(), asio::detached);
        thread_ = std::thread([this] { worker_->ioc.run(); });
    }
    ~Proxy() {
        worker_->ioc.stop();
        thread_.join();
        acceptor_.reset();
        worker_.reset();
    }
    std::uint16_t port() const { return acceptor_->local_endpoint().port(); }
    app::Worker& worker() { return *worker_; }

private:
    asio::awaitable<void> accept() {
        for (;;) {
            auto socket = co_await acceptor_->async_accept(asio::use_awaitable);
            asio::co_spawn(worker_->ioc, serve(std::move(socket)), asio::detached);
        }
    }
    asio::awaitable<void> serve(tcp::socket socket) {
        ClientSession session(std::move(socket), *worker_);
        co_await session.run();
    }
    test_config::ConfigFiles files_;
    std::unique_ptr<app::ServerContext> ctx_;
    std::unique_ptr<app::Worker> worker_;
    std::unique_ptr<tcp::acceptor> acceptor_;
    std::thread thread_;
};

/// One GET through the proxy, on a fresh connection (a blocking client).
bhttp::response<bhttp::string_body> get(std::uint16_t port, std::string_view target, std::string_view token = "t1") {
    asio::io_context ioc;
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    bhttp::request<bhttp::empty_body> req{bhttp::verb::get, target, 11};
    req.set(bhttp::field::host, "test");
    if (!token.empty()) req.set(bhttp::field::authorization, std::string("Bearer ") + std::string(token));
    bhttp::write(s, req);
    boost::beast::flat_buffer buffer;
    bhttp::response<bhttp::string_body> res;
    bhttp::read(s, buffer, res);
    return res;
}

class SessionTest : public ::testing::Test {
protected:
    void SetUp() override { g_skew_ns = 0; }
    Origin origin;
    Proxy proxy{origin.port()};
};

TEST_F(SessionTest, AHitIsServedUntilTheTtlAndAMissAfterIt) {
    const auto first = get(proxy.port(), "/api/trading/balance?exchange=x");
    EXPECT_EQ(first["X-Cache"], "MISS");
    EXPECT_EQ(origin.requests(), 1);
    advance(13500ms);  // half a second from the whole-second edges Age and ttl= are truncated at
    const auto hit = get(proxy.port(), "/api/trading/balance?exchange=x");
    EXPECT_EQ(hit["X-Cache"], "HIT");
    EXPECT_EQ(hit.body(), first.body());
    EXPECT_EQ(hit[bhttp::field::age], "13");
    EXPECT_EQ(hit["Cache-Status"], "cacheproxy; hit; ttl=1");
    EXPECT_EQ(origin.requests(), 1);
    advance(7500ms);  // past ttl + stale_while_revalidate
    const auto miss = get(proxy.port(), "/api/trading/balance?exchange=x");
    EXPECT_EQ(miss["X-Cache"], "MISS");
    EXPECT_EQ(origin.requests(), 2);
    EXPECT_NE(miss.body(), first.body());
}

TEST_F(SessionTest, InsideStaleWhileRevalidateTheStaleEntryIsServedAndRefreshedBehindIt) {
    const auto first = get(proxy.port(), "/api/trading/balance?exchange=x");
    advance(16s);  // expired, inside the 5 s window
    const auto stale = get(proxy.port(), "/api/trading/balance?exchange=x");
    EXPECT_EQ(stale["X-Cache"], "STALE");
    EXPECT_EQ(stale.body(), first.body());
    // The refresh runs behind the answer: wait for it (bounded), then the
    // next read is a HIT on the refreshed entry.
    for (int i = 0; i < 200 && origin.requests() < 2; ++i) std::this_thread::sleep_for(10ms);
    ASSERT_EQ(origin.requests(), 2);
    std::string x_cache, body;
    for (int i = 0; i < 200; ++i) {  // the refresh is stored just after the origin answered
        const auto r = get(proxy.port(), "/api/trading/balance?exchange=x");
        x_cache = r["X-Cache"];
        body = r.body();
        if (x_cache == "HIT") break;
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_EQ(x_cache, "HIT");
    EXPECT_NE(body, first.body());
}

TEST_F(SessionTest, PerUserEntriesAreKeptApartAndARequestWithoutIdentityBypasses) {
    get(proxy.port(), "/api/trading/balance?exchange=x", "alice");
    const auto bob = get(proxy.port(), "/api/trading/balance?exchange=x", "bob");
    EXPECT_EQ(bob["X-Cache"], "MISS");
    const auto anonymous = get(proxy.port(), "/api/trading/balance?exchange=x", "");
    EXPECT_EQ(anonymous["X-Cache"], "BYPASS");
    EXPECT_EQ(anonymous["Cache-Status"], "cacheproxy; fwd=bypass; detail=no-identity");
    EXPECT_EQ(origin.requests(), 3);
}

TEST_F(SessionTest, AnUncachedPathPassesThroughWithoutLabels) {
    const auto r = get(proxy.port(), "/static/app.js");
    EXPECT_EQ(r.result_int(), 200u);
    EXPECT_EQ(r.find("X-Cache"), r.end());
    EXPECT_EQ(r[bhttp::field::via], "1.1 cacheproxy");
    EXPECT_EQ(origin.requests(), 1);
}

TEST_F(SessionTest, CountersAreTheWorkersOwn) {
    get(proxy.port(), "/api/trading/balance?exchange=x");
    get(proxy.port(), "/api/trading/balance?exchange=x");
    get(proxy.port(), "/api/trading/balance?exchange=x");
    // Read after the answers: the worker wrote them before replying.
    const auto& c = proxy.worker().route_counters[0];
    EXPECT_EQ(c.misses.load(), 1u);
    EXPECT_EQ(c.hits.load(), 2u);
}

}  // namespace
}  // namespace cacheproxy::session
