#include "support/fake_upstream.hpp"

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace cacheproxy::e2e {

using Clock = std::chrono::steady_clock;

FakeUpstream::FakeUpstream(std::vector<Step> script, std::chrono::milliseconds hold_open, bool reset)
    : script_(std::move(script)), hold_open_(hold_open), reset_(reset) {
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
        int e = errno;
        ::close(listen_fd_);
        throw std::runtime_error(std::string("FakeUpstream bind/listen: ") + std::strerror(e));
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { run(); });
}

FakeUpstream::~FakeUpstream() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (listen_fd_ >= 0) ::close(listen_fd_);
}

std::vector<std::string> FakeUpstream::requests() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
}

std::size_t FakeUpstream::request_count() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_.size();
}

void FakeUpstream::run() {
    while (!stop_) {
        pollfd p{listen_fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) continue;
        ++connections_;
        workers_.emplace_back([this, fd] { serve(fd); });
    }
    for (auto& w : workers_) w.join();
}

namespace {

/// Sleeps up to `d`, waking early when `stop` is set.
void pause(std::chrono::milliseconds d, const std::atomic<bool>& stop) {
    const auto until = Clock::now() + d;
    while (!stop && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

bool send_all(int fd, const std::string& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        done += static_cast<std::size_t>(n);
    }
    return true;
}

}  // namespace

void FakeUpstream::serve(int fd) {
    // Requests on this connection, one after the other, until it closes.
    std::string in;
    for (;;) {
        // Read one request head (the scenarios that use this send no body).
        std::size_t end;
        while ((end = in.find("\r\n\r\n")) == std::string::npos) {
            if (stop_) {
                ::close(fd);
                return;
            }
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            char buf[4096];
            ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n <= 0) {
                ::close(fd);
                return;
            }
            in.append(buf, static_cast<std::size_t>(n));
        }
        std::string head = in.substr(0, end + 4);
        in.erase(0, end + 4);

        const bool health = head.rfind("GET /health ", 0) == 0;
        if (health) {
            if (!send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n"
                              "{\"status\":\"ok\"}")) {
                ::close(fd);
                return;
            }
            continue;  // keep-alive: the checker may send the next one here
        }
        {
            std::lock_guard<std::mutex> lock(mutex_);
            requests_.push_back(head);
        }
        for (const auto& step : script_) {
            pause(step.pause_before, stop_);
            if (stop_ || !send_all(fd, step.bytes)) break;
        }
        if (keep_alive_ && !stop_) continue;
        pause(hold_open_, stop_);
        if (reset_) {
            linger l{1, 0};
            ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        }
        ::close(fd);
        return;
    }
}

}  // namespace cacheproxy::e2e
