#include "support/scripted_origin.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

namespace cacheproxy::e2e {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

/// The longest request head the origin reads; longer ones close the connection.
constexpr std::size_t kMaxHead = 1024 * 1024;
/// The longest a request body (or the rest of a head) may take to arrive.
constexpr milliseconds kBodyWait{30000};

std::string trim(std::string_view s) {
    std::size_t b = 0, e = s.size();
    while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
    return std::string(s.substr(b, e - b));
}

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

bool send_all(int fd, std::string_view bytes, const std::atomic<bool>& stop) {
    std::size_t done = 0;
    const auto deadline = Clock::now() + kBodyWait;
    while (done < bytes.size()) {
        if (stop || Clock::now() > deadline) return false;
        pollfd p{fd, POLLOUT, 0};
        int r = ::poll(&p, 1, 50);
        if (r < 0 && errno != EINTR) return false;
        if (r <= 0) continue;
        ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
            return false;
        }
        done += static_cast<std::size_t>(n);
    }
    return true;
}

/// Parses "METHOD SP TARGET SP VERSION CRLF fields CRLF" into `r` (lenient:
/// the origin records what came, it does not judge it).
void parse_head(const std::string& head, ScriptedOrigin::Request& r) {
    r.head = head;
    std::size_t eol = head.find("\r\n");
    const std::string line = head.substr(0, eol);
    const std::size_t sp1 = line.find(' ');
    const std::size_t sp2 = line.rfind(' ');
    if (sp1 != std::string::npos && sp2 != std::string::npos && sp2 > sp1) {
        r.method = line.substr(0, sp1);
        r.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
        r.version = line.substr(sp2 + 1);
    } else {
        r.method = line;
    }
    std::size_t pos = eol == std::string::npos ? head.size() : eol + 2;
    while (pos < head.size()) {
        std::size_t end = head.find("\r\n", pos);
        if (end == std::string::npos || end == pos) break;
        const std::string field = head.substr(pos, end - pos);
        const std::size_t colon = field.find(':');
        if (colon == std::string::npos)
            r.headers.emplace_back(field, "");
        else
            r.headers.emplace_back(field.substr(0, colon), trim(std::string_view(field).substr(colon + 1)));
        pos = end + 2;
    }
}

}  // namespace

// ------------------------------------------------------------------ Request

std::string ScriptedOrigin::Request::path() const { return target.substr(0, target.find('?')); }

std::optional<std::string> ScriptedOrigin::Request::header(std::string_view name) const {
    for (const auto& [k, v] : headers)
        if (iequals(k, name)) return v;
    return std::nullopt;
}

std::vector<std::string> ScriptedOrigin::Request::header_values(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : headers)
        if (iequals(k, name)) out.push_back(v);
    return out;
}

std::string ScriptedOrigin::Request::headers_text() const {
    std::string out = "  " + method + " " + target + " " + version + "\n";
    for (const auto& [k, v] : headers) out += "  " + k + ": " + v + "\n";
    return out;
}

// ------------------------------------------------------------------ Reply

bool ScriptedOrigin::Reply::write(std::string_view bytes) { return send_all(fd_, bytes, origin_.stop_); }

void ScriptedOrigin::Reply::pause(milliseconds d) {
    const auto until = Clock::now() + d;
    while (!origin_.stop_ && Clock::now() < until) std::this_thread::sleep_for(milliseconds(5));
}

bool ScriptedOrigin::Reply::hang(milliseconds max) {
    const auto until = Clock::now() + max;
    while (!origin_.stop_ && Clock::now() < until) {
        const auto left = std::chrono::duration_cast<milliseconds>(until - Clock::now());
        long n = origin_.read_more(conn_, fd_, in_, std::min(left, milliseconds(50)));
        if (n == 0) return true;   // EOF
        if (n < 0 && !origin_.stop_) {
            // -1 is also "nothing within the slice": tell it from a real error
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLERR | POLLHUP))) return true;
        }
    }
    return false;
}

void ScriptedOrigin::Reply::done() {
    if (done_) return;
    done_ = true;
    --origin_.in_progress_;
}

bool ScriptedOrigin::Reply::running() const { return !origin_.stop_; }

// ------------------------------------------------------------------ ScriptedOrigin

ScriptedOrigin::ScriptedOrigin(Handler handler) : handler_(std::move(handler)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 128) != 0 || ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        int e = errno;
        ::close(listen_fd_);
        throw std::runtime_error(std::string("ScriptedOrigin bind/listen: ") + std::strerror(e));
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { run(); });
}

ScriptedOrigin::~ScriptedOrigin() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (listen_fd_ >= 0) ::close(listen_fd_);
}

std::vector<ScriptedOrigin::Request> ScriptedOrigin::requests() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
}

std::size_t ScriptedOrigin::request_count() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_.size();
}

std::size_t ScriptedOrigin::count(const std::string& path) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = per_path_.find(path);
    return it == per_path_.end() ? 0 : it->second;
}

std::size_t ScriptedOrigin::connection_count() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return conns_.size();
}

std::vector<std::string> ScriptedOrigin::connection_bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> out;
    for (const auto& c : conns_) out.push_back(c.received);
    return out;
}

std::size_t ScriptedOrigin::bytes_received() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::size_t n = 0;
    for (const auto& c : conns_) n += c.received.size();
    return n;
}

bool ScriptedOrigin::wait_requests(std::size_t n, milliseconds timeout) const {
    const auto until = Clock::now() + timeout;
    for (;;) {
        if (request_count() >= n) return true;
        if (Clock::now() >= until) return false;
        std::this_thread::sleep_for(milliseconds(10));
    }
}

void ScriptedOrigin::run() {
    while (!stop_) {
        pollfd p{listen_fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) continue;
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        std::size_t index;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            index = conns_.size();
            conns_.push_back(Conn{fd, {}});
        }
        workers_.emplace_back([this, index, fd] { serve(index, fd); });
    }
    for (auto& w : workers_) w.join();
}

long ScriptedOrigin::read_more(std::size_t conn, int fd, std::string& in, milliseconds max) {
    const auto until = Clock::now() + max;
    for (;;) {
        if (stop_) return -1;
        const auto left = std::chrono::duration_cast<milliseconds>(until - Clock::now()).count();
        if (left < 0) return -1;
        pollfd p{fd, POLLIN, 0};
        int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 50)));
        if (r < 0 && errno != EINTR) return -1;
        if (r <= 0) continue;
        char buf[16384];
        ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0) return 0;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
            return 0;  // reset: as good as closed
        }
        in.append(buf, static_cast<std::size_t>(n));
        std::lock_guard<std::mutex> lock(mutex_);
        conns_[conn].received.append(buf, static_cast<std::size_t>(n));
        return n;
    }
}

void ScriptedOrigin::serve(std::size_t conn, int fd) {
    std::string in;
    std::size_t index_on_conn = 0;
    bool reset = false;
    // Reads until `in` holds `n` bytes; false if the peer went away or the wait ran out.
    auto fill_to = [&](std::size_t n) {
        const auto until = Clock::now() + kBodyWait;
        while (in.size() < n) {
            if (stop_ || Clock::now() >= until) return false;
            if (read_more(conn, fd, in, milliseconds(200)) == 0) return false;
        }
        return true;
    };
    // Reads until `in` holds a CRLF at or after `from`; its position, or npos.
    auto line_end = [&](std::size_t from) {
        const auto until = Clock::now() + kBodyWait;
        for (;;) {
            std::size_t e = in.find("\r\n", from);
            if (e != std::string::npos) return e;
            if (stop_ || Clock::now() >= until || in.size() > kMaxHead) return std::string::npos;
            if (read_more(conn, fd, in, milliseconds(200)) == 0) return std::string::npos;
        }
    };

    for (;;) {
        // 1. A request head (idle waits are unbounded but wake on stop).
        std::size_t end;
        bool gone = false;
        while ((end = in.find("\r\n\r\n")) == std::string::npos) {
            if (stop_ || in.size() > kMaxHead) {
                gone = true;
                break;
            }
            if (read_more(conn, fd, in, milliseconds(200)) == 0) {
                gone = true;
                break;
            }
        }
        if (gone) break;
        // Stray CRLFs before a request line are skipped (RFC 9112 2.2).
        std::size_t start = 0;
        while (in.compare(start, 2, "\r\n") == 0 && start + 2 <= end) start += 2;
        Request req;
        req.connection = conn;
        req.index = index_on_conn++;
        parse_head(in.substr(start, end + 4 - start), req);
        in.erase(0, end + 4);

        if (req.method == "GET" && req.target == "/health") {
            if (!send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n"
                              "{\"status\":\"ok\"}",
                          stop_))
                break;
            continue;
        }

        // 2. Recorded and counted as in progress from here.
        const std::size_t now = ++in_progress_;
        std::size_t prev = max_in_progress_.load();
        while (now > prev && !max_in_progress_.compare_exchange_weak(prev, now)) {
        }
        std::size_t slot;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            slot = requests_.size();
            requests_.push_back(req);
            ++per_path_[req.path()];
        }

        // 3. The body: chunked, or Content-Length (the first one), or none.
        bool body_ok = true;
        std::string te = lower(req.header("Transfer-Encoding").value_or(""));
        if (te.find("chunked") != std::string::npos) {
            req.chunked = true;
            for (;;) {
                std::size_t e = line_end(0);
                if (e == std::string::npos) {
                    body_ok = false;
                    break;
                }
                std::string size_line = in.substr(0, e);
                in.erase(0, e + 2);
                std::size_t size = 0;
                const std::string hex = trim(size_line.substr(0, size_line.find(';')));
                auto [p, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), size, 16);
                if (ec != std::errc{} || hex.empty()) {
                    body_ok = false;
                    break;
                }
                if (size == 0) {
                    // trailer lines up to the empty one
                    for (;;) {
                        std::size_t t = line_end(0);
                        if (t == std::string::npos) {
                            body_ok = false;
                            break;
                        }
                        in.erase(0, t + 2);
                        if (t == 0) break;
                    }
                    break;
                }
                if (!fill_to(size + 2)) {
                    body_ok = false;
                    break;
                }
                req.body.append(in, 0, size);
                in.erase(0, size + 2);
            }
        } else if (auto cl = req.header("Content-Length")) {
            std::size_t n = 0;
            const std::string v = trim(*cl);
            std::from_chars(v.data(), v.data() + v.size(), n);
            if (!fill_to(n)) {
                req.body = in;
                in.clear();
                body_ok = false;
            } else {
                req.body = in.substr(0, n);
                in.erase(0, n);
            }
        }
        req.complete = body_ok;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            requests_[slot].body = req.body;
            requests_[slot].chunked = req.chunked;
            requests_[slot].complete = req.complete;
        }
        if (!body_ok) {
            --in_progress_;
            break;
        }

        // 4. The script.
        Reply reply(*this, fd, in, conn);
        if (handler_) handler_(req, reply);
        reply.done();
        if (reply.close_) {
            reset = reply.reset_;
            break;
        }
        if (stop_) break;
    }
    if (reset) {
        linger l{1, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    } else {
        ::shutdown(fd, SHUT_WR);
    }
    ::close(fd);
}

// ------------------------------------------------------------------ builders

std::string raw_response(unsigned status, std::string_view body, const Headers& fields, bool with_length) {
    const char* reason = "Status";
    switch (status) {
        case 200: reason = "OK"; break;
        case 204: reason = "No Content"; break;
        case 304: reason = "Not Modified"; break;
        case 401: reason = "Unauthorized"; break;
        case 404: reason = "Not Found"; break;
        case 500: reason = "Internal Server Error"; break;
        case 502: reason = "Bad Gateway"; break;
        case 503: reason = "Service Unavailable"; break;
        default: break;
    }
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n";
    for (const auto& [k, v] : fields) out += k + ": " + v + "\r\n";
    if (with_length) out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    out += "\r\n";
    out.append(body);
    return out;
}

namespace {

/// Deflates pieces from `next` (which returns "" when done) into one gzip member.
template <class Next>
std::string gzip_pieces(int level, Next next) {
    z_stream z{};
    if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        throw std::runtime_error("deflateInit2 failed");
    std::string out;
    char buf[65536];
    for (;;) {
        std::string_view piece = next();
        const bool last = piece.empty();
        z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(piece.data()));
        z.avail_in = static_cast<uInt>(piece.size());
        int rc;
        do {
            z.next_out = reinterpret_cast<Bytef*>(buf);
            z.avail_out = sizeof buf;
            rc = deflate(&z, last ? Z_FINISH : Z_NO_FLUSH);
            out.append(buf, sizeof buf - z.avail_out);
        } while (z.avail_out == 0 || (last && rc != Z_STREAM_END));
        if (last) break;
    }
    deflateEnd(&z);
    return out;
}

}  // namespace

std::string gzip_of(std::string_view data, int level) {
    bool given = false;
    return gzip_pieces(level, [&]() -> std::string_view {
        if (given || data.empty()) return {};
        given = true;
        return data;
    });
}

std::string gzip_of_zeros(std::size_t total, int level) {
    const std::string mib(1024 * 1024, '\0');
    std::size_t left = total;
    return gzip_pieces(level, [&]() -> std::string_view {
        const std::size_t n = std::min(left, mib.size());
        left -= n;
        return std::string_view(mib.data(), n);
    });
}

std::string own_body(std::string_view method, std::string_view target) {
    return "own:" + std::string(method) + " " + std::string(target);
}

ScriptedOrigin::Handler own_answers() {
    return [](const ScriptedOrigin::Request& req, ScriptedOrigin::Reply& reply) {
        const std::string body = own_body(req.method, req.target);
        std::string bytes = raw_response(200, body, {{"Content-Type", "text/plain"}});
        if (req.method == "HEAD") bytes.resize(bytes.size() - body.size());  // the head alone
        reply.write(bytes);
    };
}

std::string dash_lower(std::string_view name) {
    std::string out(name);
    for (char& c : out) {
        if (c == '_') c = '-';
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

}  // namespace cacheproxy::e2e
