#include "support/resp_client.hpp"

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace cacheproxy::e2e {

namespace {

using Clock = std::chrono::steady_clock;

/// Closes the descriptor on every way out.
struct Fd {
    int fd = -1;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

/// Waits for `events` on fd until `deadline`; false on timeout or error.
bool wait_for(int fd, short events, Clock::time_point deadline) {
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) return false;
        pollfd p{fd, events, 0};
        const int n = ::poll(&p, 1, static_cast<int>(left));
        if (n > 0) return true;
        if (n < 0 && errno != EINTR) return false;
    }
}

bool fail(std::string* error, const std::string& why) {
    if (error) *error = why;
    return false;
}

bool connect_to(int fd, std::uint16_t port, Clock::time_point deadline, std::string* error) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return true;
    if (errno != EINPROGRESS) return fail(error, std::string("connect: ") + std::strerror(errno));
    if (!wait_for(fd, POLLOUT, deadline)) return fail(error, "connect: timed out");
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    return err == 0 || fail(error, std::string("connect: ") + std::strerror(err));
}

bool send_all(int fd, const std::string& bytes, Clock::time_point deadline, std::string* error) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
        const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<std::size_t>(n);
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!wait_for(fd, POLLOUT, deadline)) return fail(error, "send: timed out");
        } else {
            return fail(error, std::string("send: ") + std::strerror(errno));
        }
    }
    return true;
}

}  // namespace

std::optional<redis::Reply> try_resp_command(std::uint16_t port, const std::vector<std::string>& argv,
                                             std::chrono::milliseconds timeout, std::string* error) {
    const auto deadline = Clock::now() + timeout;
    Fd sock{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)};
    if (sock.fd < 0) {
        fail(error, std::string("socket: ") + std::strerror(errno));
        return std::nullopt;
    }
    if (!connect_to(sock.fd, port, deadline, error)) return std::nullopt;
    if (!send_all(sock.fd, redis::encode(std::span<const std::string>(argv)), deadline, error)) return std::nullopt;
    redis::Parser parser;
    char buf[16384];
    for (;;) {
        boost::system::error_code ec;
        if (auto reply = parser.next(ec)) return reply;
        if (ec) {
            fail(error, "protocol error");
            return std::nullopt;
        }
        const ssize_t n = ::recv(sock.fd, buf, sizeof buf, 0);
        if (n > 0) {
            parser.feed(std::string_view(buf, static_cast<std::size_t>(n)));
        } else if (n == 0) {
            fail(error, "closed before a reply");
            return std::nullopt;
        } else if (errno == EAGAIN || errno == EINTR) {
            if (!wait_for(sock.fd, POLLIN, deadline)) {
                fail(error, "no reply in time");
                return std::nullopt;
            }
        } else {
            fail(error, std::string("recv: ") + std::strerror(errno));
            return std::nullopt;
        }
    }
}

redis::Reply resp_command(std::uint16_t port, const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
    std::string error;
    auto reply = try_resp_command(port, argv, timeout, &error);
    if (!reply) {
        throw std::runtime_error("redis 127.0.0.1:" + std::to_string(port) + " " + (argv.empty() ? "" : argv[0]) +
                                 ": " + error);
    }
    return std::move(*reply);
}

}  // namespace cacheproxy::e2e
