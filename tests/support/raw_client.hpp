#pragma once
/// A blocking HTTP/1.1 test client over a plain TCP socket: it sends exactly
/// the bytes a test gives it (malformed ones included) and parses what comes
/// back with Beast's response parser. Every read and write has a deadline, so
/// a test never hangs on a proxy that does not answer.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/core/flat_buffer.hpp>

namespace cacheproxy::e2e {

using namespace std::chrono_literals;

/// Header fields in wire order; names as sent (duplicates allowed).
using Headers = std::vector<std::pair<std::string, std::string>>;

/// One parsed HTTP response. status == 0 means there was none; `error` says why.
struct Response {
    unsigned status = 0;
    unsigned version = 0;          ///< 11 for HTTP/1.1, 10 for HTTP/1.0
    std::string reason;
    Headers headers;               ///< as received, in order
    std::string body;              ///< decoded (de-chunked) body
    bool keep_alive = false;       ///< what the parser concluded
    bool chunked = false;          ///< the response was chunked on the wire
    std::string error;             ///< why there is no (complete) response

    /// The first field named `name` (case-insensitive).
    std::optional<std::string> header(std::string_view name) const;
    /// Every value of the fields named `name`, in order.
    std::vector<std::string> header_values(std::string_view name) const;
    bool has_header(std::string_view name) const { return header(name).has_value(); }
    /// "HTTP/1.1 200 OK" plus the fields, for failure messages.
    std::string head_text() const;
};

/// What a multi-response read ended with.
struct ReadResult {
    std::vector<Response> responses;   ///< the complete ones, in order
    std::optional<Response> incomplete;///< a response whose header arrived but not its whole body
    bool closed = false;               ///< the peer closed (EOF or reset)
    bool timed_out = false;            ///< the deadline passed first
    std::string error;                 ///< the read error that ended it ("" if n were read)
};

/// One client connection to 127.0.0.1:port.
class RawClient {
public:
    /// Connects (TCP_NODELAY). Never throws: check connected() / last_error().
    explicit RawClient(std::uint16_t port, std::chrono::milliseconds timeout = 5s);
    ~RawClient();
    RawClient(const RawClient&) = delete;
    RawClient& operator=(const RawClient&) = delete;

    bool connected() const { return fd_ >= 0 && connected_; }
    const std::string& last_error() const { return error_; }
    std::uint16_t port() const { return port_; }
    /// The client's own (ephemeral) port.
    std::uint16_t local_port() const;
    /// Per-operation deadline for later calls.
    void set_timeout(std::chrono::milliseconds t) { timeout_ = t; }

    /// Writes all of `bytes`; false (and last_error()) on error or timeout.
    bool send(std::string_view bytes);
    /// Half-closes the sending side (FIN).
    void shutdown_write();
    /// Closes the socket now.
    void close();

    /// Reads up to `n` complete responses (interim 1xx responses count as
    /// one each). Stops early on close, error or timeout. `head` marks which
    /// of them answer a HEAD request (no body is read for those).
    ReadResult read_responses(std::size_t n, std::vector<bool> head = {});
    /// Reads responses until the peer closes (or the timeout passes).
    ReadResult read_until_close() { return read_responses(static_cast<std::size_t>(-1)); }
    /// Reads one response; status 0 and .error if there is none.
    Response read_response(bool head = false);
    /// Sends a request built by build_request() and reads its response.
    Response request(std::string_view method, std::string_view target, const Headers& headers = {},
                     std::string_view body = {});

    /// True if something (bytes or a close) is waiting to be read within
    /// `timeout`, without reading it.
    bool readable(std::chrono::milliseconds timeout);

    /// Waits until the peer closes the connection. True if it did within the
    /// timeout; any bytes that arrived first (beyond parsed responses) are
    /// appended to `extra` when given.
    bool wait_closed(std::chrono::milliseconds timeout, std::string* extra = nullptr);

    /// Every byte received on this connection so far.
    const std::string& received() const { return received_; }

private:
    /// recv() with the deadline: >0 bytes, 0 on EOF, -1 with error_ set.
    long recv_some(char* data, std::size_t size, std::chrono::steady_clock::time_point deadline,
                   bool* timed_out, bool* reset);
    friend struct DeadlineStream;

    std::uint16_t port_;
    std::chrono::milliseconds timeout_;
    int fd_ = -1;
    bool connected_ = false;
    std::string error_;
    std::string received_;
    boost::beast::flat_buffer buffer_;
};

/// A request in wire form: "METHOD TARGET HTTP/1.1", the given fields,
/// "Host: localhost" unless a Host is given, and a Content-Length when there is
/// a body (or the method is POST/PUT/PATCH) and none of Content-Length /
/// Transfer-Encoding is given; then the body.
std::string build_request(std::string_view method, std::string_view target, const Headers& headers = {},
                          std::string_view body = {});

/// One request on a fresh connection to 127.0.0.1:port, then close.
Response http_request(std::uint16_t port, std::string_view method, std::string_view target,
                      const Headers& headers = {}, std::string_view body = {},
                      std::chrono::milliseconds timeout = 5s);

/// ASCII case-insensitive equality.
bool iequals(std::string_view a, std::string_view b);

}  // namespace cacheproxy::e2e
