#pragma once
/// Socket to socket without a copy through user space: splice(2) through a
/// kernel pipe, for the large bodies a pass-through relays as they are (a
/// download with a Content-Length, an upload with one). nginx and HAProxy do
/// the same (HAProxy's "splice-response"). The bytes never enter our
/// buffers: the relay costs two splices per piece and no memcpy.
///
/// Timeouts are one coarse deadline per relay (a timer that re-arms itself
/// only when it fires early), not a timer re-armed for every piece.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace cacheproxy::net {

/// A kernel pipe, both ends non-blocking. Empty when it is handed back to a
/// PipePool; a relay that stopped with bytes in it closes it instead.
class SplicePipe {
public:
    SplicePipe() = default;
    SplicePipe(SplicePipe&& o) noexcept;
    SplicePipe& operator=(SplicePipe&& o) noexcept;
    SplicePipe(const SplicePipe&) = delete;
    SplicePipe& operator=(const SplicePipe&) = delete;
    ~SplicePipe();

    /// Opens a pipe of (about) `capacity` bytes: the kernel's default 64 KiB
    /// where it refuses more (pipe-user-pages-soft). False if no pipe.
    bool open(std::size_t capacity);
    bool is_open() const { return read_fd_ >= 0; }
    std::size_t capacity() const { return capacity_; }

    int read_fd() const { return read_fd_; }
    int write_fd() const { return write_fd_; }
    std::size_t held = 0;  ///< bytes in the pipe now

private:
    void close();
    int read_fd_ = -1;
    int write_fd_ = -1;
    std::size_t capacity_ = 0;
};

/// A worker's empty pipes, reused by its relays (touched by that thread only).
class PipePool {
public:
    /// 256 KiB: the largest piece the relay wakes for (its SO_RCVLOWAT) fits;
    /// kernel memory a slow client can hold in the pipe, beside its socket buffers.
    static constexpr std::size_t pipe_bytes = 256 * 1024;
    /// A pipe smaller than this (the kernel's answer past pipe-user-pages-soft)
    /// is no faster than the buffered copy: take() returns none.
    static constexpr std::size_t least_bytes = 64 * 1024;
    static constexpr std::size_t keep = 8;              ///< empty pipes kept per worker

    /// An empty pipe (reused, or opened now); not open if the process is out
    /// of descriptors or the kernel gives less than least_bytes.
    SplicePipe take();
    /// Keeps `pipe` if it is empty and the pool is not full; else it closes.
    void give_back(SplicePipe pipe);

private:
    std::vector<SplicePipe> free_;
};

/// How a splice relay ended. `moved` bytes reached `to`.
struct Spliced {
    boost::system::error_code from;  ///< reading failed: eof before `length` (partial_message), timeout, error
    boost::system::error_code to;    ///< writing failed: timeout, reset
    std::uint64_t moved = 0;
};

/// The limits of one relay. A zero timeout is none.
struct SpliceLimits {
    std::chrono::steady_clock::duration read_timeout{};   ///< `from` quiet for this long: timeout
    std::chrono::steady_clock::duration write_timeout{};  ///< `to` not taking bytes for this long: timeout
    /// Bytes per second `from` must keep up after `grace` (0: no minimum): a
    /// slow upload is cut as timed out, as the buffered relay does.
    std::size_t min_rate = 0;
    std::chrono::steady_clock::duration grace{};
};

/// Moves exactly `length` bytes from `from` to `to` through `pipe` (empty on
/// entry; empty again on success). Both sockets must be non-blocking.
/// Nothing past `length` is read from `from`, so a keep-alive connection
/// stays reusable.
boost::asio::awaitable<Spliced> splice_copy(boost::asio::ip::tcp::socket& from, boost::asio::ip::tcp::socket& to,
                                            std::uint64_t length, SplicePipe& pipe, SpliceLimits limits);

}  // namespace cacheproxy::net
