#include "cache/coalescer.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <deque>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace cacheproxy::cache {

namespace asio = boost::asio;

// ---------------------------------------------------------------------------
// The state machine.
//
// Flight (one per key with a fill in progress):
//
//   join() finds no flight          complete() / leader ticket dropped
//   ------------------------> filling ---------------------------------> published
//
//   filling    The leader is fetching from the upstream. The flight is in its
//              shard's map; join() for the same key queues a waiter behind it
//              (up to max_waiters live waiters, then refuses). Guarded by the
//              shard mutex.
//   published  The leader handed over the outcome. The flight left the map
//              under the shard lock, so the next join() starts a fresh fill
//              (a failure is never served to a later request); its waiter
//              list was moved out and each waiter is then told, without the
//              shard lock held.
//
// Waiter (one per queued caller), guarded by Waiter::mu:
//
//   queued --wait()--> sleeping --outcome--> delivered --wait() resumes--> consumed
//     |                   |  \--timer fires / cancelled--> timed_out
//     |--outcome----------+--> delivered (wait() will return it at once)
//     \--ticket dropped--> abandoned
//
//   queued     Joined; has not started waiting yet (its executor is unknown).
//              An outcome arriving now is kept for wait() to return at once.
//   sleeping   Inside wait(): a steady_timer armed for the timeout on the
//              waiter's own executor; `timer` points at it.
//   delivered  The outcome is stored in the waiter. If it was sleeping, a
//              handler was posted to its executor that cancels its timer: the
//              wake-up event runs on the waiter's own thread.
//   consumed   wait() returned the outcome. Final.
//   timed_out  wait() ended (timer fired, or the wait was cancelled) before an
//              outcome came: the caller fetches on its own; a later outcome is
//              dropped. Final. Its place in the queue is freed.
//   abandoned  The ticket was dropped before an outcome came. Final. Its place
//              in the queue is freed.
//
// Read-your-writes is not this class's concern: the session coalesces on the
// cache key *plus* its scope generation (session/cache_fill.cpp flight_key), so
// a request after a write never joins, nor is held, an outcome from before it.
//
// After a fill (complete()):
//   held       A failed or answer outcome may be kept until a deadline
//              (coalesce.error_hold): join() for the key before then returns a
//              `held` ticket, and no new fill starts. Guarded by the shard mutex.
//   relay      A not_shareable outcome is handed to max_unshared waiters; the
//              rest wait in the Relay's queue, and each released ticket passes
//              its turn to the next one still waiting. Guarded by Relay::mu.
// ---------------------------------------------------------------------------

/// One fill in progress.
struct Coalescer::Flight {
    enum class State { filling, published };

    explicit Flight(const CacheKey& k) : key(k.bytes), route_index(k.route_index), hash(k.hash) {}

    const std::string key;          ///< CacheKey::bytes (the shard map views it)
    const std::size_t route_index;  ///< CacheKey::route_index
    const std::uint64_t hash;       ///< CacheKey::hash
    State state = State::filling;   ///< guarded by the shard mutex
    std::vector<std::shared_ptr<Waiter>> waiters;  ///< guarded by the shard mutex
    std::atomic<std::size_t> live_waiters{0};      ///< queued or sleeping waiters (the bound)
};

/// The waiters of a not_shareable fill, sent upstream max_unshared at a time.
struct Coalescer::Relay {
    std::mutex mu;
    std::deque<std::shared_ptr<Waiter>> queue;  ///< guarded by mu: not given a turn yet
    FillResult result;                          ///< the not_shareable outcome
};

/// An outcome kept after its fill ended, until `until`.
struct Coalescer::Held {
    std::string key;           ///< CacheKey::bytes (the shard map views it)
    std::size_t route_index;
    std::uint64_t hash;
    FillResult result;
    TimePoint until;
};

/// One caller queued behind a flight.
struct Coalescer::Waiter {
    enum class State { queued, sleeping, delivered, consumed, timed_out, abandoned };

    std::mutex mu;
    State state = State::queued;         ///< guarded by mu
    std::optional<FillResult> result;    ///< guarded by mu: set in `delivered`
    asio::steady_timer* timer = nullptr; ///< guarded by mu: non-null only while sleeping in wait()
    asio::any_io_executor executor;      ///< guarded by mu: where the wake-up is posted
    std::shared_ptr<Relay> relay;        ///< guarded by mu: the turn this waiter holds (not_shareable)
};

namespace {

/// The flight map's key: a view into Flight::key, the route, the precomputed hash.
struct FlightRef {
    std::string_view bytes;
    std::size_t route_index = 0;
    std::uint64_t hash = 0;
};

struct FlightRefHash {
    std::size_t operator()(const FlightRef& k) const noexcept { return static_cast<std::size_t>(k.hash); }
};

struct FlightRefEq {
    bool operator()(const FlightRef& a, const FlightRef& b) const noexcept {
        return a.route_index == b.route_index && a.bytes == b.bytes;
    }
};

/// The outcome as published: `stored` needs an entry; other outcomes carry none.
FillResult normalized(FillResult r) {
    const bool with_entry = r.outcome == FillResult::Outcome::stored || r.outcome == FillResult::Outcome::answer;
    if (with_entry && !r.entry) r.outcome = FillResult::Outcome::failed;
    if (!with_entry) r.entry = nullptr;
    return r;
}

/// Held outcomes a shard keeps before it sweeps out the expired ones.
constexpr std::size_t kHeldSweepAt = 1024;

}  // namespace

/// One shard of the in-flight map.
struct Coalescer::Shard {
    mutable std::mutex mu;
    std::unordered_map<FlightRef, std::shared_ptr<Flight>, FlightRefHash, FlightRefEq> flights;  ///< guarded by mu
    std::unordered_map<FlightRef, std::unique_ptr<Held>, FlightRefHash, FlightRefEq> held;       ///< guarded by mu
};

// --- Ticket -----------------------------------------------------------------

Coalescer::Ticket::Ticket(Ticket&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)),
      flight_(std::move(other.flight_)),
      waiter_(std::move(other.waiter_)),
      held_(std::exchange(other.held_, std::nullopt)),
      role_(std::exchange(other.role_, Role::none)) {}

Coalescer::Ticket& Coalescer::Ticket::operator=(Ticket&& other) noexcept {
    if (this != &other) {
        release();
        owner_ = std::exchange(other.owner_, nullptr);
        flight_ = std::move(other.flight_);
        waiter_ = std::move(other.waiter_);
        held_ = std::exchange(other.held_, std::nullopt);
        role_ = std::exchange(other.role_, Role::none);
    }
    return *this;
}

Coalescer::Ticket::~Ticket() { release(); }

void Coalescer::Ticket::release() noexcept {
    if (owner_ != nullptr) {
        if (role_ == Role::leader && flight_) {
            owner_->counters_.abandoned_fills.fetch_add(1, std::memory_order_relaxed);
            owner_->complete(*this, FillResult{nullptr, FillResult::Outcome::failed});
        } else if (role_ == Role::waiter && waiter_) {
            owner_->abandon(*this);
            std::shared_ptr<Relay> turn;
            {
                std::lock_guard lock(waiter_->mu);
                turn = std::move(waiter_->relay);
            }
            if (turn) owner_->pass_turn(turn);  // this waiter's own fetch is over: the next one goes
        }
    }
    owner_ = nullptr;
    flight_.reset();
    waiter_.reset();
    held_.reset();
    role_ = Role::none;
}

// --- Coalescer --------------------------------------------------------------

Coalescer::Coalescer(std::size_t max_waiters, std::size_t max_unshared)
    : max_waiters_(max_waiters),
      max_unshared_(max_unshared == 0 ? 1 : max_unshared),
      compact_at_(max_waiters < (SIZE_MAX - 64) / 2 ? 2 * max_waiters + 64 : SIZE_MAX),
      shards_(std::make_unique<Shard[]>(kShards)) {}

Coalescer::~Coalescer() = default;

Coalescer::Shard& Coalescer::shard_for(std::uint64_t hash) const { return shards_[(hash >> 32) % kShards]; }

Coalescer::Ticket Coalescer::start_flight(Shard& shard, const CacheKey& key) {
    auto flight = std::make_shared<Flight>(key);
    shard.flights.emplace(FlightRef{flight->key, flight->route_index, flight->hash}, flight);
    counters_.leaders.fetch_add(1, std::memory_order_relaxed);
    Ticket t;
    t.owner_ = this;
    t.flight_ = std::move(flight);
    t.role_ = Ticket::Role::leader;
    return t;
}

const Coalescer::Held* Coalescer::held_for(Shard& shard, const CacheKey& key, TimePoint now) {
    if (shard.held.empty()) return nullptr;
    const auto it = shard.held.find(FlightRef{key.bytes, key.route_index, key.hash});
    if (it == shard.held.end()) return nullptr;
    if (now < it->second->until) return it->second.get();
    shard.held.erase(it);
    return nullptr;
}

Coalescer::Ticket Coalescer::join(const CacheKey& key, TimePoint now) {
    Shard& shard = shard_for(key.hash);
    std::lock_guard lock(shard.mu);
    if (const Held* h = held_for(shard, key, now)) {
        counters_.held_served.fetch_add(1, std::memory_order_relaxed);
        Ticket t;
        t.owner_ = this;
        t.held_ = h->result;
        t.role_ = Ticket::Role::held;
        return t;
    }
    const auto it = shard.flights.find(FlightRef{key.bytes, key.route_index, key.hash});
    if (it == shard.flights.end()) return start_flight(shard, key);

    Flight& flight = *it->second;
    if (flight.live_waiters.load(std::memory_order_relaxed) >= max_waiters_) {
        counters_.queue_full.fetch_add(1, std::memory_order_relaxed);
        Ticket t;
        t.owner_ = this;
        t.role_ = Ticket::Role::rejected;
        return t;
    }
    // Drop waiters nobody holds any more (timed out / abandoned and released), so
    // a long fill with many give-ups does not grow the list without bound.
    if (flight.waiters.size() >= compact_at_) {
        std::erase_if(flight.waiters, [](const std::shared_ptr<Waiter>& w) { return w.use_count() == 1; });
    }
    auto waiter = std::make_shared<Waiter>();
    flight.waiters.push_back(waiter);
    flight.live_waiters.fetch_add(1, std::memory_order_relaxed);
    counters_.waiters_joined.fetch_add(1, std::memory_order_relaxed);

    Ticket t;
    t.owner_ = this;
    t.flight_ = it->second;
    t.waiter_ = std::move(waiter);
    t.role_ = Ticket::Role::waiter;
    return t;
}

Coalescer::Ticket Coalescer::lead_if_idle(const CacheKey& key, TimePoint now) {
    Shard& shard = shard_for(key.hash);
    std::lock_guard lock(shard.mu);
    if (held_for(shard, key, now) != nullptr) return Ticket{};
    if (shard.flights.find(FlightRef{key.bytes, key.route_index, key.hash}) != shard.flights.end()) return Ticket{};
    return start_flight(shard, key);
}

void Coalescer::complete(Ticket& ticket, FillResult result, std::optional<TimePoint> hold_until) {
    if (ticket.owner_ != this || ticket.role_ != Ticket::Role::leader || !ticket.flight_) return;
    const std::shared_ptr<Flight> flight = std::move(ticket.flight_);
    ticket.role_ = Ticket::Role::none;
    ticket.owner_ = nullptr;
    result = normalized(std::move(result));
    const bool holdable =
        result.outcome == FillResult::Outcome::failed || result.outcome == FillResult::Outcome::answer;

    // filling -> published, under the shard lock: copy the waiter list out.
    std::vector<std::shared_ptr<Waiter>> waiters;
    {
        Shard& shard = shard_for(flight->hash);
        std::lock_guard lock(shard.mu);
        const auto it = shard.flights.find(FlightRef{flight->key, flight->route_index, flight->hash});
        if (it != shard.flights.end() && it->second == flight) shard.flights.erase(it);
        flight->state = Flight::State::published;
        waiters.swap(flight->waiters);
        if (hold_until && holdable) {
            if (shard.held.size() >= kHeldSweepAt)
                std::erase_if(shard.held, [&](const auto& kv) { return kv.second->until <= *hold_until; });
            auto held = std::make_unique<Held>(Held{flight->key, flight->route_index, flight->hash, result, *hold_until});
            const FlightRef ref{held->key, held->route_index, held->hash};
            shard.held.erase(ref);
            shard.held.emplace(FlightRef{held->key, held->route_index, held->hash}, std::move(held));
        }
    }

    // Notify after releasing the shard lock (Beast chat-multi's shared_state).
    if (result.outcome != FillResult::Outcome::not_shareable) {
        for (const auto& w : waiters) deliver(w, result, nullptr);
        return;
    }
    // Not shareable: every waiter fetches on its own, max_unshared at a time.
    auto relay = std::make_shared<Relay>();
    relay->result = result;
    relay->queue.assign(waiters.begin(), waiters.end());
    for (std::size_t i = 0; i < max_unshared_; ++i) pass_turn(relay);
}

bool Coalescer::deliver(const std::shared_ptr<Waiter>& w, const FillResult& result, std::shared_ptr<Relay> relay) {
    asio::any_io_executor wake_on;
    {
        std::lock_guard lock(w->mu);
        if (w->state != Waiter::State::queued && w->state != Waiter::State::sleeping) return false;
        if (w->state == Waiter::State::sleeping) wake_on = w->executor;
        w->result = result;  // a shared_ptr copy: every waiter shares the one entry
        w->relay = std::move(relay);
        w->state = Waiter::State::delivered;
    }
    if (wake_on) {
        // The wake-up event runs on the waiter's own executor: it cancels the
        // waiter's timer there, which resumes wait() with the outcome.
        asio::post(wake_on, [w] {
            std::lock_guard lock(w->mu);
            if (w->timer != nullptr) w->timer->cancel();
        });
    }
    return true;
}

void Coalescer::pass_turn(const std::shared_ptr<Relay>& relay) {
    for (;;) {
        std::shared_ptr<Waiter> next;
        {
            std::lock_guard lock(relay->mu);
            if (relay->queue.empty()) return;
            next = std::move(relay->queue.front());
            relay->queue.pop_front();
        }
        if (deliver(next, relay->result, relay)) {
            counters_.unshared_turns.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        // Gone (timed out, abandoned): its turn goes to the next one.
    }
}

void Coalescer::abandon(Ticket& ticket) noexcept {
    const auto& w = ticket.waiter_;
    std::lock_guard lock(w->mu);
    if (w->state == Waiter::State::queued || w->state == Waiter::State::sleeping) {
        w->state = Waiter::State::abandoned;
        if (ticket.flight_) ticket.flight_->live_waiters.fetch_sub(1, std::memory_order_relaxed);
    }
}

asio::awaitable<std::optional<FillResult>> Coalescer::wait(Ticket& ticket, asio::any_io_executor executor,
                                                           std::chrono::milliseconds timeout) {
    if (ticket.owner_ == this && ticket.role_ == Ticket::Role::held) co_return ticket.held_;
    if (ticket.owner_ != this || ticket.role_ != Ticket::Role::waiter || !ticket.waiter_) co_return std::nullopt;
    const std::shared_ptr<Waiter> w = ticket.waiter_;
    const std::shared_ptr<Flight> flight = ticket.flight_;

    asio::steady_timer timer(executor, timeout);
    std::optional<FillResult> out;
    bool sleep = false;
    {
        std::lock_guard lock(w->mu);
        if (w->state == Waiter::State::delivered) {
            // The outcome landed before we began waiting: no sleep.
            out = std::move(w->result);
            w->result.reset();
            w->state = Waiter::State::consumed;
        } else if (w->state == Waiter::State::queued) {
            w->state = Waiter::State::sleeping;
            w->timer = &timer;
            w->executor = executor;
            sleep = true;
        }
    }
    if (out) {
        counters_.waiters_woken.fetch_add(1, std::memory_order_relaxed);
        co_return out;
    }
    if (!sleep) co_return std::nullopt;  // already consumed, timed out or abandoned

    counters_.waiters_slept.fetch_add(1, std::memory_order_relaxed);
    // Ends when the timeout passes, or when the wake-up (or a cancellation of
    // this coroutine) cancels the timer; the error code does not tell which.
    (void)co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));

    bool timed_out = false;
    {
        std::lock_guard lock(w->mu);
        w->timer = nullptr;  // the timer dies with this frame; the wake-up handler must not touch it
        if (w->state == Waiter::State::delivered) {
            out = std::move(w->result);
            w->result.reset();
            w->state = Waiter::State::consumed;
        } else if (w->state == Waiter::State::sleeping) {
            w->state = Waiter::State::timed_out;
            timed_out = true;
        }
    }
    if (out) {
        counters_.waiters_woken.fetch_add(1, std::memory_order_relaxed);
    } else if (timed_out) {
        counters_.waiter_timeouts.fetch_add(1, std::memory_order_relaxed);
        if (flight) flight->live_waiters.fetch_sub(1, std::memory_order_relaxed);
    }
    co_return out;
}

CoalescerStats Coalescer::stats() const {
    CoalescerStats s;
#define CACHEPROXY_COUNTER_LOAD(name, description) s.name = counters_.name.load(std::memory_order_relaxed);
    CACHEPROXY_COALESCER_COUNTERS(CACHEPROXY_COUNTER_LOAD)
#undef CACHEPROXY_COUNTER_LOAD
    return s;
}

std::size_t Coalescer::in_flight() const {
    std::size_t n = 0;
    for (std::size_t i = 0; i < kShards; ++i) {
        std::lock_guard lock(shards_[i].mu);
        n += shards_[i].flights.size();
    }
    return n;
}

}  // namespace cacheproxy::cache
