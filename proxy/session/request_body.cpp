#include "session/request_body.hpp"

#include "http/proxy_error.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>

#include <algorithm>
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

asio::awaitable<error_code> RequestBody::read_piece(char* dst, std::size_t size, std::size_t& got) {
    got = 0;
    if (auto ec = co_await send_continue(); ec) co_return ec;
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

asio::awaitable<error_code> RequestBody::read_prefix(std::string& into, std::optional<std::uint64_t>& length,
                                                     bool& whole) {
    into.clear();
    whole = true;
    length.reset();
    if (parser_->chunked()) {
        if (auto ec = co_await read_chunked(into); ec) co_return ec;
        length = into.size();
        co_return error_code{};
    }
    const auto declared = parser_->content_length();
    if (!declared) co_return error_code{};  // neither Content-Length nor chunked: no body
    length = *declared;
    if (parser_->is_done()) co_return error_code{};
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(*declared, limits_.request_buffer_bytes));
    into.resize(want);
    std::size_t have = 0;
    error_code ec;
    while (!ec && have < want && !parser_->is_done()) {
        std::size_t got = 0;
        ec = co_await read_piece(into.data() + have, want - have, got);
        have += got;
    }
    into.resize(have);
    whole = parser_->is_done();
    co_return ec;
}

asio::awaitable<error_code> RequestBody::read_whole(std::string& into) {
    into.clear();
    if (parser_->chunked()) co_return co_await read_chunked(into);
    const auto declared = parser_->content_length();
    if (!declared || parser_->is_done()) co_return error_code{};
    into.resize(static_cast<std::size_t>(*declared));
    std::size_t have = 0;
    while (!parser_->is_done()) {
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
