#include "session/downstream.hpp"

#include "http/date.hpp"
#include "http/hop_by_hop.hpp"
#include "net/send_now.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <tuple>

namespace cacheproxy::session {

namespace asio = boost::asio;
using boost::system::error_code;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

asio::awaitable<bool> Downstream::write_entry(const cache::CachedResponse& entry, EntryAnswer a) {
    const std::string_view body = a.gzip ? entry.gzip_body() : entry.body();
    // Only these few bytes are made per hit; head and body are the stored ones.
    auto append_number = [this](std::uint64_t n) {
        char digits[24];
        const auto r = std::to_chars(digits, digits + sizeof digits, n);
        head_.append(digits, r.ptr);
    };
    head_.clear();
    // The stored head holds no Date (cache/stored_head.cpp): this one is now's,
    // formatted at most once a second per thread (http/date.hpp).
    head_.append(http::current_date_line());
    if (a.gzip) head_.append("Content-Encoding: gzip\r\n");
    if (!entry.gzip_body().empty()) head_.append("Vary: Accept-Encoding\r\n");
    // The gzip variant's ETag is the weak one; none when it could not be weakened.
    if (const auto etag = a.gzip ? entry.weak_etag() : entry.etag(); !etag.empty())
        head_.append("ETag: ").append(etag).append("\r\n");
    head_.append("Content-Length: ");
    append_number(body.size());
    head_.append("\r\nAge: ");
    append_number(a.age);
    head_.append("\r\nX-Cache: ").append(a.x_cache);
    head_.append("\r\nCache-Status: ").append(a.cache_status).append(a.status_detail);
    head_.append("\r\nVia: 1.1 cacheproxy\r\n");
    if (!a.keep_alive)
        head_.append("Connection: close\r\n");
    else if (a.version == 10)
        head_.append("Connection: keep-alive\r\n");
    head_.append("\r\n");

    const std::array<asio::const_buffer, 3> buffers{asio::buffer(entry.head()), asio::buffer(head_),
                                                    a.head ? asio::const_buffer{} : asio::buffer(body)};
    // Sent at once if the socket takes it all (the usual case); suspended only for the rest.
    error_code ec;
    const std::size_t sent = net::send_now(stream_.socket(), buffers, ec);
    if (!ec && sent < asio::buffer_size(buffers))
        std::tie(ec, std::ignore) = co_await net::send_rest(stream_, buffers, sent, limits_.body_timeout);
    co_return !ec && a.keep_alive;
}

asio::awaitable<error_code> Downstream::reply(bhttp::response<bhttp::string_body>& res, bool head) {
    // Ours in place of the upstream's (a fill's or a write's answer), and on
    // the proxy's own errors (send_error comes here).
    res.set(bhttp::field::date, http::current_date());
    stream_.expires_after(limits_.body_timeout);
    if (head) {
        bhttp::response_serializer<bhttp::string_body> sr{res};
        auto [ec, n] = co_await bhttp::async_write_header(stream_, sr, tuple_awaitable);
        co_return ec;
    }
    auto [ec, n] = co_await bhttp::async_write(stream_, res, tuple_awaitable);
    co_return ec;
}

asio::awaitable<error_code> Downstream::send_error(unsigned status, std::string_view reason, bool keep_alive,
                                                   bool head) {
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(status), 11};
    res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
    res.set(bhttp::field::via, http::via_token(11));
    res.body() = std::to_string(status) + " " + std::string(bhttp::obsolete_reason(res.result())) + ": " +
                 std::string(reason) + "\n";
    res.keep_alive(keep_alive);
    res.prepare_payload();
    // A HEAD's answer carries no body, ours included: the next response on the
    // connection would be read as one.
    co_return co_await reply(res, head);
}

asio::awaitable<error_code> Downstream::send_error(unsigned status, error_code ec, bool keep_alive, bool head) {
    const std::string reason = ec.message();  // named: see the note on send_error
    co_return co_await send_error(status, reason, keep_alive, head);
}

asio::awaitable<error_code> Downstream::send_continue() {
    static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
    stream_.expires_after(limits_.body_timeout);
    auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(cont), tuple_awaitable);
    co_return ec;
}

std::size_t Downstream::write_now(std::span<const asio::const_buffer> buffers, error_code& ec) {
    return net::send_now(stream_.socket(), buffers, ec);
}

asio::awaitable<error_code> Downstream::write_rest(std::span<const asio::const_buffer> buffers, std::size_t sent) {
    auto [ec, n] = co_await net::send_rest(stream_, buffers, sent, limits_.body_timeout);
    co_return ec;
}

asio::awaitable<error_code> Downstream::write_header(bhttp::response_serializer<bhttp::buffer_body, http::Fields>& sr) {
    stream_.expires_after(limits_.body_timeout);
    auto [ec, n] = co_await bhttp::async_write_header(stream_, sr, tuple_awaitable);
    co_return ec;
}

asio::awaitable<error_code> Downstream::write_some(bhttp::response_serializer<bhttp::buffer_body, http::Fields>& sr) {
    stream_.expires_after(limits_.body_timeout);
    auto [ec, n] = co_await bhttp::async_write(stream_, sr, tuple_awaitable);
    co_return ec == bhttp::error::need_buffer ? error_code{} : ec;
}

asio::awaitable<net::Spliced> Downstream::splice_from(asio::ip::tcp::socket& from, std::uint64_t length,
                                                      net::SplicePipe& pipe,
                                                      std::chrono::steady_clock::duration read_timeout) {
    co_return co_await net::splice_copy(from, stream_.socket(), length, pipe,
                                        {.read_timeout = read_timeout, .write_timeout = limits_.body_timeout});
}

asio::awaitable<void> Downstream::close() {
    // Lingering close (nginx's lingering_close): after our FIN, what the
    // client still sends (the rest of a refused body, say) is read and
    // dropped, so its last answer is not destroyed by a reset before the
    // client reads it. Bounded: 1 s without a byte, 5 s and 64 MiB in all.
    constexpr auto quiet = std::chrono::seconds(1);
    constexpr auto total = std::chrono::seconds(5);
    constexpr std::size_t most = 64u << 20;
    error_code ec;
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    if (!ec) {
        const auto until = std::chrono::steady_clock::now() + total;
        std::size_t drained = 0;
        char sink[16 * 1024];
        while (drained < most) {
            const auto left = until - std::chrono::steady_clock::now();
            if (left <= std::chrono::steady_clock::duration::zero()) break;
            stream_.expires_after(std::min<std::chrono::steady_clock::duration>(quiet, left));
            auto [rec, n] = co_await stream_.async_read_some(asio::buffer(sink), tuple_awaitable);
            if (rec) break;
            drained += n;
        }
    }
    stream_.socket().close(ec);
}

}  // namespace cacheproxy::session
