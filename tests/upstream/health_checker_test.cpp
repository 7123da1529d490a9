/// The opt-in active health check against real loopback listeners: what one
/// probe finds (refused, a 404, no answer in time, a 2xx), and the rule that
/// only a failed connect marks the upstream down.

#include "upstream/health_checker.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>

namespace cacheproxy::upstream {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

/// An origin on a loopback port that answers each connection's first request
/// with `answer` ("" = reads the request and never answers, like an app whose
/// event loop is blocked).
struct Origin {
    explicit Origin(asio::io_context& ioc, std::string answer)
        : acceptor(ioc, tcp::endpoint(asio::ip::address_v4::loopback(), 0)), answer(std::move(answer)) {
        asio::co_spawn(ioc, serve(), asio::detached);
    }
    asio::awaitable<void> serve() {
        auto [ec, s] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;
        peer.emplace(std::move(s));
        std::string in;
        auto [rec, n] = co_await asio::async_read_until(*peer, asio::dynamic_buffer(in), "\r\n\r\n",
                                                        asio::as_tuple(asio::use_awaitable));
        if (rec) co_return;
        seen = in.substr(0, n);
        if (!answer.empty()) co_await asio::async_write(*peer, asio::buffer(answer), asio::as_tuple(asio::use_awaitable));
    }
    tcp::acceptor acceptor;
    std::string answer;
    std::optional<tcp::socket> peer;
    std::string seen;
};

struct Fixture {
    Fixture() {
        cfg.health_path = "/health";
        cfg.connect_timeout = 500ms;
        cfg.health_timeout = 200ms;
        cfg.health_interval = 1s;
    }
    ProbeResult probe(tcp::endpoint endpoint) {
        std::optional<ProbeResult> result;
        asio::co_spawn(ioc, [&]() -> asio::awaitable<void> { result = co_await probe_once(cfg, endpoint); },
                       asio::detached);
        ioc.run_for(5s);
        EXPECT_TRUE(result.has_value()) << "the probe did not finish";
        return result.value_or(ProbeResult::ok);
    }
    asio::io_context ioc{1};
    config::UpstreamConfig cfg;
};

TEST(HealthCheckerTest, ARefusedConnectIsRefused) {
    Fixture f;
    tcp::acceptor closed(f.ioc, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    const auto endpoint = closed.local_endpoint();
    closed.close();
    EXPECT_EQ(f.probe(endpoint), ProbeResult::refused);
}

TEST(HealthCheckerTest, A2xxIsOkAndTheProbeAsksForThePath) {
    Fixture f;
    Origin origin(f.ioc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    EXPECT_EQ(f.probe(origin.acceptor.local_endpoint()), ProbeResult::ok);
    EXPECT_EQ(origin.seen.rfind("GET /health HTTP/1.1\r\n", 0), 0u) << origin.seen;
}

TEST(HealthCheckerTest, A404IsAFailedProbeNotARefusal) {
    Fixture f;
    Origin origin(f.ioc, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(f.probe(origin.acceptor.local_endpoint()), ProbeResult::failed);
}

TEST(HealthCheckerTest, NoAnswerWithinTheTimeoutIsAFailedProbeNotARefusal) {
    Fixture f;
    Origin origin(f.ioc, "");  // a handler blocks the app's event loop
    EXPECT_EQ(f.probe(origin.acceptor.local_endpoint()), ProbeResult::failed);
}

TEST(HealthCheckerTest, OnlyARefusedProbeMarksTheUpstreamDown) {
    config::UpstreamConfig cfg;
    cfg.health_interval = 10s;
    const auto now = std::chrono::steady_clock::now;

    UpstreamHealth health;
    apply_probe(ProbeResult::failed, cfg, health);
    EXPECT_FALSE(health.is_down(now())) << "a 404 or a slow answer must not turn requests into 502s";
    EXPECT_FALSE(health.last_check_ok.load()) << "but /readyz says so";

    apply_probe(ProbeResult::refused, cfg, health);
    EXPECT_TRUE(health.is_down(now()));
    EXPECT_FALSE(health.last_check_ok.load());

    // It connects again (whatever it answers): requests go to it at once.
    apply_probe(ProbeResult::failed, cfg, health);
    EXPECT_FALSE(health.is_down(now()));

    apply_probe(ProbeResult::refused, cfg, health);
    apply_probe(ProbeResult::ok, cfg, health);
    EXPECT_FALSE(health.is_down(now()));
    EXPECT_TRUE(health.last_check_ok.load());
}

}  // namespace
}  // namespace cacheproxy::upstream
