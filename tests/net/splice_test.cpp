/// net::splice_copy between two loopback TCP connections: `from` is fed by a
/// peer thread (blocking socket), `to` is drained by another; the relay runs
/// on the test's io_context. Every wait is bounded (the relay's own timeouts,
/// and 10 s for the peers' conditions).

#include "net/splice.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <gtest/gtest.h>

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using cacheproxy::net::PipePool;
using cacheproxy::net::splice_copy;
using cacheproxy::net::SpliceLimits;
using cacheproxy::net::Spliced;
using cacheproxy::net::SplicePipe;
using namespace std::chrono_literals;

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
    return s;
}

/// A connected pair on loopback: `ours` on the io_context (non-blocking),
/// `peer` for a blocking peer thread.
struct Pair {
    explicit Pair(asio::io_context& io) : ours(io), peer(io) {
        tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
        peer.connect(acceptor.local_endpoint());
        ours = acceptor.accept();
        ours.non_blocking(true);
    }
    tcp::socket ours;
    tcp::socket peer;
};

int low_water_of(tcp::socket& s) {
    int v = 0;
    socklen_t len = sizeof v;
    ::getsockopt(s.native_handle(), SOL_SOCKET, SO_RCVLOWAT, &v, &len);
    return v;
}

/// Runs splice_copy(from.ours -> to.ours) to completion on `io`.
Spliced relay(asio::io_context& io, Pair& from, Pair& to, std::uint64_t length, SplicePipe& pipe, SpliceLimits limits) {
    std::optional<Spliced> out;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        out = co_await splice_copy(from.ours, to.ours, length, pipe, limits);
    }, asio::detached);
    io.run();
    io.restart();
    return out.value_or(Spliced{});
}

/// Reads from `s` (blocking) until `n` bytes or EOF/error.
std::string read_n(tcp::socket& s, std::size_t n) {
    std::string got(n, '\0');
    error_code ec;
    const std::size_t r = asio::read(s, asio::buffer(got), ec);
    got.resize(r);
    return got;
}

/// Waits (10 s at most) until `pred` holds.
template <class Pred>
bool wait_for(std::mutex& m, std::condition_variable& cv, Pred pred) {
    std::unique_lock lock(m);
    return cv.wait_for(lock, 10s, pred);
}

const SpliceLimits kLimits{.read_timeout = 5s, .write_timeout = 5s};

TEST(Splice, MovesExactlyTheLengthAndLeavesWhatFollowsUnread) {
    asio::io_context io;
    Pair from(io), to(io);
    SplicePipe pipe;
    ASSERT_TRUE(pipe.open(PipePool::pipe_bytes));
    const std::string body = pattern(3 * 1024 * 1024 + 123);
    std::thread writer([&] { asio::write(from.peer, asio::buffer(body + "NEXT")); });
    std::string got;
    std::thread reader([&] { got = read_n(to.peer, body.size()); });

    const Spliced r = relay(io, from, to, body.size(), pipe, kLimits);
    writer.join();
    reader.join();
    EXPECT_FALSE(r.from) << r.from.message();
    EXPECT_FALSE(r.to) << r.to.message();
    EXPECT_EQ(r.moved, body.size());
    EXPECT_EQ(pipe.held, 0u);
    EXPECT_TRUE(got == body) << "the bytes differ (" << got.size() << " of " << body.size() << " arrived)";
    // What follows the body is still on `from`, and `from` wakes for one byte again.
    EXPECT_EQ(low_water_of(from.ours), 1);
    from.ours.non_blocking(false);
    EXPECT_EQ(read_n(from.ours, 4), "NEXT");
}

TEST(Splice, ASenderThatPausesIsNotHeldBackByTheLowWaterMark) {
    // The sender sends 300 KiB, then waits until the receiver has all of it
    // before it sends the rest: held back until more came, the relay would
    // never finish (it would time out after 5 s).
    asio::io_context io;
    Pair from(io), to(io);
    SplicePipe pipe;
    ASSERT_TRUE(pipe.open(PipePool::pipe_bytes));
    const std::string body = pattern(1024 * 1024);
    constexpr std::size_t first = 300 * 1024;
    std::mutex m;
    std::condition_variable cv;
    std::size_t received = 0;
    bool writer_saw_all = false;
    std::thread writer([&] {
        asio::write(from.peer, asio::buffer(body.data(), first));
        writer_saw_all = wait_for(m, cv, [&] { return received >= first; });
        asio::write(from.peer, asio::buffer(body.data() + first, body.size() - first));
    });
    std::string got;
    std::thread reader([&] {
        char buf[64 * 1024];
        error_code ec;
        while (got.size() < body.size()) {
            const std::size_t n = to.peer.read_some(asio::buffer(buf), ec);
            if (ec) break;
            got.append(buf, n);
            std::lock_guard lock(m);
            received = got.size();
            cv.notify_all();
        }
    });
    const Spliced r = relay(io, from, to, body.size(), pipe, kLimits);
    writer.join();
    reader.join();
    EXPECT_TRUE(writer_saw_all) << "the first 300 KiB did not reach the receiver before the rest was sent";
    EXPECT_FALSE(r.from) << r.from.message();
    EXPECT_FALSE(r.to) << r.to.message();
    EXPECT_TRUE(got == body);
}

TEST(Splice, ASenderThatEndsEarlyIsAnEndAndWhatItSentStillArrives) {
    asio::io_context io;
    Pair from(io), to(io);
    SplicePipe pipe;
    ASSERT_TRUE(pipe.open(PipePool::pipe_bytes));
    const std::string part = pattern(100 * 1024);
    std::thread writer([&] {
        asio::write(from.peer, asio::buffer(part));
        from.peer.shutdown(tcp::socket::shutdown_send);
    });
    std::string got;
    std::thread reader([&] { got = read_n(to.peer, part.size()); });
    const Spliced r = relay(io, from, to, 1024 * 1024, pipe, kLimits);
    writer.join();
    reader.join();
    EXPECT_EQ(r.from, asio::error::eof);
    EXPECT_FALSE(r.to);
    EXPECT_EQ(r.moved, part.size());
    EXPECT_TRUE(got == part);
}

TEST(Splice, AQuietSenderTimesOut) {
    asio::io_context io;
    Pair from(io), to(io);
    SplicePipe pipe;
    ASSERT_TRUE(pipe.open(PipePool::pipe_bytes));
    const std::string part = pattern(10 * 1024);
    asio::write(from.peer, asio::buffer(part));  // then nothing more
    const Spliced r = relay(io, from, to, 1024 * 1024, pipe, {.read_timeout = 300ms, .write_timeout = 5s});
    EXPECT_EQ(r.from, make_error_code(boost::beast::error::timeout)) << r.from.message();
    EXPECT_FALSE(r.to);
    EXPECT_EQ(r.moved, part.size());
    EXPECT_EQ(low_water_of(from.ours), 1);
}

TEST(Splice, AReceiverThatStopsReadingTimesOutTheWrite) {
    asio::io_context io;
    Pair from(io), to(io);
    SplicePipe pipe;
    ASSERT_TRUE(pipe.open(PipePool::pipe_bytes));
    constexpr std::size_t length = 256u * 1024 * 1024;  // more than every buffer on the way holds
    std::atomic<bool> stop{false};
    std::thread writer([&] {
        const std::string piece = pattern(1024 * 1024);
        error_code ec;
        for (std::size_t sent = 0; sent < length && !stop && !ec; sent += piece.size())
            asio::write(from.peer, asio::buffer(piece), ec);
    });
    const Spliced r = relay(io, from, to, length, pipe, {.read_timeout = 5s, .write_timeout = 300ms});
    stop = true;
    error_code ignored;
    from.ours.close(ignored);  // unread bytes: a reset, which fails the writer's blocked send
    from.peer.shutdown(tcp::socket::shutdown_both, ignored);
    writer.join();
    EXPECT_EQ(r.to, make_error_code(boost::beast::error::timeout)) << r.to.message();
    EXPECT_LT(r.moved, length);
}

TEST(Splice, ASenderBelowTheMinimumRateIsCut) {
    asio::io_context io;
    Pair from(io), to(io);
    SplicePipe pipe;
    ASSERT_TRUE(pipe.open(PipePool::pipe_bytes));
    std::atomic<bool> stop{false};
    std::thread writer([&] {  // 1 KiB every 20 ms (~50 KiB/s), for at most 10 s
        const std::string piece = pattern(1024);
        error_code ec;
        for (int i = 0; i < 500 && !stop && !ec; ++i) {
            asio::write(from.peer, asio::buffer(piece), ec);
            std::this_thread::sleep_for(20ms);
        }
    });
    std::thread reader([&] { read_n(to.peer, 1024 * 1024); });
    const Spliced r = relay(io, from, to, 1024 * 1024, pipe,
                            {.read_timeout = 5s, .write_timeout = 5s, .min_rate = 1024 * 1024, .grace = 200ms});
    stop = true;
    writer.join();
    to.ours.close();  // the reader sees EOF
    reader.join();
    EXPECT_EQ(r.from, make_error_code(boost::beast::error::timeout)) << r.from.message();
    EXPECT_LT(r.moved, 1024u * 1024);
}

TEST(PipePool, ReusesAnEmptyPipeAndDropsOneWithBytesInIt) {
    PipePool pool;
    SplicePipe a = pool.take();
    ASSERT_TRUE(a.is_open());
    EXPECT_GE(a.capacity(), 64u * 1024);
    const int fd = a.read_fd();
    pool.give_back(std::move(a));
    SplicePipe b = pool.take();
    EXPECT_EQ(b.read_fd(), fd) << "an empty pipe is reused";
    b.held = 1;  // a relay stopped with bytes in it
    pool.give_back(std::move(b));
    SplicePipe c = pool.take();
    ASSERT_TRUE(c.is_open());
    EXPECT_EQ(c.held, 0u);
}

}  // namespace
