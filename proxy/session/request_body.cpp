#include "session/request_body.hpp"

#include "http/proxy_error.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>

#include <algorithm>
#include <cstring>
#include <iterator>

namespace cacheproxy::session {

namespace asio = boost::asio;
using boost::system::error_code;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

asio::awaitable<error_code> RequestBody::send_continue() {
    if (!expect_continue_) co_return error_code{};
    expect_continue_ = false;
    co_return co_await down_.send_continue();
}

asio::awaitable<error_code> RequestBody::read_raw(char* dst, std::size_t size, std::size_t& got) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(size, remaining_));
    if (want == 0) co_return error_code{};
    if (buffer_.size() > 0) {  // what came with the header first
        got = std::min(want, buffer_.size());
        std::memcpy(dst, buffer_.data().data(), got);
        buffer_.consume(got);
    } else {
        stream_.expires_after(limits_.body_timeout);
        auto [ec, n] = co_await stream_.async_read_some(asio::buffer(dst, want), tuple_awaitable);
        got = n;
        if (ec) {
            remaining_ -= got;
            co_return ec == asio::error::eof ? make_error_code(bhttp::error::partial_message) : ec;
        }
    }
    remaining_ -= got;
    co_return error_code{};
}

asio::awaitable<net::Spliced> RequestBody::splice_to(asio::ip::tcp::socket& to, net::SplicePipe& pipe,
                                                    std::chrono::steady_clock::duration write_timeout) {
    net::Spliced out;
    if (auto ec = co_await send_continue(); ec) {
        out.from = ec;
        co_return out;
    }
    out = co_await net::splice_copy(stream_.socket(), to, on_socket(), pipe,
                                    {.read_timeout = limits_.body_timeout,
                                     .write_timeout = write_timeout,
                                     .min_rate = limits_.min_body_rate,
                                     .grace = config::min_body_rate_grace});
    remaining_ -= out.moved;
    if (out.from == asio::error::eof) out.from = make_error_code(bhttp::error::partial_message);
    co_return out;
}

asio::awaitable<error_code> RequestBody::read_piece(char* dst, std::size_t size, std::size_t& got) {
    got = 0;
    if (auto ec = co_await send_continue(); ec) co_return ec;
    if (raw_) co_return co_await read_raw(dst, size, got);
    auto& body = parser_->get().body();
    while (got == 0 && !parser_->is_done()) {
        body.data = dst;
        body.size = size;
        stream_.expires_after(limits_.body_timeout);
        auto [ec, n] = co_await bhttp::async_read_some(stream_, buffer_, *parser_, tuple_awaitable);
        if (ec == bhttp::error::need_buffer) ec = {};
        got = size - body.size;
        if (ec) co_return ec;
    }
    co_return error_code{};
}

asio::awaitable<error_code> RequestBody::read_prefix(std::string& into, Prefix& prefix) {
    into.clear();
    prefix = Prefix{};
    const bool chunked = parser_->chunked();
    const auto declared = parser_->content_length();
    if (!chunked && !declared) co_return error_code{};  // neither Content-Length nor chunked: no body
    if (!chunked) prefix.length = *declared;
    if (is_done()) co_return error_code{};
    const auto& req = parser_->get();
    const auto fields_before = static_cast<std::size_t>(std::distance(req.begin(), req.end()));
    const auto want = chunked ? limits_.request_buffer_bytes
                              : static_cast<std::size_t>(std::min<std::uint64_t>(*declared, limits_.request_buffer_bytes));
    into.resize(want);
    std::size_t have = 0;
    error_code ec;
    while (!ec && have < want && !is_done()) {
        std::size_t got = 0;
        ec = co_await read_piece(into.data() + have, want - have, got);
        have += got;
    }
    into.resize(have);
    prefix.whole = is_done();
    if (ec || !chunked) co_return ec;
    if (!prefix.whole) {
        prefix.chunked = true;  // the rest streams on chunked; trailers, if any, are dropped
        co_return error_code{};
    }
    // Read whole: checked as a whole (Beast merges trailer fields into the
    // header: any new field is a trailer), then sent with a Content-Length.
    if (static_cast<std::size_t>(std::distance(req.begin(), req.end())) != fields_before)
        co_return make_error_code(http_errors::errc::trailers_not_allowed);
    prefix.length = into.size();
    co_return error_code{};
}

asio::awaitable<error_code> RequestBody::read_whole(std::string& into) {
    into.clear();
    if (parser_->chunked()) co_return co_await read_chunked(into);
    const auto declared = parser_->content_length();
    if (!declared || is_done()) co_return error_code{};
    into.resize(static_cast<std::size_t>(*declared));
    std::size_t have = 0;
    while (!is_done()) {
        std::size_t got = 0;
        if (auto ec = co_await read_piece(into.data() + have, into.size() - have, got); ec) co_return ec;
        have += got;
    }
    into.resize(have);
    co_return error_code{};
}

asio::awaitable<error_code> RequestBody::read_chunked(std::string& into) {
    if (auto ec = co_await send_continue(); ec) co_return ec;
    auto& req = parser_->get();
    const auto fields_before = static_cast<std::size_t>(std::distance(req.begin(), req.end()));
    constexpr std::size_t step = 32 * 1024;
    into.clear();
    while (!parser_->is_done()) {
        const auto have = into.size();
        into.resize(have + step);
        auto& body = req.body();
        body.data = into.data() + have;
        body.size = step;
        stream_.expires_after(limits_.body_timeout);
        auto [ec, n] = co_await bhttp::async_read_some(stream_, buffer_, *parser_, tuple_awaitable);
        if (ec == bhttp::error::need_buffer) ec = {};
        into.resize(have + step - body.size);
        if (ec) co_return ec;
    }
    // Beast merges trailer fields into the header: any new field is a trailer.
    if (static_cast<std::size_t>(std::distance(req.begin(), req.end())) != fields_before)
        co_return make_error_code(http_errors::errc::trailers_not_allowed);
    co_return error_code{};
}

}  // namespace cacheproxy::session
