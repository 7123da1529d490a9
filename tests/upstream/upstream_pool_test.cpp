/// The per-worker keep-alive pool, on a real io_context against a loopback
/// listener on port 0: reuse, the readable-idle-connection rule, waiters and
/// hand-over, exhaustion of the active cap, the idle cap (closing what is
/// beyond it, never bounding what is in use), health from connects, and the
/// size of upstream reads.

#include "upstream/upstream_pool.hpp"

#include "http/proxy_error.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <vector>

namespace cacheproxy::upstream {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

/// A pool (at most `max_active` in use, 0 = no cap; `max_idle` kept) to a
/// loopback acceptor that keeps every accepted socket.
struct Fixture {
    explicit Fixture(std::size_t max_active, std::size_t max_idle = 4)
        : acceptor(ioc, tcp::endpoint(asio::ip::address_v4::loopback(), 0)) {
        cfg.connect_timeout = 300ms;
        pool.emplace(ioc.get_executor(), cfg, acceptor.local_endpoint(),
                     PoolLimits{.max_active = max_active, .max_idle = max_idle}, health);
        accept();
    }
    void accept() {
        acceptor.async_accept([this](boost::system::error_code ec, tcp::socket s) {
            if (ec) return;
            peers.push_back(std::move(s));
            accept();
        });
    }
    /// Waits (bounded) until `n` connections have been accepted.
    asio::awaitable<void> accepted(std::size_t n) {
        for (int i = 0; i < 500 && peers.size() < n; ++i) {
            asio::steady_timer t(ioc, 2ms);
            co_await t.async_wait(asio::use_awaitable);
        }
        EXPECT_GE(peers.size(), n);
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

TEST(UpstreamPoolTest, ARetargetClosesTheIdleConnectionsAndDrainsTheOnesInUse) {
    Fixture f(0);
    tcp::acceptor second(f.ioc, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    std::vector<tcp::socket> second_peers;
    second.async_accept([&](boost::system::error_code ec, tcp::socket s) {
        if (!ec) second_peers.push_back(std::move(s));
    });
    f.run([&]() -> asio::awaitable<void> {
        boost::system::error_code ec;
        auto idle = co_await f.pool->acquire(ec);
        auto busy = co_await f.pool->acquire(ec);
        f.pool->release(std::move(idle.conn), true);
        EXPECT_EQ(f.pool->idle(), 1u);

        f.pool->retarget(second.local_endpoint());  // a reload's new upstream.url
        EXPECT_EQ(f.pool->idle(), 0u);              // the idle one to the old address: closed
        EXPECT_EQ(f.pool->open(), 1u);              // the one in use finishes its exchange
        f.pool->release(std::move(busy.conn), true);
        EXPECT_EQ(f.pool->idle(), 0u);  // and is closed, not pooled
        EXPECT_EQ(f.pool->open(), 0u);

        auto fresh = co_await f.pool->acquire(ec);  // new connections go to the new address
        EXPECT_FALSE(ec);
        EXPECT_FALSE(fresh.reused);
        EXPECT_EQ(fresh.conn->stream.socket().remote_endpoint().port(), second.local_endpoint().port());
        f.pool->release(std::move(fresh.conn), true);
        EXPECT_EQ(f.pool->idle(), 1u);
        for (int i = 0; i < 500 && second_peers.empty(); ++i) co_await asio::post(f.ioc, asio::use_awaitable);
        EXPECT_EQ(second_peers.size(), 1u);
        second.close();
    });
    EXPECT_EQ(f.pool->snapshot().connects, 3u);
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

// ------------------------------------------------------------------ the idle cap is not the active cap

TEST(UpstreamPoolTest, ConnectionsInUseAreNotBoundedByTheIdleCap) {
    // 60 long-lived responses (event streams) each hold a connection; the
    // idle cap is 2, and no active cap is set: none of them waits.
    Fixture f(/*max_active=*/0, /*max_idle=*/2);
    f.run([&]() -> asio::awaitable<void> {
        std::vector<Pool::Lease> held;
        for (int i = 0; i < 60; ++i) {
            boost::system::error_code ec;
            held.push_back(co_await f.pool->acquire(ec));
            EXPECT_FALSE(ec) << i << ": " << ec.message();
        }
        EXPECT_EQ(f.pool->active(), 60u);
        EXPECT_EQ(f.pool->snapshot().waiting, 0u);
        for (auto& l : held) f.pool->release(std::move(l.conn), false);
        EXPECT_EQ(f.pool->open(), 0u);
    });
    const auto s = f.pool->snapshot();
    EXPECT_EQ(s.connects, 60u);
    EXPECT_EQ(s.exhausted, 0u);
}

TEST(UpstreamPoolTest, ReleasedConnectionsBeyondTheIdleCapAreClosedOldestFirst) {
    Fixture f(/*max_active=*/0, /*max_idle=*/2);
    f.run([&]() -> asio::awaitable<void> {
        std::vector<Pool::Lease> held;
        std::vector<Connection*> conns;
        for (int i = 0; i < 5; ++i) {  // one after the other: accepted in this order
            boost::system::error_code ec;
            held.push_back(co_await f.pool->acquire(ec));
            EXPECT_FALSE(ec);
            conns.push_back(held.back().conn.get());
            co_await f.accepted(static_cast<std::size_t>(i) + 1);
        }
        for (auto& l : held) f.pool->release(std::move(l.conn), true);
        EXPECT_EQ(f.pool->idle(), 2u);
        EXPECT_EQ(f.pool->open(), 2u);
        // The three released first were closed: their peers read EOF.
        for (std::size_t i = 0; i < 3; ++i) {
            char byte;
            auto [ec, n] = co_await f.peers[i].async_read_some(asio::buffer(&byte, 1),
                                                               asio::as_tuple(asio::use_awaitable));
            EXPECT_EQ(ec, asio::error::eof) << "connection " << i << " was not closed";
        }
        // The two kept are the last released, most recent first.
        boost::system::error_code ec;
        auto a = co_await f.pool->acquire(ec);
        auto b = co_await f.pool->acquire(ec);
        EXPECT_TRUE(a.reused && b.reused);
        EXPECT_EQ(a.conn.get(), conns[4]);
        EXPECT_EQ(b.conn.get(), conns[3]);
        auto c = co_await f.pool->acquire(ec);
        EXPECT_FALSE(c.reused);
        for (auto* l : {&a, &b, &c}) f.pool->release(std::move(l->conn), false);
    });
    const auto s = f.pool->snapshot();
    EXPECT_EQ(s.idle_evicted, 3u);
    EXPECT_EQ(s.connects, 6u);
    EXPECT_EQ(s.max_idle, 2u);
    EXPECT_EQ(s.max, 0u);
}

TEST(UpstreamPoolTest, AZeroIdleCapKeepsNothingAlive) {
    Fixture f(/*max_active=*/4, /*max_idle=*/0);
    f.run([&]() -> asio::awaitable<void> {
        boost::system::error_code ec;
        auto a = co_await f.pool->acquire(ec);
        f.pool->release(std::move(a.conn), true);
        EXPECT_EQ(f.pool->open(), 0u);
        auto b = co_await f.pool->acquire(ec);
        EXPECT_FALSE(b.reused);
        f.pool->release(std::move(b.conn), false);
    });
    EXPECT_EQ(f.pool->snapshot().connects, 2u);
}

TEST(UpstreamPoolTest, AFreshOnlyWaiterTakesTheSlotNotTheKeptAliveConnection) {
    // A write (or a retry) must not meet a kept-alive connection, not even
    // one handed over at the active cap: it gets a new one in its place.
    Fixture f(/*max_active=*/1);
    f.run([&]() -> asio::awaitable<void> {
        boost::system::error_code ec;
        auto a = co_await f.pool->acquire(ec);
        bool got = false;
        asio::co_spawn(f.ioc, [&]() -> asio::awaitable<void> {
            boost::system::error_code wec;
            auto w = co_await f.pool->acquire(wec, /*fresh_only=*/true);
            EXPECT_FALSE(wec) << wec.message();
            EXPECT_FALSE(w.reused);  // a new connection (counted in connects below)
            got = true;
            f.pool->release(std::move(w.conn), false);
        }, asio::detached);
        asio::steady_timer t(f.ioc, 20ms);
        co_await t.async_wait(asio::use_awaitable);
        f.pool->release(std::move(a.conn), true);
        for (int i = 0; i < 100 && !got; ++i) co_await asio::post(f.ioc, asio::use_awaitable);
        EXPECT_TRUE(got);
    });
    const auto s = f.pool->snapshot();
    EXPECT_EQ(s.connects, 2u);
    EXPECT_EQ(s.exhausted, 0u);
    EXPECT_EQ(f.pool->open(), 0u);
}

TEST(UpstreamPoolTest, LimitsAreSplitOverWorkersRoundedUp) {
    config::UpstreamConfig cfg;
    cfg.max_connections = 4096;
    cfg.max_idle_connections = 32;
    auto l = PoolLimits::per_worker(cfg, 3);
    EXPECT_EQ(l.max_active, 1366u);
    EXPECT_EQ(l.max_idle, 11u);
    cfg.max_connections = 0;  // no cap stays no cap
    cfg.max_idle_connections = 1;
    l = PoolLimits::per_worker(cfg, 8);
    EXPECT_EQ(l.max_active, 0u);
    EXPECT_EQ(l.max_idle, 1u);
}

// ------------------------------------------------------------------ health from connects

TEST(UpstreamPoolTest, AFailedConnectMarksTheUpstreamDownAndTheNextSuccessfulOneMarksItUp) {
    asio::io_context ioc{1};
    config::UpstreamConfig cfg;
    cfg.connect_timeout = 300ms;
    cfg.health_interval = 100ms;
    UpstreamHealth health;
    // A port nothing listens on (bound, then closed), reopened later.
    tcp::acceptor probe(ioc, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    const auto endpoint = probe.local_endpoint();
    probe.close();
    Pool pool(ioc.get_executor(), cfg, endpoint, PoolLimits{.max_active = 4, .max_idle = 4}, health);
    bool done = false;
    asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
        boost::system::error_code ec;
        co_await pool.acquire(ec);
        EXPECT_EQ(ec, http_errors::errc::upstream_unavailable) << ec.message();
        EXPECT_TRUE(health.is_down(std::chrono::steady_clock::now()));
        // While down: a 502 at once, without another connect.
        co_await pool.acquire(ec);
        EXPECT_EQ(ec, http_errors::errc::upstream_unavailable);
        EXPECT_EQ(pool.snapshot().connect_errors, 1u);
        // The upstream comes back; once the down window has passed, the next
        // request connects, and that connect marks it up.
        tcp::acceptor back(ioc);
        back.open(endpoint.protocol());
        back.set_option(asio::socket_base::reuse_address(true));
        back.bind(endpoint);
        back.listen();
        asio::steady_timer t(ioc, 150ms);
        co_await t.async_wait(asio::use_awaitable);
        auto lease = co_await pool.acquire(ec);
        EXPECT_FALSE(ec) << ec.message();
        EXPECT_FALSE(health.is_down(std::chrono::steady_clock::now()));
        pool.release(std::move(lease.conn), false);
        done = true;
    }, asio::detached);
    ioc.run_for(5s);
    EXPECT_TRUE(done);
    EXPECT_EQ(pool.snapshot().connects, 1u);
}

// ------------------------------------------------------------------ read size

/// Passes reads through to the connection's stream, recording how much each asks for.
struct RecordingStream {
    boost::beast::tcp_stream& next;
    std::vector<std::size_t>& asked;
    using executor_type = boost::beast::tcp_stream::executor_type;
    executor_type get_executor() { return next.get_executor(); }
    template <class Buffers, class Token>
    auto async_read_some(const Buffers& buffers, Token&& token) {
        asked.push_back(asio::buffer_size(buffers));
        return next.async_read_some(buffers, std::forward<Token>(token));
    }
    template <class Buffers, class Token>
    auto async_write_some(const Buffers& buffers, Token&& token) {
        return next.async_write_some(buffers, std::forward<Token>(token));
    }
};

TEST(UpstreamPoolTest, BodyReadsAskForLargePieces) {
    // Beast reads max(512, capacity - size) bytes into a dynamic buffer: an
    // unreserved buffer moved a download 512 bytes per recv().
    namespace bhttp = boost::beast::http;
    constexpr std::size_t kBody = 1024 * 1024;
    Fixture f(/*max_active=*/1);
    std::vector<std::size_t> asked;
    std::size_t received = 0;
    f.run([&]() -> asio::awaitable<void> {
        boost::system::error_code ec;
        auto lease = co_await f.pool->acquire(ec);
        EXPECT_FALSE(ec);
        EXPECT_GE(boost::beast::read_size(lease.conn->buffer, 65536), 16u * 1024);
        co_await f.accepted(1);
        const std::string response =
            "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(kBody) + "\r\n\r\n" + std::string(kBody, 'x');
        asio::async_write(f.peers[0], asio::buffer(response), [](boost::system::error_code, std::size_t) {});
        bhttp::response_parser<bhttp::buffer_body> parser;
        parser.body_limit(boost::none);
        RecordingStream rs{lease.conn->stream, asked};
        std::vector<char> piece(32 * 1024);  // the session's relay buffer
        for (int i = 0; i < 100000 && !parser.is_done(); ++i) {
            parser.get().body().data = piece.data();
            parser.get().body().size = piece.size();
            auto [rec, n] = co_await bhttp::async_read_some(rs, lease.conn->buffer, parser,
                                                            asio::as_tuple(asio::use_awaitable));
            if (rec == bhttp::error::need_buffer) rec = {};
            EXPECT_FALSE(rec) << rec.message();
            if (rec) break;
            if (parser.is_header_done()) received += piece.size() - parser.get().body().size;
        }
        f.pool->release(std::move(lease.conn), false);
    });
    EXPECT_EQ(received, kBody);
    ASSERT_FALSE(asked.empty());
    for (std::size_t i = 0; i < asked.size(); ++i)
        EXPECT_GE(asked[i], 16u * 1024) << "read " << i << " of " << asked.size() << " asked for " << asked[i];
}

}  // namespace
}  // namespace cacheproxy::upstream
