/// The per-worker keep-alive pool, on a real io_context against a loopback
/// listener on port 0: reuse, the readable-idle-connection rule, waiters and
/// hand-over, exhaustion.

#include "upstream/upstream_pool.hpp"

#include "http/proxy_error.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <vector>

namespace cacheproxy::upstream {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

/// A pool of `max` connections to a loopback acceptor that keeps every accepted socket.
struct Fixture {
    explicit Fixture(std::size_t max) : acceptor(ioc, tcp::endpoint(asio::ip::address_v4::loopback(), 0)) {
        cfg.connect_timeout = 300ms;
        pool.emplace(ioc.get_executor(), cfg, acceptor.local_endpoint(), max, health);
        accept();
    }
    void accept() {
        acceptor.async_accept([this](boost::system::error_code ec, tcp::socket s) {
            if (ec) return;
            peers.push_back(std::move(s));
            accept();
        });
    }
    /// Runs `body` as a coroutine to completion (bounded by a 5 s run).
    template <class F>
    void run(F body) {
        bool done = false;
        asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
            co_await body();
            done = true;
            acceptor.close();
        }, asio::detached);
        ioc.run_for(5s);
        ASSERT_TRUE(done) << "the scenario did not finish";
    }

    asio::io_context ioc{1};
    config::UpstreamConfig cfg;
    UpstreamHealth health;
    tcp::acceptor acceptor;
    std::vector<tcp::socket> peers;
    std::optional<Pool> pool;
};

TEST(UpstreamPoolTest, AReleasedConnectionIsReused) {
    Fixture f(2);
    f.run([&]() -> asio::awaitable<void> {
        boost::system::error_code ec;
        auto a = co_await f.pool->acquire(ec);
        EXPECT_FALSE(ec);
        EXPECT_FALSE(a.reused);
        Connection* first = a.conn.get();
        f.pool->release(std::move(a.conn), true);
        auto b = co_await f.pool->acquire(ec);
        EXPECT_TRUE(b.reused);
        EXPECT_EQ(b.conn.get(), first);
        f.pool->release(std::move(b.conn), true);
    });
    EXPECT_EQ(f.pool->snapshot().connects, 1u);
}

TEST(UpstreamPoolTest, AnIdleConnectionWithUnreadBytesIsNeverReused) {
    Fixture f(2);
    f.run([&]() -> asio::awaitable<void> {
        boost::system::error_code ec;
        auto a = co_await f.pool->acquire(ec);
        f.pool->release(std::move(a.conn), true);
        // The origin sends bytes nobody asked for on the idle connection (an
        // unsolicited response): it must not answer the next request.
        while (f.peers.empty()) co_await asio::post(f.ioc, asio::use_awaitable);
        asio::write(f.peers[0], asio::buffer(std::string("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED")));
        asio::steady_timer t(f.ioc, 50ms);
        co_await t.async_wait(asio::use_awaitable);
        auto b = co_await f.pool->acquire(ec);
        EXPECT_FALSE(ec);
        EXPECT_FALSE(b.reused) << "released 50 ms ago, yet readable: discarded";
        f.pool->release(std::move(b.conn), false);
    });
    const auto s = f.pool->snapshot();
    EXPECT_EQ(s.discarded_dead, 1u);
    EXPECT_EQ(s.connects, 2u);
}

TEST(UpstreamPoolTest, AClosedIdleConnectionIsDiscarded) {
    Fixture f(2);
    f.run([&]() -> asio::awaitable<void> {
        boost::system::error_code ec;
        auto a = co_await f.pool->acquire(ec);
        f.pool->release(std::move(a.conn), true);
        while (f.peers.empty()) co_await asio::post(f.ioc, asio::use_awaitable);
        f.peers[0].close();  // the origin's keep-alive timeout
        asio::steady_timer t(f.ioc, 50ms);
        co_await t.async_wait(asio::use_awaitable);
        auto b = co_await f.pool->acquire(ec);
        EXPECT_FALSE(b.reused);
        f.pool->release(std::move(b.conn), false);
    });
    EXPECT_EQ(f.pool->snapshot().discarded_dead, 1u);
}

TEST(UpstreamPoolTest, AWaiterGetsTheConnectionHandedOverAndExhaustionIsAnError) {
    Fixture f(1);
    f.run([&]() -> asio::awaitable<void> {
        boost::system::error_code ec;
        auto a = co_await f.pool->acquire(ec);
        EXPECT_FALSE(ec);
        Connection* held = a.conn.get();
        // A second request waits; the first hands its connection over on release.
        bool handed = false;
        asio::co_spawn(f.ioc, [&]() -> asio::awaitable<void> {
            boost::system::error_code wec;
            auto w = co_await f.pool->acquire(wec);
            EXPECT_FALSE(wec);
            EXPECT_EQ(w.conn.get(), held);
            handed = true;
            // Held past connect_timeout: a third request gives up.
            boost::system::error_code xec;
            auto x = co_await f.pool->acquire(xec);
            EXPECT_EQ(xec, http_errors::errc::upstream_pool_exhausted);
            f.pool->release(std::move(w.conn), true);
        }, asio::detached);
        asio::steady_timer t(f.ioc, 20ms);
        co_await t.async_wait(asio::use_awaitable);
        EXPECT_EQ(f.pool->snapshot().waiting, 1u);
        f.pool->release(std::move(a.conn), true);
        asio::steady_timer u(f.ioc, 600ms);
        co_await u.async_wait(asio::use_awaitable);
        EXPECT_TRUE(handed);
    });
    EXPECT_EQ(f.pool->snapshot().exhausted, 1u);
}

}  // namespace
}  // namespace cacheproxy::upstream
