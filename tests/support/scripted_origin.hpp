#pragma once
/// A scripted origin that records every byte it receives, for the hardening
/// tests (tests/e2e/hardening_*.cpp). Unlike FakeUpstream (one fixed reply
/// per connection), each request is answered by a handler the test gives,
/// which sees the parsed request and can write exact raw bytes, pause, write
/// unsolicited bytes after a response, hang until the proxy gives up, close
/// or reset. It counts requests per path and the most requests in progress
/// at once.
///
/// A thread per connection, on a loopback port chosen by the kernel. Every
/// wait is bounded and wakes up when the origin is destroyed. GET /health is
/// answered 200 and not recorded (tests turn the proxy's health check off
/// with `upstream.health.path: ""` anyway).

#include "support/raw_client.hpp"  // Headers

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace cacheproxy::e2e {

class ScriptedOrigin {
public:
    /// One request as the origin received it.
    struct Request {
        std::size_t connection = 0;  ///< 0-based, in accept order
        std::size_t index = 0;       ///< 0-based position on its connection
        std::string method, target, version;
        Headers headers;             ///< in wire order, names as sent
        std::string head;            ///< the raw request line + fields + blank line
        std::string body;            ///< Content-Length bytes, or the de-chunked body
        bool chunked = false;        ///< the body came chunked
        bool complete = false;       ///< the whole body arrived (false: the peer went away first)

        /// target without its query.
        std::string path() const;
        /// The first field `name` (case-insensitive).
        std::optional<std::string> header(std::string_view name) const;
        /// Every value of the fields named `name`, in order.
        std::vector<std::string> header_values(std::string_view name) const;
        /// "name: value" lines, for failure messages.
        std::string headers_text() const;
    };

    /// The handler's view of the connection a request came on.
    class Reply {
    public:
        /// Writes all of `bytes`; false if the peer is gone (or the origin stops).
        bool write(std::string_view bytes);
        /// Sleeps `d` (wakes early when the origin stops).
        void pause(std::chrono::milliseconds d);
        /// Waits until the peer closes the connection, at most `max`. Bytes that
        /// arrive meanwhile (a next request) are kept for the next request.
        /// True if the peer closed.
        bool hang(std::chrono::milliseconds max);
        /// After the handler returns: close the connection (FIN).
        void close() { close_ = true; }
        /// After the handler returns: reset the connection (RST).
        void reset() { reset_ = true; close_ = true; }
        /// Marks the request as no longer in progress (for max_concurrency()):
        /// call it just before writing the answer, so that a request the proxy
        /// sends once it has that answer is not counted as concurrent with it.
        /// Returning from the handler does the same.
        void done();
        /// False once the origin is stopping.
        bool running() const;

    private:
        friend class ScriptedOrigin;
        Reply(ScriptedOrigin& origin, int fd, std::string& in, std::size_t conn)
            : origin_(origin), fd_(fd), in_(in), conn_(conn) {}
        ScriptedOrigin& origin_;
        int fd_;
        std::string& in_;
        std::size_t conn_;
        bool close_ = false;
        bool reset_ = false;
        bool done_ = false;
    };

    /// Called on the connection's thread for every request (health checks aside).
    using Handler = std::function<void(const Request&, Reply&)>;

    explicit ScriptedOrigin(Handler handler);
    /// Stops accepting, wakes every handler, joins every thread, closes every socket.
    ~ScriptedOrigin();
    ScriptedOrigin(const ScriptedOrigin&) = delete;
    ScriptedOrigin& operator=(const ScriptedOrigin&) = delete;

    std::uint16_t port() const { return port_; }
    /// "http://127.0.0.1:PORT"
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

    /// Every request received so far (heads parsed; bodies as far as received), in arrival order.
    std::vector<Request> requests() const;
    /// Requests whose head has arrived.
    std::size_t request_count() const;
    /// Requests whose path (target without query) is `path`.
    std::size_t count(const std::string& path) const;
    /// The most requests in progress at once (from head received to Reply::done() or the handler's return).
    std::size_t max_concurrency() const { return max_in_progress_.load(); }
    /// Requests in progress now.
    std::size_t in_progress() const { return in_progress_.load(); }
    /// Connections accepted.
    std::size_t connection_count() const;
    /// Every byte received on each connection, in accept order.
    std::vector<std::string> connection_bytes() const;
    /// Every byte received on every connection, concatenated (for "saw nothing" checks).
    std::size_t bytes_received() const;
    /// Polls until at least `n` requests have arrived, at most `timeout`.
    bool wait_requests(std::size_t n, std::chrono::milliseconds timeout) const;

private:
    struct Conn {
        int fd = -1;
        std::string received;
    };

    void run();
    void serve(std::size_t conn_index, int fd);
    /// Reads more bytes into `in` (recording them). >0 read, 0 EOF, -1 error or stop; waits at most `max`.
    long read_more(std::size_t conn, int fd, std::string& in, std::chrono::milliseconds max);

    Handler handler_;
    int listen_fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<std::size_t> in_progress_{0};
    std::atomic<std::size_t> max_in_progress_{0};
    mutable std::mutex mutex_;
    std::vector<Conn> conns_;
    std::vector<Request> requests_;
    std::map<std::string, std::size_t> per_path_;
    std::vector<std::thread> workers_;  ///< owned by thread_
    std::thread thread_;
};

// ------------------------------------------------------------------ reply builders

/// "HTTP/1.1 STATUS REASON\r\n" + `fields` + "Content-Length: N\r\n" (unless
/// `with_length` is false) + "\r\n" + body.
std::string raw_response(unsigned status, std::string_view body, const Headers& fields = {},
                         bool with_length = true);

/// A whole gzip member of `data` (zlib directly, not the proxy's code), at `level`.
std::string gzip_of(std::string_view data, int level = 6);
/// gzip of `total` zero bytes (built 1 MiB at a time, never held whole).
std::string gzip_of_zeros(std::size_t total, int level = 9);

/// A handler answering every request 200 with the body "own:METHOD TARGET"
/// (text/plain, Content-Length), keeping the connection open: whoever gets
/// that body got the answer to their own request.
ScriptedOrigin::Handler own_answers();
/// The body own_answers() gives `method` `target`.
std::string own_body(std::string_view method, std::string_view target);

/// `name` with every '_' read as '-', lower-cased.
std::string dash_lower(std::string_view name);

}  // namespace cacheproxy::e2e
