#pragma once
/// The first step of every small write to a peer: one non-blocking send of as
/// much as the socket takes right now. A response that fits the kernel's send
/// buffer (nearly every cached answer) then leaves without an asynchronous
/// operation, a timer, or a coroutine suspension: nginx's write path. Only
/// what the socket did not take goes on to an async write under a timeout
/// (the caller's job: see session/downstream.cpp).
///
/// The socket must be in non-blocking mode (socket.non_blocking(true), set
/// once when the session starts); Asio's async operations work unchanged on it.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <tuple>

namespace cacheproxy::net {

/// Sends what `socket` accepts now of `buffers`, in one gather send. Returns the
/// bytes sent. A full send buffer is not an error (0 bytes, `ec` clear); any
/// other failure sets `ec`.
template <class ConstBufferSequence>
std::size_t send_now(boost::asio::ip::tcp::socket& socket, const ConstBufferSequence& buffers,
                     boost::system::error_code& ec) {
    const std::size_t n = socket.write_some(buffers, ec);
    if (ec == boost::asio::error::would_block || ec == boost::asio::error::try_again) {
        ec = {};
        return 0;
    }
    return ec ? 0 : n;
}

/// The slow half of a write: what send_now left of `buffers` (it sent
/// `already`), written asynchronously with `timeout` armed. Returns the error
/// (if any) and the bytes this call wrote. Callers try send_now first and
/// co_await this only when it fell short, so the usual write creates no
/// coroutine frame at all:
///
///     std::size_t sent = net::send_now(stream.socket(), buffers, ec);
///     if (!ec && sent < asio::buffer_size(buffers))
///         std::tie(ec, std::ignore) = co_await net::send_rest(stream, buffers, sent, timeout);
template <class ConstBufferSequence>
boost::asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> send_rest(
    boost::beast::tcp_stream& stream, const ConstBufferSequence& buffers, std::size_t already,
    std::chrono::steady_clock::duration timeout) {
    boost::beast::buffers_suffix<ConstBufferSequence> rest(buffers);
    rest.consume(already);
    stream.expires_after(timeout);
    co_return co_await boost::asio::async_write(stream, rest, boost::asio::as_tuple(boost::asio::use_awaitable));
}

}  // namespace cacheproxy::net
