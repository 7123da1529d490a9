/// Issue 13, WebSocket / Upgrade tunnels end to end: the real binary between
/// a raw-socket client and an in-test origin that answers the upgrade and then
/// echoes (ScriptedOrigin cannot read after its answer, so the origin here is
/// a thread per connection on plain sockets).
///  - an allowed upgrade is forwarded with its Upgrade/Connection, the 101 is
///    relayed and bytes go both ways, counted in /stats and /metrics;
///  - an origin that does not switch (200, 404) is answered as HTTP, no tunnel;
///  - an Upgrade the operator did not allow goes upstream without it;
///  - tunnel.max_open: the next upgrade gets a 503, counted as refused;
///  - tunnel.idle_timeout: a quiet tunnel is closed, counted as idle_closed;
///  - a FIN from either side reaches the other (half-close), the other way
///    still carries bytes;
///  - a 101 to a request that did not ask for it, or without an Upgrade
///    field, is a 502.
/// Every wait is bounded; every port is chosen by the kernel at run time.

#include "support/cache_helpers.hpp"
#include "support/fixtures.hpp"
#include "support/json_lite.hpp"
#include "support/raw_client.hpp"
#include "support/scripted_origin.hpp"  // raw_response

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace cacheproxy::e2e {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

/// "name: value" fields of a head (after its first line), names as sent.
Headers parse_fields(const std::string& head) {
    Headers out;
    std::size_t pos = head.find("\r\n");
    pos = pos == std::string::npos ? head.size() : pos + 2;
    while (pos < head.size()) {
        const std::size_t end = head.find("\r\n", pos);
        if (end == std::string::npos || end == pos) break;
        const std::string field = head.substr(pos, end - pos);
        const std::size_t colon = field.find(':');
        std::string value = colon == std::string::npos ? "" : field.substr(colon + 1);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(0, 1);
        while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
        out.emplace_back(field.substr(0, colon), value);
        pos = end + 2;
    }
    return out;
}

std::optional<std::string> field_of(const Headers& fields, std::string_view name) {
    for (const auto& [k, v] : fields)
        if (iequals(k, name)) return v;
    return std::nullopt;
}

/// True if the comma-separated `value` holds `token` (case-insensitive).
bool has_token(const std::string& value, std::string_view token) {
    std::size_t start = 0;
    while (start <= value.size()) {
        std::size_t end = value.find(',', start);
        if (end == std::string::npos) end = value.size();
        std::string t = value.substr(start, end - start);
        while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.erase(0, 1);
        while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.pop_back();
        if (iequals(t, token)) return true;
        start = end + 1;
    }
    return false;
}

/// poll() + recv() with a deadline: >0 bytes, 0 EOF (or reset), -1 timeout / error.
long recv_until(int fd, std::string& out, std::chrono::steady_clock::time_point deadline,
                const std::atomic<bool>* stop = nullptr) {
    for (;;) {
        if (stop && *stop) return -1;
        const auto left =
            std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        if (left <= 0) return -1;
        pollfd p{fd, POLLIN, 0};
        const int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 50)));
        if (r < 0 && errno != EINTR) return -1;
        if (r <= 0) continue;
        char buf[16384];
        const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            out.append(buf, static_cast<std::size_t>(n));
            return n;
        }
        if (n == 0) return 0;
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
        return 0;  // a reset: as good as closed
    }
}

bool send_all(int fd, std::string_view bytes, milliseconds max = seconds(5)) {
    const auto deadline = std::chrono::steady_clock::now() + max;
    std::size_t done = 0;
    while (done < bytes.size()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        pollfd p{fd, POLLOUT, 0};
        const int r = ::poll(&p, 1, 50);
        if (r < 0 && errno != EINTR) return false;
        if (r <= 0) continue;
        const ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
            return false;
        }
        done += static_cast<std::size_t>(n);
    }
    return true;
}

// ------------------------------------------------------------------ the origin

/// An origin on a kernel-chosen loopback port: every connection runs `Script`
/// on its own thread, which reads request heads and writes what it likes, and
/// after a 101 reads and writes raw bytes. What each connection received is
/// recorded. Every read is bounded and wakes when the origin is destroyed.
class TunnelOrigin {
public:
    /// One connection as the origin saw it.
    struct Record {
        std::vector<std::string> heads;  ///< request heads, in order
        std::string tunneled;            ///< bytes after the last head
        bool eof = false;                ///< the proxy's FIN (or reset) arrived
    };

    class Conn {
    public:
        /// Reads the next request head (no bodies here). False if none came within `max`.
        bool read_head(milliseconds max = seconds(5)) {
            const auto deadline = std::chrono::steady_clock::now() + max;
            std::size_t end;
            while ((end = in_.find("\r\n\r\n")) == std::string::npos) {
                if (recv_until(fd_, in_, deadline, &origin_.stop_) <= 0) return false;
            }
            head_ = in_.substr(0, end + 4);
            in_.erase(0, end + 4);
            std::lock_guard<std::mutex> lock(origin_.mutex_);
            auto& rec = origin_.records_[index_];
            rec.heads.push_back(head_);
            rec.tunneled.clear();
            return true;
        }
        const std::string& head() const { return head_; }
        /// The request asked for `Upgrade: websocket` with `Connection: upgrade`.
        bool asks_websocket() const {
            const auto fields = parse_fields(head_);
            const auto upgrade = field_of(fields, "Upgrade");
            const auto connection = field_of(fields, "Connection");
            return upgrade && connection && iequals(*upgrade, "websocket") && has_token(*connection, "upgrade");
        }
        bool write(std::string_view bytes) { return send_all(fd_, bytes); }
        /// Bytes after the head: what was already read first. >0, 0 EOF, -1 nothing within `max`.
        long read_some(std::string& out, milliseconds max) {
            long n;
            if (!in_.empty()) {
                n = static_cast<long>(in_.size());
                out += in_;
                record_tunneled(in_);
                in_.clear();
                return n;
            }
            std::string got;
            n = recv_until(fd_, got, std::chrono::steady_clock::now() + max, &origin_.stop_);
            if (n > 0) {
                out += got;
                record_tunneled(got);
            } else if (n == 0) {
                std::lock_guard<std::mutex> lock(origin_.mutex_);
                origin_.records_[index_].eof = true;
            }
            return n;
        }
        /// Sends back every byte it reads until EOF or `max`; true at EOF.
        bool echo_until_eof(milliseconds max) {
            const auto deadline = std::chrono::steady_clock::now() + max;
            while (std::chrono::steady_clock::now() < deadline && !origin_.stop_) {
                std::string got;
                const long n = read_some(got, milliseconds(50));
                if (n == 0) return true;
                if (n > 0 && !write(got)) return false;
            }
            return false;
        }
        /// Waits for EOF, recording what comes meanwhile; true at EOF.
        bool wait_eof(milliseconds max) {
            const auto deadline = std::chrono::steady_clock::now() + max;
            while (std::chrono::steady_clock::now() < deadline && !origin_.stop_) {
                std::string got;
                if (read_some(got, milliseconds(50)) == 0) return true;
            }
            return false;
        }
        void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
        bool running() const { return !origin_.stop_; }

    private:
        friend class TunnelOrigin;
        Conn(TunnelOrigin& origin, int fd, std::size_t index) : origin_(origin), fd_(fd), index_(index) {}
        void record_tunneled(const std::string& bytes) {
            std::lock_guard<std::mutex> lock(origin_.mutex_);
            origin_.records_[index_].tunneled += bytes;
        }
        TunnelOrigin& origin_;
        int fd_;
        std::size_t index_;
        std::string in_;
        std::string head_;
    };

    using Script = std::function<void(Conn&)>;

    explicit TunnelOrigin(Script script) : script_(std::move(script)) {
        listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (listen_fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
        int one = 1;
        ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_fd_, 64) != 0 ||
            ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
            const int e = errno;
            ::close(listen_fd_);
            throw std::runtime_error(std::string("TunnelOrigin bind/listen: ") + std::strerror(e));
        }
        port_ = ntohs(addr.sin_port);
        thread_ = std::thread([this] { run(); });
    }
    ~TunnelOrigin() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
        ::close(listen_fd_);
    }
    TunnelOrigin(const TunnelOrigin&) = delete;
    TunnelOrigin& operator=(const TunnelOrigin&) = delete;

    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    std::vector<Record> records() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return records_;
    }
    std::size_t connections() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return records_.size();
    }
    /// Every request head received, all connections, in connection order.
    std::vector<std::string> heads() const {
        std::vector<std::string> out;
        for (const auto& r : records())
            for (const auto& h : r.heads) out.push_back(h);
        return out;
    }

private:
    void run() {
        std::vector<std::thread> workers;
        while (!stop_) {
            pollfd p{listen_fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) continue;
            int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            std::size_t index;
            {
                std::lock_guard<std::mutex> lock(mutex_);
                index = records_.size();
                records_.emplace_back();
            }
            workers.emplace_back([this, fd, index] {
                Conn conn(*this, fd, index);
                if (script_) script_(conn);
                ::shutdown(fd, SHUT_WR);
                ::close(fd);
            });
        }
        for (auto& w : workers) w.join();
    }

    Script script_;
    int listen_fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    mutable std::mutex mutex_;
    std::vector<Record> records_;
    std::thread thread_;
};

/// The origin's 101 for a WebSocket upgrade (the accept value is not checked here).
const std::string kSwitch =
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    "\r\n";

/// Answers a WebSocket upgrade with a 101 and echoes until the proxy's FIN
/// (bounded); anything else gets 200 "plain" and the connection stays for more.
void echo_script(TunnelOrigin::Conn& c) {
    while (c.running() && c.read_head(seconds(30))) {
        if (c.asks_websocket()) {
            if (!c.write(kSwitch)) return;
            c.echo_until_eof(seconds(30));
            return;
        }
        if (!c.write(raw_response(200, "plain", {{"Content-Type", "text/plain"}}))) return;
    }
}

// ------------------------------------------------------------------ the client

/// The client's upgrade request.
std::string upgrade_request(const std::string& target = "/ws/echo", const std::string& protocol = "websocket",
                            const std::string& connection = "Upgrade") {
    return "GET " + target +
           " HTTP/1.1\r\n"
           "Host: localhost\r\n"
           "Connection: " + connection + "\r\n"
           "Upgrade: " + protocol + "\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           "Sec-WebSocket-Version: 13\r\n"
           "\r\n";
}

/// A plain socket to the proxy: a response head, then raw bytes.
class TunnelClient {
public:
    explicit TunnelClient(std::uint16_t port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(port);
        connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    }
    ~TunnelClient() {
        if (fd_ >= 0) ::close(fd_);
    }
    TunnelClient(const TunnelClient&) = delete;
    TunnelClient& operator=(const TunnelClient&) = delete;

    bool connected() const { return connected_; }
    bool send(std::string_view bytes) { return send_all(fd_, bytes); }
    void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
    /// Closes with a reset (SO_LINGER 0).
    void reset() {
        linger l{1, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        ::close(fd_);
        fd_ = -1;
    }

    /// Reads one response head; status 0 if none came within `max`.
    unsigned read_head(milliseconds max = seconds(5)) {
        const auto deadline = std::chrono::steady_clock::now() + max;
        std::size_t end;
        while ((end = in_.find("\r\n\r\n")) == std::string::npos)
            if (recv_until(fd_, in_, deadline) <= 0) return 0;
        head_ = in_.substr(0, end + 4);
        in_.erase(0, end + 4);
        fields_ = parse_fields(head_);
        unsigned status = 0;
        if (head_.rfind("HTTP/1.1 ", 0) == 0 && head_.size() >= 12) status = std::stoul(head_.substr(9, 3));
        return status;
    }
    const std::string& head() const { return head_; }
    std::optional<std::string> field(std::string_view name) const { return field_of(fields_, name); }

    /// Reads until `n` bytes after the head have arrived (or EOF / `max`); takes them.
    std::string read_bytes(std::size_t n, milliseconds max = seconds(5)) {
        const auto deadline = std::chrono::steady_clock::now() + max;
        while (in_.size() < n)
            if (recv_until(fd_, in_, deadline) <= 0) break;
        const std::string out = in_.substr(0, std::min(n, in_.size()));
        in_.erase(0, out.size());
        return out;
    }
    /// Reads until EOF within `max`; true if it came. What came first is appended to `*got`.
    bool read_until_eof(milliseconds max, std::string* got = nullptr) {
        const auto deadline = std::chrono::steady_clock::now() + max;
        for (;;) {
            const long n = recv_until(fd_, in_, deadline);
            if (n == 0) break;
            if (n < 0) return false;
        }
        if (got) *got += in_;
        in_.clear();
        return true;
    }

private:
    int fd_ = -1;
    bool connected_ = false;
    std::string in_, head_;
    Headers fields_;
};

// ------------------------------------------------------------------ the proxy and its numbers

void tunnel_config(ProxyConfig& c) {
    c.set("upstream.health.path", "\"\"");
    c.set("tunnel.protocols", "[websocket]");
}

/// GET /stats' "tunnels" object; a null Json if /stats did not answer.
Json tunnel_stats(const Proxy& proxy) {
    const Response r = http_request(proxy.admin_port(), "GET", "/stats", {}, {}, seconds(3));
    if (r.status != 200) return Json{};
    auto j = parse_json(r.body);
    return j ? (*j)["tunnels"] : Json{};
}

/// Polls /stats until `pred` holds on its tunnels object (at most `max`); the last one read.
Json wait_tunnel_stats(const Proxy& proxy, const std::function<bool(const Json&)>& pred,
                       milliseconds max = seconds(5)) {
    Json last;
    wait_until(
        [&] {
            last = tunnel_stats(proxy);
            return !last.is_null() && pred(last);
        },
        max, milliseconds(50));
    return last;
}

std::string stats_text(const Json& t) {
    return "open=" + std::to_string(t["open"].as_int()) + " opened=" + std::to_string(t["opened"].as_int()) +
           " refused=" + std::to_string(t["refused"].as_int()) +
           " idle_closed=" + std::to_string(t["idle_closed"].as_int()) +
           " bytes_up=" + std::to_string(t["bytes_up"].as_int()) +
           " bytes_down=" + std::to_string(t["bytes_down"].as_int());
}

/// `n` bytes of every value 0..255, so nothing in the tunnel is taken for text.
std::string binary_bytes(std::size_t n, unsigned seed) {
    std::string out(n, '\0');
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<char>((i * 131 + seed) & 0xff);
    return out;
}

// ------------------------------------------------------------------ (a) the tunnel

TEST(Tunnel, UpgradeIsRelayedAndBytesGoBothWaysCountedInStatsAndMetrics) {
    TunnelOrigin origin(echo_script);
    Proxy proxy(origin.url(), Proxy::with_config(tunnel_config));

    TunnelClient client(proxy.port());
    ASSERT_TRUE(client.connected());
    ASSERT_TRUE(client.send(upgrade_request()));
    ASSERT_EQ(client.read_head(), 101u) << client.head();
    // client got: the 101 with the upgrade in it
    ASSERT_TRUE(client.field("Upgrade").has_value()) << client.head();
    EXPECT_TRUE(iequals(*client.field("Upgrade"), "websocket")) << client.head();
    ASSERT_TRUE(client.field("Connection").has_value()) << client.head();
    EXPECT_TRUE(has_token(*client.field("Connection"), "upgrade")) << client.head();
    EXPECT_EQ(client.field("Sec-WebSocket-Accept").value_or(""), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") << client.head();

    // bytes both ways: small pieces, then one larger than the proxy's 16 KiB buffer
    std::size_t up = 0;
    for (unsigned i = 0; i < 5; ++i) {
        const std::string piece = binary_bytes(100 + i * 37, i);
        ASSERT_TRUE(client.send(piece));
        EXPECT_EQ(client.read_bytes(piece.size()), piece) << "piece " << i;
        up += piece.size();
    }
    const std::string big = binary_bytes(200 * 1024, 77);
    ASSERT_TRUE(client.send(big));
    EXPECT_EQ(client.read_bytes(big.size(), seconds(10)), big);
    up += big.size();

    // origin saw: the upgrade asked for, with the WebSocket fields; then the bytes
    const auto records = origin.records();
    ASSERT_EQ(records.size(), 1u);
    ASSERT_EQ(records[0].heads.size(), 1u);
    const auto seen = parse_fields(records[0].heads[0]);
    EXPECT_TRUE(iequals(field_of(seen, "Upgrade").value_or(""), "websocket")) << records[0].heads[0];
    EXPECT_TRUE(has_token(field_of(seen, "Connection").value_or(""), "upgrade")) << records[0].heads[0];
    EXPECT_EQ(field_of(seen, "Sec-WebSocket-Key").value_or(""), "dGhlIHNhbXBsZSBub25jZQ==") << records[0].heads[0];
    EXPECT_EQ(field_of(seen, "Sec-WebSocket-Version").value_or(""), "13") << records[0].heads[0];
    EXPECT_EQ(records[0].tunneled.size(), up);

    // /stats while open: one open, one opened, the bytes both ways
    Json t = wait_tunnel_stats(proxy, [&](const Json& j) {
        return j["bytes_up"].as_int() == static_cast<long long>(up) &&
               j["bytes_down"].as_int() == static_cast<long long>(up);
    });
    EXPECT_EQ(t["open"].as_int(), 1) << stats_text(t);
    EXPECT_EQ(t["opened"].as_int(), 1) << stats_text(t);
    EXPECT_EQ(t["refused"].as_int(), 0) << stats_text(t);
    EXPECT_EQ(t["bytes_up"].as_int(), static_cast<long long>(up)) << stats_text(t);
    EXPECT_EQ(t["bytes_down"].as_int(), static_cast<long long>(up)) << stats_text(t);

    // /metrics says the same
    const Response m = http_request(proxy.admin_port(), "GET", "/metrics", {}, {}, seconds(3));
    ASSERT_EQ(m.status, 200u);
    EXPECT_NE(m.body.find("\ncacheproxy_tunnels_open 1\n"), std::string::npos) << m.body;
    EXPECT_NE(m.body.find("\ncacheproxy_tunnels_total 1\n"), std::string::npos);
    EXPECT_NE(m.body.find("cacheproxy_tunnel_bytes_total{direction=\"up\"} " + std::to_string(up) + "\n"),
              std::string::npos);
    EXPECT_NE(m.body.find("cacheproxy_tunnel_bytes_total{direction=\"down\"} " + std::to_string(up) + "\n"),
              std::string::npos);

    // closed by the client: the gauge goes back to 0, the counters stay
    client.shutdown_write();
    EXPECT_TRUE(client.read_until_eof(seconds(5)));
    t = wait_tunnel_stats(proxy, [](const Json& j) { return j["open"].as_int() == 0; });
    EXPECT_EQ(t["open"].as_int(), 0) << stats_text(t);
    EXPECT_EQ(t["opened"].as_int(), 1) << stats_text(t);
    EXPECT_EQ(t["idle_closed"].as_int(), 0) << stats_text(t);
}

TEST(Tunnel, BytesTheClientSendsRightAfterTheUpgradeRequestGoThroughTheTunnel) {
    TunnelOrigin origin(echo_script);
    Proxy proxy(origin.url(), Proxy::with_config(tunnel_config));

    TunnelClient client(proxy.port());
    ASSERT_TRUE(client.connected());
    // the first frame in the same write as the request: it waits in the proxy's
    // read buffer until the 101, then belongs to the tunnel
    const std::string early = binary_bytes(300, 9);
    ASSERT_TRUE(client.send(upgrade_request() + early));
    ASSERT_EQ(client.read_head(), 101u) << client.head();
    EXPECT_EQ(client.read_bytes(early.size()), early);
    const auto records = origin.records();
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0].tunneled, early);
    const Json t = wait_tunnel_stats(proxy, [&](const Json& j) { return j["bytes_down"].as_int() == 300; });
    EXPECT_EQ(t["bytes_up"].as_int(), 300) << stats_text(t);
}

// ------------------------------------------------------------------ (b) no switch, no tunnel

TEST(Tunnel, OriginThatDoesNotSwitchIsAnsweredAsHttpAndOpensNoTunnel) {
    TunnelOrigin origin([](TunnelOrigin::Conn& c) {
        while (c.running() && c.read_head(seconds(30))) {
            const std::string target = c.head().substr(4, c.head().find(' ', 4) - 4);
            const bool ok = target == "/ws/ok";
            const std::string answer = c.asks_websocket() ? (ok ? "no websocket here" : "not found") : "plain";
            if (!c.write(raw_response(c.asks_websocket() && !ok ? 404 : 200, answer, {{"Content-Type", "text/plain"}})))
                return;
        }
    });
    Proxy proxy(origin.url(), Proxy::with_config(tunnel_config));

    for (const auto& [target, status, body] : std::vector<std::tuple<std::string, unsigned, std::string>>{
             {"/ws/ok", 200, "no websocket here"}, {"/ws/missing", 404, "not found"}}) {
        RawClient client(proxy.port(), seconds(5));
        ASSERT_TRUE(client.connected()) << client.last_error();
        ASSERT_TRUE(client.send(upgrade_request(target)));
        Response r = client.read_response();
        // client got: the origin's answer as HTTP, nothing that says it switched
        EXPECT_EQ(r.status, status) << r.head_text();
        EXPECT_EQ(r.body, body);
        EXPECT_FALSE(r.has_header("Upgrade")) << r.head_text();
        for (const auto& v : r.header_values("Connection")) EXPECT_FALSE(has_token(v, "upgrade")) << r.head_text();
        // and the connection is still HTTP: the next request on it is answered
        Response next = client.request("GET", "/after");
        EXPECT_EQ(next.status, 200u) << next.head_text() << next.error;
        EXPECT_EQ(next.body, "plain");
    }
    // origin saw: the upgrades asked for
    std::size_t upgrades = 0;
    for (const auto& h : origin.heads()) {
        const auto f = parse_fields(h);
        if (field_of(f, "Upgrade")) ++upgrades;
    }
    EXPECT_EQ(upgrades, 2u);
    const Json t = tunnel_stats(proxy);
    ASSERT_FALSE(t.is_null());
    EXPECT_EQ(t["opened"].as_int(), 0) << stats_text(t);
    EXPECT_EQ(t["open"].as_int(), 0) << stats_text(t);
    EXPECT_EQ(t["bytes_up"].as_int(), 0) << stats_text(t);
    EXPECT_EQ(t["bytes_down"].as_int(), 0) << stats_text(t);
}

// ------------------------------------------------------------------ (c) a protocol not allowed

TEST(Tunnel, UpgradeToAProtocolNotAllowedGoesUpstreamWithoutTheUpgrade) {
    TunnelOrigin origin(echo_script);
    Proxy proxy(origin.url(), Proxy::with_config(tunnel_config));

    RawClient client(proxy.port(), seconds(5));
    ASSERT_TRUE(client.connected()) << client.last_error();
    ASSERT_TRUE(client.send("GET /h2 HTTP/1.1\r\n"
                            "Host: localhost\r\n"
                            "Connection: Upgrade, HTTP2-Settings\r\n"
                            "Upgrade: h2c\r\n"
                            "HTTP2-Settings: AAMAAABkAAQAAP__\r\n"
                            "\r\n"));
    Response r = client.read_response();
    // client got: the plain answer (the origin was never asked to switch)
    EXPECT_EQ(r.status, 200u) << r.head_text() << r.error;
    EXPECT_EQ(r.body, "plain");
    EXPECT_FALSE(r.has_header("Upgrade")) << r.head_text();
    // origin saw: neither Upgrade nor Connection (nor what Connection named)
    const auto heads = origin.heads();
    ASSERT_EQ(heads.size(), 1u);
    const auto f = parse_fields(heads[0]);
    EXPECT_FALSE(field_of(f, "Upgrade").has_value()) << heads[0];
    EXPECT_FALSE(field_of(f, "Connection").has_value()) << heads[0];
    EXPECT_FALSE(field_of(f, "HTTP2-Settings").has_value()) << heads[0];
    const Json t = tunnel_stats(proxy);
    EXPECT_EQ(t["opened"].as_int(), 0) << stats_text(t);

    // an allowed protocol in another spelling is still the allowed one
    TunnelClient ws(proxy.port());
    ASSERT_TRUE(ws.send(upgrade_request("/ws/echo", "WebSocket")));
    EXPECT_EQ(ws.read_head(), 101u) << ws.head();
}

// ------------------------------------------------------------------ (d) tunnel.max_open

TEST(Tunnel, UpgradeOverMaxOpenGets503AndCountsRefused) {
    TunnelOrigin origin(echo_script);
    Proxy proxy(origin.url(), Proxy::with_config([](ProxyConfig& c) {
                    tunnel_config(c);
                    c.set("tunnel.max_open", "1");
                }));

    TunnelClient first(proxy.port());
    ASSERT_TRUE(first.send(upgrade_request()));
    ASSERT_EQ(first.read_head(), 101u) << first.head();

    // a second upgrade while the first is open: 503, never sent upstream
    RawClient second(proxy.port(), seconds(5));
    ASSERT_TRUE(second.connected()) << second.last_error();
    ASSERT_TRUE(second.send(upgrade_request()));
    Response refused = second.read_response();
    EXPECT_EQ(refused.status, 503u) << refused.head_text() << refused.error;
    EXPECT_FALSE(refused.has_header("Upgrade")) << refused.head_text();
    EXPECT_EQ(origin.heads().size(), 1u);
    // a plain request meanwhile is unaffected
    Response plain = http_request(proxy.port(), "GET", "/plain", {}, {}, seconds(5));
    EXPECT_EQ(plain.status, 200u) << plain.head_text();

    // the first still works
    ASSERT_TRUE(first.send("ping"));
    EXPECT_EQ(first.read_bytes(4), "ping");

    Json t = tunnel_stats(proxy);
    EXPECT_EQ(t["refused"].as_int(), 1) << stats_text(t);
    EXPECT_EQ(t["opened"].as_int(), 1) << stats_text(t);
    EXPECT_EQ(t["open"].as_int(), 1) << stats_text(t);
    const Response m = http_request(proxy.admin_port(), "GET", "/metrics", {}, {}, seconds(3));
    EXPECT_NE(m.body.find("\ncacheproxy_tunnels_refused_total 1\n"), std::string::npos);

    // once the first closes, an upgrade is taken again
    first.shutdown_write();
    EXPECT_TRUE(first.read_until_eof(seconds(5)));
    t = wait_tunnel_stats(proxy, [](const Json& j) { return j["open"].as_int() == 0; });
    ASSERT_EQ(t["open"].as_int(), 0) << stats_text(t);
    TunnelClient third(proxy.port());
    ASSERT_TRUE(third.send(upgrade_request()));
    EXPECT_EQ(third.read_head(), 101u) << third.head();
}

// ------------------------------------------------------------------ (e) tunnel.idle_timeout

TEST(Tunnel, IdleTunnelIsClosedByTheProxyAndCountedIdleClosed) {
    TunnelOrigin origin(echo_script);
    Proxy proxy(origin.url(), Proxy::with_config([](ProxyConfig& c) {
                    tunnel_config(c);
                    c.set("tunnel.idle_timeout", "1s");
                }));

    TunnelClient client(proxy.port());
    ASSERT_TRUE(client.send(upgrade_request()));
    ASSERT_EQ(client.read_head(), 101u) << client.head();
    // traffic at 300 ms intervals for ~1.5 s keeps it open past the idle timeout
    const auto t0 = Clock::now();
    for (int i = 0; i < 5; ++i) {
        std::this_thread::sleep_for(milliseconds(300));
        ASSERT_TRUE(client.send("x"));
        ASSERT_EQ(client.read_bytes(1, seconds(2)), "x") << "closed while busy, after " << seconds_since(t0) << " s";
    }
    // then quiet: closed within about a second (bounded at 5 s)
    const auto quiet = Clock::now();
    EXPECT_TRUE(client.read_until_eof(seconds(5))) << "the idle tunnel was not closed";
    const double waited = seconds_since(quiet);
    EXPECT_GE(waited, 0.8);
    EXPECT_LT(waited, 4.0);
    // the origin's side was closed too
    EXPECT_TRUE(wait_until([&] { return origin.records().at(0).eof; }, seconds(5)));
    const Json t = wait_tunnel_stats(proxy, [](const Json& j) { return j["idle_closed"].as_int() == 1; });
    EXPECT_EQ(t["idle_closed"].as_int(), 1) << stats_text(t);
    EXPECT_EQ(t["open"].as_int(), 0) << stats_text(t);
    const Response m = http_request(proxy.admin_port(), "GET", "/metrics", {}, {}, seconds(3));
    EXPECT_NE(m.body.find("\ncacheproxy_tunnels_idle_closed_total 1\n"), std::string::npos);
}

// ------------------------------------------------------------------ (f) close propagates

TEST(Tunnel, ClientFinReachesTheOriginAndTheOtherWayStillCarriesBytes) {
    // origin: after the 101, reads until EOF, then answers what it got (half-close), then closes
    TunnelOrigin origin([](TunnelOrigin::Conn& c) {
        if (!c.read_head(seconds(10)) || !c.asks_websocket()) return;
        if (!c.write(kSwitch)) return;
        std::string got;
        for (int i = 0; i < 200 && c.running(); ++i) {
            const long n = c.read_some(got, milliseconds(50));
            if (n == 0) {
                c.write("after-eof:" + got);
                return;  // the origin then closes
            }
        }
    });
    Proxy proxy(origin.url(), Proxy::with_config(tunnel_config));

    TunnelClient client(proxy.port());
    ASSERT_TRUE(client.send(upgrade_request()));
    ASSERT_EQ(client.read_head(), 101u) << client.head();
    ASSERT_TRUE(client.send("last words"));
    client.shutdown_write();
    // origin saw: the bytes, then EOF
    EXPECT_TRUE(wait_until([&] { return origin.records().at(0).eof; }, seconds(5))) << "the client's FIN never arrived";
    EXPECT_EQ(origin.records().at(0).tunneled, "last words");
    // client got: the origin's answer sent after the FIN, then the origin's close
    std::string got;
    EXPECT_TRUE(client.read_until_eof(seconds(5), &got)) << "the origin's close never arrived";
    EXPECT_EQ(got, "after-eof:last words");
    const Json t = wait_tunnel_stats(proxy, [](const Json& j) { return j["open"].as_int() == 0; });
    EXPECT_EQ(t["open"].as_int(), 0) << stats_text(t);
}

TEST(Tunnel, OriginCloseReachesTheClientAndTheClientCanStillSend) {
    // origin: after the 101, sends a goodbye and its FIN, then reads what still comes until EOF
    TunnelOrigin origin([](TunnelOrigin::Conn& c) {
        if (!c.read_head(seconds(10)) || !c.asks_websocket()) return;
        if (!c.write(kSwitch + "bye")) return;
        c.shutdown_write();
        c.wait_eof(seconds(10));
    });
    Proxy proxy(origin.url(), Proxy::with_config(tunnel_config));

    TunnelClient client(proxy.port());
    ASSERT_TRUE(client.send(upgrade_request()));
    ASSERT_EQ(client.read_head(), 101u) << client.head();
    // client got: the bytes that came with the 101, then the origin's FIN
    std::string got;
    EXPECT_TRUE(client.read_until_eof(seconds(5), &got)) << "the origin's close never arrived";
    EXPECT_EQ(got, "bye");
    // the client's side is still open: what it sends reaches the origin, then its FIN
    ASSERT_TRUE(client.send("still here"));
    client.shutdown_write();
    EXPECT_TRUE(wait_until([&] { return origin.records().at(0).eof; }, seconds(5)));
    EXPECT_EQ(origin.records().at(0).tunneled, "still here");
    const Json t = wait_tunnel_stats(proxy, [](const Json& j) { return j["open"].as_int() == 0; });
    EXPECT_EQ(t["open"].as_int(), 0) << stats_text(t);
    EXPECT_EQ(t["bytes_down"].as_int(), 3) << stats_text(t);
    EXPECT_EQ(t["bytes_up"].as_int(), 10) << stats_text(t);
}

TEST(Tunnel, ClientResetClosesTheOriginSide) {
    TunnelOrigin origin(echo_script);
    Proxy proxy(origin.url(), Proxy::with_config(tunnel_config));

    TunnelClient client(proxy.port());
    ASSERT_TRUE(client.send(upgrade_request()));
    ASSERT_EQ(client.read_head(), 101u) << client.head();
    ASSERT_TRUE(client.send("abc"));
    ASSERT_EQ(client.read_bytes(3), "abc");
    client.reset();
    EXPECT_TRUE(wait_until([&] { return origin.records().at(0).eof; }, seconds(5))) << "the origin side stayed open";
    const Json t = wait_tunnel_stats(proxy, [](const Json& j) { return j["open"].as_int() == 0; });
    EXPECT_EQ(t["open"].as_int(), 0) << stats_text(t);
}

TEST(Tunnel, AnOpenTunnelDoesNotHoldTheDrainPastDrainTimeout) {
    TunnelOrigin origin(echo_script);
    Proxy proxy(origin.url(), Proxy::with_config([](ProxyConfig& c) {
                    tunnel_config(c);
                    c.set("limits.drain_timeout", "1s");
                }));

    TunnelClient client(proxy.port());
    ASSERT_TRUE(client.send(upgrade_request()));
    ASSERT_EQ(client.read_head(), 101u) << client.head();
    proxy.terminate();
    // still a tunnel while the drain runs
    ASSERT_TRUE(client.send("during drain"));
    EXPECT_EQ(client.read_bytes(12), "during drain");
    // the process exits cleanly at the drain timeout, and the client sees the close
    const auto code = proxy.wait_exit(seconds(6));
    ASSERT_TRUE(code.has_value()) << "still running 6 s after SIGTERM with drain_timeout 1s";
    EXPECT_EQ(*code, 0);
    EXPECT_TRUE(client.read_until_eof(seconds(3)));
    EXPECT_TRUE(wait_until([&] { return origin.records().at(0).eof; }, seconds(3)));
}

// ------------------------------------------------------------------ (g) a 101 not asked for

TEST(Tunnel, A101ToARequestThatDidNotAskForAnUpgradeIs502) {
    TunnelOrigin origin([](TunnelOrigin::Conn& c) {
        if (!c.read_head(seconds(10))) return;
        c.write(kSwitch + "stray bytes");
        c.wait_eof(seconds(5));
    });
    Proxy proxy(origin.url(), Proxy::with_config(tunnel_config));

    // a plain GET
    Response plain = http_request(proxy.port(), "GET", "/no-upgrade", {}, {}, seconds(5));
    EXPECT_EQ(plain.status, 502u) << plain.head_text() << plain.error;
    EXPECT_FALSE(plain.has_header("Upgrade")) << plain.head_text();
    // an upgrade the operator does not allow (forwarded without it)
    RawClient h2c(proxy.port(), seconds(5));
    ASSERT_TRUE(h2c.send(upgrade_request("/h2", "h2c", "Upgrade, HTTP2-Settings")));
    Response r = h2c.read_response();
    EXPECT_EQ(r.status, 502u) << r.head_text() << r.error;
    const Json t = tunnel_stats(proxy);
    EXPECT_EQ(t["opened"].as_int(), 0) << stats_text(t);
}

TEST(Tunnel, A101WithoutAnUpgradeFieldIs502) {
    TunnelOrigin origin([](TunnelOrigin::Conn& c) {
        if (!c.read_head(seconds(10))) return;
        c.write("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n");
        c.wait_eof(seconds(5));
    });
    Proxy proxy(origin.url(), Proxy::with_config(tunnel_config));

    RawClient client(proxy.port(), seconds(5));
    ASSERT_TRUE(client.send(upgrade_request()));
    Response r = client.read_response();
    EXPECT_EQ(r.status, 502u) << r.head_text() << r.error;
    const Json t = tunnel_stats(proxy);
    EXPECT_EQ(t["opened"].as_int(), 0) << stats_text(t);
}

}  // namespace
}  // namespace cacheproxy::e2e
