#include "support/raw_client.hpp"

#include <cerrno>
#include <cstring>
#include <sstream>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/parser.hpp>

namespace cacheproxy::e2e {

namespace beast = boost::beast;
namespace http = boost::beast::http;
using Clock = std::chrono::steady_clock;

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        unsigned char x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
        if (x >= 'A' && x <= 'Z') x = static_cast<unsigned char>(x + 32);
        if (y >= 'A' && y <= 'Z') y = static_cast<unsigned char>(y + 32);
        if (x != y) return false;
    }
    return true;
}

std::optional<std::string> Response::header(std::string_view name) const {
    for (const auto& [k, v] : headers)
        if (iequals(k, name)) return v;
    return std::nullopt;
}

std::vector<std::string> Response::header_values(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : headers)
        if (iequals(k, name)) out.push_back(v);
    return out;
}

std::string Response::head_text() const {
    if (status == 0) return "(no response: " + error + ")";
    std::ostringstream out;
    out << "HTTP/" << version / 10 << '.' << version % 10 << ' ' << status << ' ' << reason << '\n';
    for (const auto& [k, v] : headers) out << k << ": " << v << '\n';
    out << "(body " << body.size() << " bytes)";
    if (!error.empty()) out << " error: " << error;
    return out.str();
}

/// Beast's SyncReadStream over the client's socket, with the client's deadline.
struct DeadlineStream {
    RawClient& client;
    Clock::time_point deadline;
    bool timed_out = false;
    bool reset = false;

    template <class MutableBufferSequence>
    std::size_t read_some(const MutableBufferSequence& buffers, beast::error_code& ec) {
        ec = {};
        for (auto it = boost::asio::buffer_sequence_begin(buffers);
             it != boost::asio::buffer_sequence_end(buffers); ++it) {
            boost::asio::mutable_buffer b = *it;
            if (b.size() == 0) continue;
            long n = client.recv_some(static_cast<char*>(b.data()), b.size(), deadline, &timed_out, &reset);
            if (n > 0) return static_cast<std::size_t>(n);
            if (n == 0) ec = boost::asio::error::eof;
            else if (timed_out) ec = beast::error::timeout;
            else if (reset) ec = boost::asio::error::connection_reset;
            else ec = boost::asio::error::broken_pipe;
            return 0;
        }
        return 0;
    }
    template <class MutableBufferSequence>
    std::size_t read_some(const MutableBufferSequence& buffers) {
        beast::error_code ec;
        std::size_t n = read_some(buffers, ec);
        if (ec) throw beast::system_error(ec);
        return n;
    }
};

RawClient::RawClient(std::uint16_t port, std::chrono::milliseconds timeout) : port_(port), timeout_(timeout) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
        error_ = std::string("socket: ") + std::strerror(errno);
        return;
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        error_ = "connect 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno);
        return;
    }
    connected_ = true;
}

RawClient::~RawClient() { close(); }

void RawClient::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    connected_ = false;
}

std::uint16_t RawClient::local_port() const {
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    if (fd_ < 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
    return ntohs(addr.sin_port);
}

void RawClient::shutdown_write() {
    if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

bool RawClient::send(std::string_view bytes) {
    if (fd_ < 0) {
        if (error_.empty()) error_ = "send: not connected";
        return false;
    }
    const auto deadline = Clock::now() + timeout_;
    std::size_t done = 0;
    while (done < bytes.size()) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) {
            error_ = "send: timed out after " + std::to_string(done) + " of " + std::to_string(bytes.size()) +
                     " bytes";
            return false;
        }
        pollfd p{fd_, POLLOUT, 0};
        int r = ::poll(&p, 1, static_cast<int>(left));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;
        ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
            error_ = "send: " + std::string(std::strerror(errno)) + " after " + std::to_string(done) + " of " +
                     std::to_string(bytes.size()) + " bytes";
            return false;
        }
        done += static_cast<std::size_t>(n);
    }
    return true;
}

long RawClient::recv_some(char* data, std::size_t size, Clock::time_point deadline, bool* timed_out,
                          bool* reset) {
    if (fd_ < 0) {
        error_ = "recv: not connected";
        return -1;
    }
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) {
            *timed_out = true;
            error_ = "recv: timed out";
            return -1;
        }
        pollfd p{fd_, POLLIN, 0};
        int r = ::poll(&p, 1, static_cast<int>(left));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;
        ssize_t n = ::recv(fd_, data, size, MSG_DONTWAIT);
        if (n > 0) {
            received_.append(data, static_cast<std::size_t>(n));
            return n;
        }
        if (n == 0) return 0;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
        if (errno == ECONNRESET) *reset = true;
        error_ = "recv: " + std::string(std::strerror(errno));
        return -1;
    }
}

namespace {

Response to_response(const http::response_parser<http::string_body>& parser) {
    const auto& msg = parser.get();
    Response r;
    r.status = msg.result_int();
    r.version = msg.version();
    r.reason = std::string(msg.reason());
    for (const auto& f : msg) r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    r.body = msg.body();
    r.keep_alive = parser.is_header_done() ? parser.keep_alive() : false;
    r.chunked = parser.is_header_done() ? parser.chunked() : false;
    return r;
}

}  // namespace

ReadResult RawClient::read_responses(std::size_t n, std::vector<bool> head) {
    ReadResult result;
    DeadlineStream stream{*this, Clock::now() + timeout_};
    for (std::size_t i = 0; i < n; ++i) {
        http::response_parser<http::string_body> parser;
        parser.header_limit(1024 * 1024);
        parser.body_limit(256ull * 1024 * 1024);
        if (i < head.size() && head[i]) parser.skip(true);
        beast::error_code ec;
        http::read(stream, buffer_, parser, ec);
        if (!ec) {
            result.responses.push_back(to_response(parser));
            // An interim 1xx does not count against "the" response, but the
            // caller asked for n messages: count it like any other.
            continue;
        }
        result.timed_out = stream.timed_out;
        result.closed = ec == http::error::end_of_stream || ec == http::error::partial_message ||
                        ec == boost::asio::error::eof || stream.reset;
        result.error = stream.timed_out ? "timed out: nothing more within " + std::to_string(timeout_.count()) +
                                              " ms after " + std::to_string(result.responses.size()) +
                                              " complete response(s)"
                                        : ec.message();
        if (parser.is_header_done()) {
            Response partial = to_response(parser);
            partial.error = result.error;
            result.incomplete = std::move(partial);
        }
        break;
    }
    return result;
}

Response RawClient::read_response(bool head) {
    ReadResult rr = read_responses(1, {head});
    if (!rr.responses.empty()) return std::move(rr.responses.front());
    Response r;
    r.error = rr.error.empty() ? "no response" : rr.error;
    if (rr.incomplete) r.error += " (incomplete response: " + rr.incomplete->head_text() + ")";
    return r;
}

Response RawClient::request(std::string_view method, std::string_view target, const Headers& headers,
                            std::string_view body) {
    if (!connected()) {
        Response r;
        r.error = error_.empty() ? "not connected" : error_;
        return r;
    }
    if (!send(build_request(method, target, headers, body))) {
        Response r;
        r.error = error_;
        return r;
    }
    return read_response(method == "HEAD");
}

bool RawClient::readable(std::chrono::milliseconds timeout) {
    if (buffer_.size() > 0) return true;
    if (fd_ < 0) return false;
    pollfd p{fd_, POLLIN, 0};
    int r;
    do {
        r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    } while (r < 0 && errno == EINTR);
    return r > 0;
}

bool RawClient::wait_closed(std::chrono::milliseconds timeout, std::string* extra) {
    if (extra && buffer_.size() > 0) {
        auto d = buffer_.data();
        extra->append(static_cast<const char*>(d.data()), d.size());
    }
    buffer_.consume(buffer_.size());
    if (fd_ < 0) return true;
    const auto deadline = Clock::now() + timeout;
    char buf[4096];
    for (;;) {
        bool timed_out = false, reset = false;
        long n = recv_some(buf, sizeof buf, deadline, &timed_out, &reset);
        if (n > 0) {
            if (extra) extra->append(buf, static_cast<std::size_t>(n));
            continue;
        }
        if (n == 0 || reset) return true;
        return false;  // timed out (or another error: not a close we can vouch for)
    }
}

std::string build_request(std::string_view method, std::string_view target, const Headers& headers,
                          std::string_view body) {
    bool has_host = false, has_framing = false;
    for (const auto& [k, v] : headers) {
        if (iequals(k, "Host")) has_host = true;
        if (iequals(k, "Content-Length") || iequals(k, "Transfer-Encoding")) has_framing = true;
    }
    std::string out;
    out.reserve(256 + body.size());
    out.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
    if (!has_host) out += "Host: localhost\r\n";
    for (const auto& [k, v] : headers) out.append(k).append(": ").append(v).append("\r\n");
    bool wants_length = !body.empty() || method == "POST" || method == "PUT" || method == "PATCH";
    if (wants_length && !has_framing) out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    out += "\r\n";
    out.append(body);
    return out;
}

Response http_request(std::uint16_t port, std::string_view method, std::string_view target, const Headers& headers,
                      std::string_view body, std::chrono::milliseconds timeout) {
    RawClient client(port, timeout);
    return client.request(method, target, headers, body);
}

}  // namespace cacheproxy::e2e
