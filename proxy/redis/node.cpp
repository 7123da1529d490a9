// One Redis connection on Asio: a run loop (connect, handshake, wait for the
// close, back off, again), a reader that matches replies to the pending
// commands in FIFO order, and a writer that sends whatever was queued since
// its last write in one go (so commands issued together are pipelined in one
// segment).
//
// Every pending command is a Pending with a steady_timer that serves as both
// its deadline and its wake-up: it expires at the deadline, and the reader
// cancels it when the reply comes. Whoever sets `done` first wins, so a reply
// and a deadline that land in the same loop turn never both count. A missed
// deadline closes the connection: the reply would otherwise arrive later and
// be taken as the answer to the next command.
//
// Lifetime: Node owns a shared_ptr<Impl>; every coroutine holds one too, so a
// Node destroyed with commands pending only stops the Impl (the commands
// complete with Error::closed) and the Impl goes when its last coroutine
// returns. The callbacks live on the Node: the Impl reaches them through
// `owner`, which ~Node clears first.

#include "redis/node.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <deque>
#include <random>

namespace cacheproxy::redis {

namespace asio = boost::asio;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

bool is_subscribe(const std::vector<std::string>& argv) {
    if (argv.empty()) return false;
    std::string name = argv[0];
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    return name == "subscribe" || name == "ssubscribe" || name == "psubscribe";
}

/// A Pub/Sub message ("message", "smessage": 3 elements; "pmessage": 4).
bool is_push(const Reply& r) {
    if (!r.is_array() || r.elements.size() < 3 || !r.elements[0].is_string()) return false;
    const std::string& kind = r.elements[0].str;
    return kind == "message" || kind == "smessage" || (kind == "pmessage" && r.elements.size() >= 4);
}

/// "run_id:<40 hex>" out of INFO server's text.
std::string parse_run_id(const std::string& info) {
    constexpr std::string_view key = "run_id:";
    const auto at = info.find(key);
    if (at == std::string::npos) return {};
    const auto begin = at + key.size();
    const auto end = info.find_first_of("\r\n", begin);
    return info.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

}  // namespace

/// One command waiting for its reply.
struct Pending {
    explicit Pending(const asio::any_io_executor& ex) : timer(ex) {}
    asio::steady_timer timer;  ///< the deadline; cancelled when the reply (or the close) comes
    Result result;
    bool done = false;
};

struct Node::Impl : std::enable_shared_from_this<Node::Impl> {
    Impl(asio::any_io_executor ex, Options opts)
        : executor(std::move(ex)), options(std::move(opts)), backoff_timer(executor), closed_signal(executor),
          rng(std::random_device{}()) {}

    asio::any_io_executor executor;
    Options options;
    Node* owner = nullptr;  ///< cleared by ~Node: the callbacks live there
    Stats stats;
    std::string run_id;

    bool started = false, stopped = false;
    bool connected = false;    ///< a socket is open (handshake or up)
    bool handshaking = false;  ///< connected, before on_connect finished: exec allowed
    bool up = false;
    bool subscribed = false;   ///< a (S/P)SUBSCRIBE went out on this connection: pushes possible
    bool writing = false;
    std::uint64_t generation = 0;  ///< one per connection: loops of an older one stand down
    std::shared_ptr<tcp::socket> socket;
    std::unique_ptr<Parser> parser;
    std::deque<std::shared_ptr<Pending>> pending;
    std::string outbuf;
    asio::steady_timer backoff_timer;
    asio::steady_timer closed_signal;  ///< the run loop waits on it while up; close() cancels it
    std::minstd_rand rng;

    static asio::awaitable<void> run(std::shared_ptr<Impl> self);
    static asio::awaitable<error_code> open(std::shared_ptr<Impl> self);
    static asio::awaitable<error_code> connect_socket(std::shared_ptr<Impl> self);
    static asio::awaitable<error_code> handshake(std::shared_ptr<Impl> self);
    static asio::awaitable<void> read_loop(std::shared_ptr<Impl> self, std::shared_ptr<tcp::socket> sock,
                                           std::uint64_t gen);
    static asio::awaitable<void> write_loop(std::shared_ptr<Impl> self, std::shared_ptr<tcp::socket> sock,
                                            std::uint64_t gen);
    static asio::awaitable<Result> send(std::shared_ptr<Impl> self, std::vector<std::string> argv,
                                        std::chrono::milliseconds timeout);
    static asio::awaitable<Result> exec(std::shared_ptr<Impl> self, std::vector<std::string> argv,
                                        std::chrono::milliseconds timeout);

    void close(error_code why);
    void dispatch(Reply reply);
    std::chrono::milliseconds backoff(unsigned attempt);
};

// ------------------------------------------------------------------ connection

asio::awaitable<void> Node::Impl::run(std::shared_ptr<Impl> self) {
    unsigned attempt = 0;
    while (!self->stopped) {
        const error_code ec = co_await open(self);
        if (self->stopped) break;
        if (!ec) {
            attempt = 0;
            // Up until close() cancels the signal (it never expires). on_up
            // may have closed it already: then there is nothing to wait for.
            self->closed_signal.expires_at(Clock::time_point::max());
            if (self->connected) co_await self->closed_signal.async_wait(use_tuple);
            if (self->stopped) break;
        } else {
            self->close(ec);
        }
        self->backoff_timer.expires_after(self->backoff(attempt++));
        co_await self->backoff_timer.async_wait(use_tuple);
    }
}

std::chrono::milliseconds Node::Impl::backoff(unsigned attempt) {
    // backoff_min doubling up to backoff_max, then a uniform jitter over the
    // delay's upper half so that many proxies do not reconnect in step.
    using Rep = std::chrono::milliseconds::rep;
    const Rep lo = std::max<Rep>(options.backoff_min.count(), 1);
    const Rep hi = std::max<Rep>(options.backoff_max.count(), lo);
    Rep delay = lo;
    for (unsigned i = 0; i < attempt && delay < hi; ++i) delay = std::min(delay * 2, hi);
    std::uniform_int_distribution<Rep> jitter(delay / 2, delay);
    return std::chrono::milliseconds(jitter(rng));
}

asio::awaitable<error_code> Node::Impl::open(std::shared_ptr<Impl> self) {
    if (error_code ec = co_await connect_socket(self)) co_return ec;
    const std::uint64_t gen = self->generation;
    if (error_code ec = co_await handshake(self)) co_return ec;
    if (self->stopped || gen != self->generation || !self->connected) co_return make_error_code(Error::closed);

    // on_connect runs on a copy: the Node (and its std::function) may go while it is suspended.
    if (self->owner != nullptr && self->owner->on_connect) {
        auto on_connect = self->owner->on_connect;
        error_code ec;
        try {
            ec = co_await on_connect();
        } catch (...) {
            ec = make_error_code(Error::closed);
        }
        if (ec) co_return ec;
        if (self->stopped || gen != self->generation || !self->connected) co_return make_error_code(Error::closed);
    }
    self->handshaking = false;
    self->up = true;
    self->stats.connects.fetch_add(1, std::memory_order_relaxed);
    if (self->owner != nullptr && self->owner->on_up) {
        auto on_up = self->owner->on_up;
        on_up();
    }
    co_return error_code{};
}

asio::awaitable<error_code> Node::Impl::connect_socket(std::shared_ptr<Impl> self) {
    error_code ec;
    const auto address = asio::ip::make_address(self->options.host, ec);
    if (ec) co_return ec;
    auto sock = std::make_shared<tcp::socket>(self->executor);
    // The connect deadline closes the socket, which aborts the connect.
    auto expired = std::make_shared<bool>(false);
    asio::steady_timer deadline(self->executor, self->options.connect_timeout);
    deadline.async_wait([sock, expired](error_code e) {
        if (e) return;
        *expired = true;
        error_code ignored;
        sock->close(ignored);
    });
    auto [cec] = co_await sock->async_connect(tcp::endpoint(address, self->options.port), use_tuple);
    deadline.cancel();
    if (*expired) co_return make_error_code(Error::timeout);
    if (cec) co_return cec;
    if (self->stopped) co_return make_error_code(Error::closed);
    sock->set_option(tcp::no_delay(true), ec);

    ++self->generation;
    self->socket = sock;
    self->parser = std::make_unique<Parser>();
    self->connected = true;
    self->handshaking = true;
    self->subscribed = false;
    self->writing = false;
    self->outbuf.clear();
    asio::co_spawn(self->executor, read_loop(self, sock, self->generation), asio::detached);
    co_return error_code{};
}

asio::awaitable<error_code> Node::Impl::handshake(std::shared_ptr<Impl> self) {
    const auto timeout = std::max(self->options.connect_timeout, self->options.op_timeout);
    auto check = [](const Result& r) {
        return r.ec ? r.ec : r.reply.is_error() ? make_error_code(Error::protocol) : error_code{};
    };
    // (The argv are named locals: gcc 12 cannot compile a braced list of
    // literals as a temporary inside a co_await expression.)
    if (!self->options.password.empty()) {
        std::vector<std::string> auth{"AUTH", self->options.password};
        if (error_code ec = check(co_await send(self, std::move(auth), timeout))) co_return ec;
    }
    if (!self->options.client_name.empty()) {
        std::vector<std::string> setname{"CLIENT", "SETNAME", self->options.client_name};
        if (error_code ec = check(co_await send(self, std::move(setname), timeout))) co_return ec;
    }
    std::vector<std::string> info_server{"INFO", "server"};
    const Result info = co_await send(self, std::move(info_server), timeout);
    if (error_code ec = check(info)) co_return ec;
    self->run_id = parse_run_id(info.reply.str);
    co_return error_code{};
}

void Node::Impl::close(error_code why) {
    if (!connected) return;
    const bool was_up = up;
    connected = handshaking = up = subscribed = writing = false;
    ++generation;
    error_code ignored;
    socket->shutdown(tcp::socket::shutdown_both, ignored);
    socket->close(ignored);
    socket.reset();
    outbuf.clear();
    // Every command still pending fails; one that timed out has set its own
    // result (Error::timeout) and `done` before calling here.
    auto failed = std::move(pending);
    pending.clear();
    for (auto& p : failed) {
        if (p->done) continue;
        p->done = true;
        p->result = Result{make_error_code(Error::closed), {}};
        p->timer.cancel();
    }
    closed_signal.cancel();
    if (was_up) {
        stats.disconnects.fetch_add(1, std::memory_order_relaxed);
        if (owner != nullptr && owner->on_down) {
            auto on_down = owner->on_down;
            on_down(why);
        }
    }
}

// ------------------------------------------------------------------ reading and writing

asio::awaitable<void> Node::Impl::read_loop(std::shared_ptr<Impl> self, std::shared_ptr<tcp::socket> sock,
                                            std::uint64_t gen) {
    std::array<char, 16384> buf;
    for (;;) {
        auto [ec, n] = co_await sock->async_read_some(asio::buffer(buf), use_tuple);
        if (gen != self->generation) co_return;
        if (ec) {
            self->close(make_error_code(Error::closed));
            co_return;
        }
        self->parser->feed(std::string_view(buf.data(), n));
        for (;;) {
            error_code pec;
            std::optional<Reply> reply = self->parser->next(pec);
            if (pec) {
                self->close(pec);
                co_return;
            }
            if (!reply) break;
            self->dispatch(std::move(*reply));
            if (gen != self->generation) co_return;  // closed by dispatch or by a callback
        }
    }
}

void Node::Impl::dispatch(Reply reply) {
    if (subscribed && is_push(reply)) {
        if (owner != nullptr && owner->on_push) {
            auto on_push = owner->on_push;
            on_push(reply);
        }
        return;
    }
    if (pending.empty()) {  // a reply nobody asked for: the stream is out of step
        close(make_error_code(Error::protocol));
        return;
    }
    auto p = std::move(pending.front());
    pending.pop_front();
    if (p->done) return;  // cannot happen (a timed-out command closes the connection), but harmless
    p->done = true;
    p->result.reply = std::move(reply);
    p->timer.cancel();
}

asio::awaitable<void> Node::Impl::write_loop(std::shared_ptr<Impl> self, std::shared_ptr<tcp::socket> sock,
                                             std::uint64_t gen) {
    // Everything queued while the previous write was in flight goes in the next one.
    while (gen == self->generation && !self->outbuf.empty()) {
        std::string chunk;
        chunk.swap(self->outbuf);
        auto [ec, n] = co_await asio::async_write(*sock, asio::buffer(chunk), use_tuple);
        if (gen != self->generation) co_return;  // closed meanwhile: `writing` belongs to the next connection
        if (ec) {
            self->close(make_error_code(Error::closed));
            co_return;
        }
    }
    if (gen == self->generation) self->writing = false;
}

// ------------------------------------------------------------------ commands

asio::awaitable<Result> Node::Impl::send(std::shared_ptr<Impl> self, std::vector<std::string> argv,
                                         std::chrono::milliseconds timeout) {
    if (!self->connected) co_return Result{make_error_code(Error::not_connected), {}};
    if (timeout.count() <= 0) timeout = self->options.op_timeout;
    auto p = std::make_shared<Pending>(self->executor);
    p->timer.expires_after(timeout);
    if (is_subscribe(argv)) self->subscribed = true;
    self->outbuf += encode(std::span<const std::string>(argv));
    self->pending.push_back(p);
    if (!self->writing) {
        self->writing = true;
        asio::co_spawn(self->executor, write_loop(self, self->socket, self->generation), asio::detached);
    }
    const auto started = Clock::now();
    if (!p->done) co_await p->timer.async_wait(use_tuple);
    if (!p->done) {
        // The deadline won: close, so the late reply cannot answer the next command.
        p->done = true;
        p->result = Result{make_error_code(Error::timeout), {}};
        self->stats.timeouts.fetch_add(1, std::memory_order_relaxed);
        self->close(make_error_code(Error::timeout));
    } else if (!p->result.ec) {
        const auto rtt = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started);
        self->stats.last_rtt_us.store(static_cast<std::uint64_t>(rtt.count()), std::memory_order_relaxed);
    }
    co_return std::move(p->result);
}

asio::awaitable<Result> Node::Impl::exec(std::shared_ptr<Impl> self, std::vector<std::string> argv,
                                         std::chrono::milliseconds timeout) {
    Result r;
    if (!self->connected || (!self->up && !self->handshaking)) {
        r.ec = make_error_code(Error::not_connected);  // the circuit breaker: nothing sent
    } else {
        r = co_await send(self, std::move(argv), timeout);
    }
    self->stats.ops.fetch_add(1, std::memory_order_relaxed);
    if (r.ec) self->stats.errors.fetch_add(1, std::memory_order_relaxed);
    co_return r;
}

// ------------------------------------------------------------------ Node

Node::Node(asio::any_io_executor executor, Options options)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(options))) {
    impl_->owner = this;
}

Node::~Node() {
    impl_->owner = nullptr;  // no callback runs from here on
    stop();
}

void Node::start() {
    if (impl_->started || impl_->stopped) return;
    impl_->started = true;
    asio::co_spawn(impl_->executor, Impl::run(impl_), asio::detached);
}

void Node::stop() {
    if (impl_->stopped) return;
    impl_->stopped = true;
    impl_->close(make_error_code(Error::closed));
    impl_->backoff_timer.cancel();
    impl_->closed_signal.cancel();
}

bool Node::up() const { return impl_->up; }

asio::awaitable<Result> Node::exec(std::vector<std::string> argv, std::chrono::milliseconds timeout) {
    // Not a coroutine itself: the frame holds the Impl, never this Node.
    return Impl::exec(impl_, std::move(argv), timeout);
}

const std::string& Node::run_id() const { return impl_->run_id; }
const Node::Options& Node::options() const { return impl_->options; }
const Node::Stats& Node::stats() const { return impl_->stats; }

}  // namespace cacheproxy::redis
