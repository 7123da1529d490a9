#include "app/socket_activation.hpp"

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace cacheproxy::app {

namespace {

template <typename T>
std::optional<T> parse_number(const char* text) {
    if (!text || !*text) return std::nullopt;
    const std::string_view s(text);
    T value{};
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
    return value;
}

}  // namespace

std::optional<int> activated_fd(const char* listen_pid, const char* listen_fds, pid_t self) {
    const auto pid = parse_number<long>(listen_pid);
    const auto fds = parse_number<int>(listen_fds);
    if (!pid || !fds || *pid != static_cast<long>(self) || *fds < 1) return std::nullopt;
    return kListenFdsStart;
}

std::optional<int> take_activated_socket(std::string& err) {
    const auto fd = activated_fd(std::getenv("LISTEN_PID"), std::getenv("LISTEN_FDS"), ::getpid());
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
    if (!fd) return std::nullopt;
    int type = 0, listening = 0;
    socklen_t len = sizeof type;
    if (::getsockopt(*fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) {
        err = "LISTEN_FDS: fd 3 is not a stream socket";
        return std::nullopt;
    }
    len = sizeof listening;
    if (::getsockopt(*fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) {
        err = "LISTEN_FDS: fd 3 is not listening";
        return std::nullopt;
    }
    ::fcntl(*fd, F_SETFD, FD_CLOEXEC);
    return fd;
}

}  // namespace cacheproxy::app
