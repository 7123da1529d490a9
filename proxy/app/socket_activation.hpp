#pragma once
/// systemd socket activation (sd_listen_fds(3)), implemented directly: when
/// LISTEN_PID is this process and LISTEN_FDS >= 1, the listening socket is
/// fd 3 (SD_LISTEN_FDS_START), opened by systemd (cacheproxy.socket) or any
/// parent playing its part. The socket outlives the process: a restart or a
/// binary upgrade loses no connection attempt (they wait in its backlog).

#include <optional>
#include <string>

#include <sys/types.h>

namespace cacheproxy::app {

/// The first passed descriptor (SD_LISTEN_FDS_START).
inline constexpr int kListenFdsStart = 3;

/// Pure: the descriptor to listen on from the values of LISTEN_PID and
/// LISTEN_FDS (null = unset) for process `self`; nullopt when the socket is
/// not passed to this process. More than one passed socket: the first is used.
std::optional<int> activated_fd(const char* listen_pid, const char* listen_fds, pid_t self);

/// Reads LISTEN_PID / LISTEN_FDS, then unsets them (and LISTEN_FDNAMES) so
/// that no child inherits them; the fd, checked to be a listening TCP socket
/// and marked close-on-exec. nullopt when nothing was passed; `err` set when
/// something was passed but is unusable.
std::optional<int> take_activated_socket(std::string& err);

}  // namespace cacheproxy::app
