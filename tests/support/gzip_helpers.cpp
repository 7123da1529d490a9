#include "support/gzip_helpers.hpp"

#include "support/json_lite.hpp"

#include "encoding/gzip.hpp"

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace cacheproxy::e2e::gz {

using Clock = std::chrono::steady_clock;

// ------------------------------------------------------------------ rules and targets

std::string positions_and_balance_rules() {
    return rules_yaml(per_user_route("positions", "/api/trading/positions") +
                      per_user_route("balance", "/api/trading/balance"));
}

std::string positions_target() { return "/api/trading/positions?exchange=bybit&account_type=demo"; }

std::string seed_positions(Simulator& sim, int user, int count) {
    const std::string body = R"({"user":"Bearer user)" + std::to_string(user) +
                             R"(","exchange":"bybit","account_type":"demo","count":)" + std::to_string(count) + "}";
    Response r = sim.direct("POST", "/__sim/positions", {{"Content-Type", "application/json"}}, body);
    if (r.status != 200) return "POST /__sim/positions failed: " + r.head_text() + "\n" + r.body;
    return "";
}

// ------------------------------------------------------------------ requests

Headers accept_encoding(const std::string& value) { return {{"Accept-Encoding", value}}; }

Headers bearer_accepting(int user, const std::string& value) { return bearer(user, accept_encoding(value)); }

// ------------------------------------------------------------------ bodies

std::optional<std::string> gunzip(std::string_view gz, std::size_t max_out) {
    std::string out;
    if (!encoding::gzip_decompress(gz, out, max_out)) return std::nullopt;
    return out;
}

long long positions_count(const std::string& body) {
    auto j = parse_json(body);
    if (!j || (*j)["positions"].kind != Json::Kind::array) return -1;
    return static_cast<long long>((*j)["positions"].size());
}

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// ------------------------------------------------------------------ /proc

long long proc_status_kb(pid_t pid, const std::string& field) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    const std::string prefix = field + ":";
    while (std::getline(in, line)) {
        if (line.rfind(prefix, 0) != 0) continue;
        long long v = -1;
        std::istringstream(line.substr(prefix.size())) >> v;
        return v;
    }
    return -1;
}

bool reset_peak_rss(pid_t pid) {
    std::ofstream out("/proc/" + std::to_string(pid) + "/clear_refs");
    if (!out) return false;
    out << "5";
    out.flush();
    return static_cast<bool>(out);
}

// ------------------------------------------------------------------ streaming client

std::optional<std::string> StreamedBody::header(std::string_view name) const {
    for (const auto& [k, v] : headers)
        if (iequals(k, name)) return v;
    return std::nullopt;
}

std::string StreamedBody::head_text() const {
    std::ostringstream out;
    out << "status " << status << "\n";
    for (const auto& [k, v] : headers) out << k << ": " << v << "\n";
    out << "(wire body " << wire_body_bytes << " bytes, decoded " << decoded_bytes << ", chunked "
        << (chunked ? "yes" : "no") << ", complete " << (complete ? "yes" : "no") << ")";
    if (!error.empty()) out << " error: " << error;
    return out.str();
}

namespace {

/// A connected, blocking TCP socket to 127.0.0.1:port, or -1 (and *error).
int connect_loopback(std::uint16_t port, std::string* error) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *error = std::string("socket: ") + std::strerror(errno);
        return -1;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        *error = std::string("connect: ") + std::strerror(errno);
        ::close(fd);
        return -1;
    }
    return fd;
}

}  // namespace

StreamedBody stream_sim_bytes(std::uint16_t port, const std::string& target, const Headers& headers,
                              std::chrono::milliseconds read_timeout, std::chrono::milliseconds total_timeout,
                              const std::function<void(std::uint64_t)>& on_progress) {
    StreamedBody out;
    int fd = connect_loopback(port, &out.error);
    if (fd < 0) return out;
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};

    const std::string request = build_request("GET", target, headers);
    for (std::size_t done = 0; done < request.size();) {
        ssize_t n = ::send(fd, request.data() + done, request.size() - done, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            out.error = std::string("send: ") + std::strerror(errno);
            return out;
        }
        done += static_cast<std::size_t>(n);
    }

    const auto total_deadline = Clock::now() + total_timeout;
    std::string buf;  // received, not yet consumed
    bool eof = false;
    // Reads more into buf; false (and out.error) on timeout or error. Sets eof.
    auto read_more = [&]() -> bool {
        const auto deadline = std::min(Clock::now() + read_timeout, total_deadline);
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            if (left.count() <= 0) {
                out.error = Clock::now() >= total_deadline ? "total timeout" : "read timeout";
                return false;
            }
            pollfd p{fd, POLLIN, 0};
            int pr = ::poll(&p, 1, static_cast<int>(left.count()));
            if (pr < 0 && errno == EINTR) continue;
            if (pr <= 0) continue;  // re-checks the deadline
            char tmp[64 * 1024];
            ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
            if (n < 0) {
                if (errno == EINTR || errno == EAGAIN) continue;
                out.error = std::string("recv: ") + std::strerror(errno);
                return false;
            }
            if (n == 0) {
                eof = true;
                return true;
            }
            buf.append(tmp, static_cast<std::size_t>(n));
            return true;
        }
    };

    // --- head ---
    std::size_t head_end;
    while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
        if (buf.size() > 1024 * 1024) {
            out.error = "header section too large";
            return out;
        }
        if (eof) {
            out.error = "closed before the end of the head";
            return out;
        }
        if (!read_more()) return out;
    }
    {
        std::istringstream head(buf.substr(0, head_end));
        std::string line;
        std::getline(head, line);
        if (line.rfind("HTTP/1.", 0) != 0 || line.size() < 12) {
            out.error = "bad status line: " + line;
            return out;
        }
        out.status = static_cast<unsigned>(std::atoi(line.c_str() + 9));
        while (std::getline(head, line)) {
            if (!line.empty() && line.back() == '\r') line.pop_back();
            const auto colon = line.find(':');
            if (colon == std::string::npos) continue;
            out.headers.emplace_back(line.substr(0, colon), trim_ows(std::string_view(line).substr(colon + 1)));
        }
        buf.erase(0, head_end + 4);
    }
    const auto te = out.header("Transfer-Encoding");
    out.chunked = te && lower(*te).find("chunked") != std::string::npos;
    const auto ce = out.header("Content-Encoding");
    out.gzip = ce && lower(trim_ows(*ce)) == "gzip";
    std::optional<std::uint64_t> length;
    if (const auto cl = out.header("Content-Length"); cl && !out.chunked) length = std::stoull(*cl);

    // --- body: framing -> gunzip -> pattern check, piece by piece ---
    encoding::GunzipStream inflater;
    std::string decoded;
    bool gzip_failed = false;
    auto consume = [&](std::string_view piece) {
        out.wire_body_bytes += piece.size();
        std::string_view plain = piece;
        if (out.gzip) {
            decoded.clear();
            if (gzip_failed || !inflater.write(piece, decoded, 64u * 1024 * 1024)) {
                if (!gzip_failed) out.error = "corrupt gzip at wire byte " + std::to_string(out.wire_body_bytes);
                gzip_failed = true;
                return;
            }
            plain = decoded;
        }
        if (out.mismatch_at == UINT64_MAX) {
            const std::size_t i = first_sim_bytes_mismatch(std::string(plain), out.decoded_bytes);
            if (i != std::string::npos) out.mismatch_at = out.decoded_bytes + i;
        }
        out.decoded_bytes += plain.size();
    };
    auto finish = [&]() {
        if (gzip_failed) return;
        if (out.gzip && !inflater.finish()) {
            out.error = "gzip stream not finished (truncated, no trailer)";
            return;
        }
        out.complete = true;
    };

    if (out.chunked) {
        enum class St { size, data, data_crlf, trailer } st = St::size;
        std::uint64_t remaining = 0;
        for (;;) {
            bool progressed = true;
            while (progressed) {
                progressed = false;
                if (st == St::size) {
                    const auto eol = buf.find("\r\n");
                    if (eol == std::string::npos) break;
                    std::string line = buf.substr(0, eol);
                    line = line.substr(0, line.find(';'));
                    std::uint64_t n = 0;
                    const auto t = trim_ows(line);
                    auto r = std::from_chars(t.data(), t.data() + t.size(), n, 16);
                    if (r.ec != std::errc{} || t.empty()) {
                        out.error = "bad chunk size line: " + line.substr(0, 40);
                        return out;
                    }
                    buf.erase(0, eol + 2);
                    remaining = n;
                    st = n == 0 ? St::trailer : St::data;
                    progressed = true;
                } else if (st == St::data) {
                    if (buf.empty()) break;
                    const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, buf.size()));
                    consume(std::string_view(buf).substr(0, take));
                    buf.erase(0, take);
                    remaining -= take;
                    if (remaining == 0) st = St::data_crlf;
                    progressed = true;
                } else if (st == St::data_crlf) {
                    if (buf.size() < 2) break;
                    if (buf.compare(0, 2, "\r\n") != 0) {
                        out.error = "chunk data not followed by CRLF";
                        return out;
                    }
                    buf.erase(0, 2);
                    st = St::size;
                    progressed = true;
                } else {  // trailer section: lines until an empty one
                    const auto eol = buf.find("\r\n");
                    if (eol == std::string::npos) break;
                    buf.erase(0, eol + 2);
                    if (eol == 0) {
                        finish();
                        return out;
                    }
                    progressed = true;
                }
            }
            if (eof) {
                out.error = "closed in the middle of the chunked body";
                return out;
            }
            if (!read_more()) return out;
            if (on_progress) on_progress(out.decoded_bytes);
        }
    }

    if (length) {
        for (;;) {
            const std::uint64_t left = *length - out.wire_body_bytes;
            const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf.size()));
            if (take) consume(std::string_view(buf).substr(0, take));
            buf.erase(0, take);
            if (out.wire_body_bytes == *length) {
                finish();
                return out;
            }
            if (eof) {
                out.error = "closed after " + std::to_string(out.wire_body_bytes) + " of " +
                            std::to_string(*length) + " body bytes";
                return out;
            }
            if (!read_more()) return out;
            if (on_progress) on_progress(out.decoded_bytes);
        }
    }

    // Close-delimited.
    for (;;) {
        if (!buf.empty()) consume(buf);
        buf.clear();
        if (eof) {
            finish();
            return out;
        }
        if (!read_more()) return out;
        if (on_progress) on_progress(out.decoded_bytes);
    }
}

}  // namespace cacheproxy::e2e::gz
