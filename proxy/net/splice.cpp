#include "net/splice.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <utility>

namespace cacheproxy::net {

namespace asio = boost::asio;
using boost::system::error_code;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

SplicePipe::SplicePipe(SplicePipe&& o) noexcept
    : held(std::exchange(o.held, 0)), read_fd_(std::exchange(o.read_fd_, -1)),
      write_fd_(std::exchange(o.write_fd_, -1)), capacity_(std::exchange(o.capacity_, 0)) {}

SplicePipe& SplicePipe::operator=(SplicePipe&& o) noexcept {
    if (this != &o) {
        close();
        held = std::exchange(o.held, 0);
        read_fd_ = std::exchange(o.read_fd_, -1);
        write_fd_ = std::exchange(o.write_fd_, -1);
        capacity_ = std::exchange(o.capacity_, 0);
    }
    return *this;
}

SplicePipe::~SplicePipe() { close(); }

void SplicePipe::close() {
    if (read_fd_ >= 0) ::close(read_fd_);
    if (write_fd_ >= 0) ::close(write_fd_);
    read_fd_ = write_fd_ = -1;
    held = capacity_ = 0;
}

bool SplicePipe::open(std::size_t capacity) {
    close();
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return false;
    read_fd_ = fds[0];
    write_fd_ = fds[1];
    // Over the user's pipe-user-pages-soft the kernel refuses: the default size stays.
    const int got = ::fcntl(write_fd_, F_SETPIPE_SZ, static_cast<int>(capacity));
    capacity_ = got > 0 ? static_cast<std::size_t>(got) : static_cast<std::size_t>(::fcntl(write_fd_, F_GETPIPE_SZ));
    return true;
}

SplicePipe PipePool::take() {
    if (!free_.empty()) {
        SplicePipe p = std::move(free_.back());
        free_.pop_back();
        return p;
    }
    SplicePipe p;
    if (p.open(pipe_bytes) && p.capacity() < least_bytes) return SplicePipe{};
    return p;
}

void PipePool::give_back(SplicePipe pipe) {
    if (pipe.is_open() && pipe.held == 0 && free_.size() < keep) free_.push_back(std::move(pipe));
}

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

/// Waking for every few KiB that arrive costs more than moving them (a
/// context switch each: most of a relay's CPU in perf). So `from` reports
/// readable only once this much is queued (SO_RCVLOWAT)...
constexpr std::size_t most_low_water = 256 * 1024;
/// ... but never more than a quarter of its receive buffer (the kernel then
/// never raises the buffer or clamps the window for it), and...
constexpr int low_water_share = 4;
/// ... a sender that pauses is not held up: after this long without a
/// wake-up the mark drops to 1 byte (the kernel wakes the wait at once if
/// anything is queued) until the sender is fast again (fast_again).
constexpr auto nudge_after = std::chrono::milliseconds(2);
/// One splice from `from` this large: the sender is fast again, the mark goes back on.
constexpr std::size_t fast_again = 64 * 1024;

/// The relay's one timer. It fires at the last progress plus the shorter
/// timeout and re-arms itself while bytes keep moving; when the side being
/// waited on has been quiet for its timeout, it cancels that wait. While a
/// low-water mark is set on `from` it fires every nudge_after instead, to
/// drop the mark for a sender that paused.
struct Deadline {
    enum class Waiting { none, from, to };
    Deadline(tcp::socket& f, tcp::socket& t, const SpliceLimits& l) : timer(f.get_executor()), from(f), to(t), limits(l) {}

    asio::steady_timer timer;
    tcp::socket& from;
    tcp::socket& to;
    const SpliceLimits limits;
    Clock::time_point progress = Clock::now();
    Clock::time_point wait_started;
    Waiting waiting = Waiting::none;
    int low_water = 1;     ///< SO_RCVLOWAT on `from` now
    bool nudged = false;   ///< the mark was dropped for a pause: 1 until the sender is fast again
    unsigned epoch = 0;    ///< the armed wait's number: a superseded one does nothing
    bool timed_out = false;
    bool done = false;

    Clock::duration period() const {
        const auto r = limits.read_timeout, w = limits.write_timeout;
        if (r == Clock::duration::zero()) return w;
        if (w == Clock::duration::zero()) return r;
        return std::min(r, w);
    }
    void set_low_water(int bytes) {
        if (bytes == low_water) return;
        low_water = bytes;
        ::setsockopt(from.native_handle(), SOL_SOCKET, SO_RCVLOWAT, &bytes, sizeof bytes);
    }
};

void arm(const std::shared_ptr<Deadline>& d) {
    const bool nudging = d->low_water > 1;
    const auto period = nudging ? Clock::duration(nudge_after) : d->period();
    if (period == Clock::duration::zero()) return;
    const auto now = Clock::now();
    d->timer.expires_at(nudging ? now + period : std::max(d->progress + period, now + std::chrono::milliseconds(1)));
    d->timer.async_wait([d, epoch = ++d->epoch](const error_code& ec) {
        if (ec || d->done || epoch != d->epoch) return;
        const auto now = Clock::now();
        const auto limit = d->waiting == Deadline::Waiting::from ? d->limits.read_timeout
                           : d->waiting == Deadline::Waiting::to ? d->limits.write_timeout
                                                                 : Clock::duration::zero();
        if (limit != Clock::duration::zero() && now - d->progress >= limit) {
            d->timed_out = true;
            error_code ignored;
            (d->waiting == Deadline::Waiting::from ? d->from : d->to).cancel(ignored);
            return;
        }
        if (d->waiting == Deadline::Waiting::from && d->low_water > 1 && now - d->wait_started >= nudge_after) {
            d->nudged = true;
            d->set_low_water(1);
        }
        arm(d);
    });
}

/// The low-water mark for the next wait on `from`: at most `room` (what the
/// body and the pipe still take), a quarter of the receive buffer, 256 KiB.
int low_water_for(tcp::socket& from, std::uint64_t room) {
    int rcvbuf = 0;
    socklen_t len = sizeof rcvbuf;
    if (::getsockopt(from.native_handle(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, &len) != 0 || rcvbuf <= 0) return 1;
    const auto mark = std::min<std::uint64_t>({room, most_low_water, static_cast<std::uint64_t>(rcvbuf / low_water_share)});
    return std::max(1, static_cast<int>(mark));
}

error_code last_error() { return error_code(errno, boost::system::system_category()); }

bool would_block() { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR; }

/// Waits until `socket` can be read (or written); a cancelled wait the deadline caused is a timeout.
asio::awaitable<error_code> wait_for(Deadline& d, tcp::socket& socket, tcp::socket::wait_type what,
                                     Deadline::Waiting side) {
    d.waiting = side;
    d.wait_started = Clock::now();
    auto [ec] = co_await socket.async_wait(what, tuple_awaitable);
    d.waiting = Deadline::Waiting::none;
    if (d.timed_out) co_return make_error_code(boost::beast::error::timeout);
    co_return ec;
}

/// Before a wait on `from`: the low-water mark for what is left (`room`);
/// switching it on re-arms the timer for the nudge.
void before_read_wait(const std::shared_ptr<Deadline>& d, std::uint64_t room) {
    const bool was_on = d->low_water > 1;
    d->set_low_water(d->nudged ? 1 : low_water_for(d->from, room));
    if (d->low_water > 1 && !was_on) arm(d);
}

/// One splice(2) between descriptors; >0 bytes moved, 0 the end of `in`, <0 none now (`ec` set if a failure).
ssize_t splice_once(int in, int out, std::size_t n, unsigned flags, error_code& ec) {
    const ssize_t r = ::splice(in, nullptr, out, nullptr, n, SPLICE_F_MOVE | SPLICE_F_NONBLOCK | flags);
    if (r < 0 && !would_block()) ec = last_error();
    return r;
}

}  // namespace

asio::awaitable<Spliced> splice_copy(tcp::socket& from, tcp::socket& to, std::uint64_t length, SplicePipe& pipe,
                                     SpliceLimits limits) {
    Spliced out;
    auto d = std::make_shared<Deadline>(from, to, limits);
    arm(d);
    const auto started = Clock::now();
    std::uint64_t in_left = length;  // still to take from `from`
    // Until `from` ends (or fails) and the pipe is empty: what `from` sent
    // before it ended still reaches `to`.
    while (!out.to && (pipe.held > 0 || (in_left > 0 && !out.from))) {
        bool moved = false;
        if (in_left > 0 && !out.from && pipe.held < pipe.capacity()) {
            const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(in_left, pipe.capacity() - pipe.held));
            const ssize_t n = splice_once(from.native_handle(), pipe.write_fd(), want, 0, out.from);
            if (n > 0) {
                pipe.held += static_cast<std::size_t>(n);
                in_left -= static_cast<std::uint64_t>(n);
                moved = true;
                if (static_cast<std::size_t>(n) >= fast_again) d->nudged = false;
            } else if (n == 0) {
                out.from = asio::error::eof;
            }
        }
        if (pipe.held > 0) {
            const bool more = in_left > 0 && !out.from;
            const ssize_t n = splice_once(pipe.read_fd(), to.native_handle(), pipe.held, more ? SPLICE_F_MORE : 0u, out.to);
            if (n > 0) {
                pipe.held -= static_cast<std::size_t>(n);
                out.moved += static_cast<std::uint64_t>(n);
                moved = true;
            }
            if (out.to) break;
        }
        const auto now = Clock::now();
        if (moved) {
            d->progress = now;
            if (limits.min_rate != 0 && !out.from && now - started > limits.grace &&
                static_cast<double>(length - in_left) <
                    static_cast<double>(limits.min_rate) * std::chrono::duration<double>(now - started).count())
                out.from = make_error_code(boost::beast::error::timeout);
            continue;
        }
        // Nothing moved: the pipe holds bytes `to` will not take yet, or it
        // is empty and `from` has nothing now.
        if (pipe.held > 0) {
            if (auto ec = co_await wait_for(*d, to, tcp::socket::wait_write, Deadline::Waiting::to)) out.to = ec;
        } else if (in_left > 0 && !out.from) {
            before_read_wait(d, std::min<std::uint64_t>(in_left, pipe.capacity()));
            if (auto ec = co_await wait_for(*d, from, tcp::socket::wait_read, Deadline::Waiting::from)) out.from = ec;
        }
    }
    d->set_low_water(1);  // `from` goes on (the next request, a pooled connection's next answer)
    d->done = true;
    d->timer.cancel();
    co_return out;
}

}  // namespace cacheproxy::net
