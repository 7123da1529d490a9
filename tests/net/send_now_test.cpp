#include "net/send_now.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <gtest/gtest.h>

#include <string>

namespace asio = boost::asio;
using asio::ip::tcp;
using cacheproxy::net::send_now;

TEST(SendNow, TakesWhatTheSocketAcceptsAndNeverBlocks) {
    asio::io_context io;
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    tcp::socket writer(io);
    writer.connect(acceptor.local_endpoint());
    tcp::socket reader = acceptor.accept();
    writer.non_blocking(true);

    // A small write goes out whole, at once.
    boost::system::error_code ec;
    EXPECT_EQ(send_now(writer, asio::buffer(std::string_view("hello")), ec), 5u);
    EXPECT_FALSE(ec);

    // Nobody reads: a large write is taken only in part, without an error...
    const std::string big(64 * 1024 * 1024, 'x');
    const std::size_t first = send_now(writer, asio::buffer(big), ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_GT(first, 0u);
    EXPECT_LT(first, big.size());
    // ...and once the buffers are full, nothing more is taken, still without an error.
    std::size_t more = 0;
    for (int i = 0; i < 8; ++i) more += send_now(writer, asio::buffer(big.data() + first, big.size() - first), ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_LT(first + more, big.size());

    // A peer that is gone is an error.
    reader.close();
    writer.shutdown(tcp::socket::shutdown_receive, ec);
    ec = {};
    for (int i = 0; i < 100 && !ec; ++i) send_now(writer, asio::buffer(std::string_view("x")), ec);
    EXPECT_TRUE(ec);
}
