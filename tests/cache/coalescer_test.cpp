#include "cache/coalescer.hpp"

#include "cache/header_list.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace cacheproxy::cache {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Outcome = FillResult::Outcome;

IdentityHasher& hasher() {
    static IdentityHasher h(IdentityHasher::Key{9});
    return h;
}

CacheKey key_for(std::string_view target, std::optional<std::string_view> credential = "Bearer alice") {
    rules::RouteRule r;
    r.name = "balance";
    r.path = "/api/trading/balance";
    r.key.identity = true;
    r.key.query = {"exchange"};
    return *build_key(r, 0, target, credential, hasher(), HeaderList{});
}

EntryPtr entry(std::string_view body) { return CachedResponse::make({.head = "HTTP/1.1 200 OK\r\n", .body = body}); }

/// One io_context per thread, as the proxy runs them.
class IoThread {
public:
    IoThread() : guard_(asio::make_work_guard(ctx_)), thread_([this] { ctx_.run(); }) {}
    ~IoThread() {
        guard_.reset();
        ctx_.stop();
        thread_.join();
    }
    asio::any_io_executor executor() { return ctx_.get_executor(); }
    std::thread::id id() const { return thread_.get_id(); }

private:
    asio::io_context ctx_;
    asio::executor_work_guard<asio::io_context::executor_type> guard_;
    std::thread thread_;
};

/// What one waiter saw.
struct Seen {
    std::optional<FillResult> result;
    std::thread::id thread;
};

/// Starts wait() for `ticket` on `io`; the future is ready when it returns.
std::future<Seen> spawn_wait(Coalescer& c, Coalescer::Ticket& ticket, IoThread& io, std::chrono::milliseconds timeout) {
    auto promise = std::make_shared<std::promise<Seen>>();
    auto fut = promise->get_future();
    asio::co_spawn(
        io.executor(),
        [&c, &ticket, &io, timeout, promise]() -> asio::awaitable<void> {
            Seen seen;
            seen.result = co_await c.wait(ticket, io.executor(), timeout);
            seen.thread = std::this_thread::get_id();
            promise->set_value(std::move(seen));
        },
        asio::detached);
    return fut;
}

/// Spins (without sleeping on TTLs) until `pred` holds or 5 s pass.
template <class Pred>
bool eventually(Pred pred) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::yield();
    }
    return true;
}

TEST(CoalescerTest, FirstIsLeaderOthersWait) {
    Coalescer c(100);
    const auto k = key_for("/b?exchange=bybit");
    auto leader = c.join(k);
    auto w1 = c.join(k);
    auto w2 = c.join(k);
    EXPECT_TRUE(leader.leader());
    EXPECT_TRUE(w1.waiter());
    EXPECT_TRUE(w2.waiter());
    EXPECT_EQ(c.in_flight(), 1u);
    // Another key, another user: their own leaders.
    EXPECT_TRUE(c.join(key_for("/b?exchange=okx")).leader());
    EXPECT_TRUE(c.join(key_for("/b?exchange=bybit", "Bearer bob")).leader());
    const auto s = c.stats();
    EXPECT_EQ(s.leaders, 3u);
    EXPECT_EQ(s.waiters_joined, 2u);
    EXPECT_EQ(s.abandoned_fills, 2u);  // the two temporaries were dropped without completing
}

TEST(CoalescerTest, OneLeaderManyWaitersAcrossTwoThreadsShareTheEntry) {
    Coalescer c(1000);
    IoThread io_a, io_b;
    const auto k = key_for("/b?exchange=bybit");
    auto leader = c.join(k);
    ASSERT_TRUE(leader.leader());

    constexpr int kWaiters = 20;
    std::vector<Coalescer::Ticket> tickets;
    for (int i = 0; i < kWaiters; ++i) tickets.push_back(c.join(k));
    std::vector<std::future<Seen>> seen;
    for (int i = 0; i < kWaiters; ++i) seen.push_back(spawn_wait(c, tickets[i], i % 2 ? io_b : io_a, 30s));

    // Every waiter is asleep on its own thread before the fill lands.
    ASSERT_TRUE(eventually([&] { return c.stats().waiters_slept == kWaiters; }));

    const auto e = entry("{\"total\":1}");
    c.complete(leader, FillResult{e, Outcome::stored});
    EXPECT_FALSE(leader.leader());
    EXPECT_EQ(c.in_flight(), 0u);

    for (int i = 0; i < kWaiters; ++i) {
        ASSERT_EQ(seen[i].wait_for(10s), std::future_status::ready);
        const Seen s = seen[i].get();
        ASSERT_TRUE(s.result.has_value());
        EXPECT_EQ(s.result->outcome, Outcome::stored);
        EXPECT_EQ(s.result->entry.get(), e.get());  // the very same entry for all
        EXPECT_EQ(s.thread, i % 2 ? io_b.id() : io_a.id());  // woken on its own thread
    }
    const auto st = c.stats();
    EXPECT_EQ(st.leaders, 1u);
    EXPECT_EQ(st.waiters_joined, kWaiters);
    EXPECT_EQ(st.waiters_woken, kWaiters);
    EXPECT_EQ(st.waiter_timeouts, 0u);
}

TEST(CoalescerTest, OutcomeBeforeWaitIsReturnedAtOnce) {
    Coalescer c(10);
    IoThread io;
    const auto k = key_for("/b?exchange=bybit");
    auto leader = c.join(k);
    auto w = c.join(k);
    const auto e = entry("x");
    c.complete(leader, FillResult{e, Outcome::stored});
    auto f = spawn_wait(c, w, io, 30s);
    ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
    const auto s = f.get();
    ASSERT_TRUE(s.result);
    EXPECT_EQ(s.result->entry, e);
    EXPECT_EQ(c.stats().waiters_slept, 0u);
    EXPECT_EQ(c.stats().waiters_woken, 1u);
}

TEST(CoalescerTest, FailedFillFailsCurrentWaitersAndNextJoinLeadsAfresh) {
    Coalescer c(10);
    IoThread io_a, io_b;
    const auto k = key_for("/b?exchange=bybit");
    auto leader = c.join(k);
    auto w1 = c.join(k);
    auto w2 = c.join(k);
    auto f1 = spawn_wait(c, w1, io_a, 30s);
    auto f2 = spawn_wait(c, w2, io_b, 30s);
    ASSERT_TRUE(eventually([&] { return c.stats().waiters_slept == 2; }));
    c.complete(leader, FillResult{entry("should be dropped"), Outcome::failed});
    for (auto* f : {&f1, &f2}) {
        ASSERT_EQ(f->wait_for(10s), std::future_status::ready);
        const auto s = f->get();
        ASSERT_TRUE(s.result);
        EXPECT_EQ(s.result->outcome, Outcome::failed);
        EXPECT_EQ(s.result->entry, nullptr);  // nothing to share
    }
    auto next = c.join(k);
    EXPECT_TRUE(next.leader());
    EXPECT_EQ(c.stats().leaders, 2u);
}

TEST(CoalescerTest, NotShareableIsNotShared) {
    Coalescer c(10);
    IoThread io;
    const auto k = key_for("/b?exchange=bybit");
    auto leader = c.join(k);
    auto w = c.join(k);
    auto f = spawn_wait(c, w, io, 30s);
    ASSERT_TRUE(eventually([&] { return c.stats().waiters_slept == 1; }));
    c.complete(leader, FillResult{entry("has Set-Cookie"), Outcome::not_shareable});
    ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
    const auto s = f.get();
    ASSERT_TRUE(s.result);
    EXPECT_EQ(s.result->outcome, Outcome::not_shareable);
    EXPECT_EQ(s.result->entry, nullptr);  // the waiter fetches for itself
}

TEST(CoalescerTest, StoredWithoutEntryCountsAsFailed) {
    Coalescer c(10);
    const auto k = key_for("/b?exchange=bybit");
    auto leader = c.join(k);
    auto w = c.join(k);
    c.complete(leader, FillResult{nullptr, Outcome::stored});
    IoThread io;
    auto f = spawn_wait(c, w, io, 30s);
    ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
    EXPECT_EQ(f.get().result->outcome, Outcome::failed);
}

TEST(CoalescerTest, WaiterTimesOut) {
    Coalescer c(10);
    IoThread io;
    const auto k = key_for("/b?exchange=bybit");
    auto leader = c.join(k);
    auto w = c.join(k);
    auto f = spawn_wait(c, w, io, 20ms);  // the coalesce timeout, not a TTL
    ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
    EXPECT_FALSE(f.get().result.has_value());
    EXPECT_EQ(c.stats().waiter_timeouts, 1u);
    // A late outcome is dropped for the timed-out waiter; the flight still completes.
    c.complete(leader, FillResult{entry("late"), Outcome::stored});
    EXPECT_EQ(c.in_flight(), 0u);
    EXPECT_EQ(c.stats().waiters_woken, 0u);
}

TEST(CoalescerTest, MaxWaitersBoundsTheQueue) {
    Coalescer c(2);
    IoThread io;
    const auto k = key_for("/b?exchange=bybit");
    auto leader = c.join(k);
    auto w1 = c.join(k);
    auto w2 = c.join(k);
    auto w3 = c.join(k);
    EXPECT_TRUE(w1.waiter());
    EXPECT_TRUE(w2.waiter());
    EXPECT_TRUE(w3.rejected());
    EXPECT_EQ(c.stats().queue_full, 1u);
    // A rejected caller gets nullopt at once and fetches on its own.
    auto f = spawn_wait(c, w3, io, 30s);
    ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
    EXPECT_FALSE(f.get().result);
    // A waiter that leaves frees its place.
    w1 = Coalescer::Ticket{};
    auto w4 = c.join(k);
    EXPECT_TRUE(w4.waiter());
    EXPECT_TRUE(c.join(k).rejected());
    EXPECT_EQ(c.stats().queue_full, 2u);
}

TEST(CoalescerTest, TimedOutWaiterFreesItsPlace) {
    Coalescer c(1);
    IoThread io;
    const auto k = key_for("/b?exchange=bybit");
    auto leader = c.join(k);
    auto w1 = c.join(k);
    ASSERT_TRUE(c.join(k).rejected());
    auto f = spawn_wait(c, w1, io, 10ms);
    ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
    EXPECT_TRUE(c.join(k).waiter());
}

TEST(CoalescerTest, LeaderDroppedWithoutCompletingReleasesWaiters) {
    Coalescer c(10);
    IoThread io_a, io_b;
    const auto k = key_for("/b?exchange=bybit");
    auto leader = std::make_unique<Coalescer::Ticket>(c.join(k));
    ASSERT_TRUE(leader->leader());
    auto w1 = c.join(k);
    auto w2 = c.join(k);
    auto f1 = spawn_wait(c, w1, io_a, 30s);
    auto f2 = spawn_wait(c, w2, io_b, 30s);
    ASSERT_TRUE(eventually([&] { return c.stats().waiters_slept == 2; }));
    leader.reset();  // e.g. the leader's session died mid-fetch
    for (auto* f : {&f1, &f2}) {
        ASSERT_EQ(f->wait_for(10s), std::future_status::ready);
        const auto s = f->get();
        ASSERT_TRUE(s.result);
        EXPECT_EQ(s.result->outcome, Outcome::failed);
    }
    EXPECT_EQ(c.stats().abandoned_fills, 1u);
    EXPECT_EQ(c.in_flight(), 0u);
    EXPECT_TRUE(c.join(k).leader());
}

TEST(CoalescerTest, MovedLeaderTicketCompletesOnce) {
    Coalescer c(10);
    const auto k = key_for("/b?exchange=bybit");
    auto leader = c.join(k);
    Coalescer::Ticket moved = std::move(leader);
    EXPECT_EQ(leader.role(), Coalescer::Ticket::Role::none);
    EXPECT_TRUE(moved.leader());
    EXPECT_EQ(c.in_flight(), 1u);
    c.complete(leader, FillResult{entry("x"), Outcome::stored});  // empty ticket: no-op
    EXPECT_EQ(c.in_flight(), 1u);
    c.complete(moved, FillResult{entry("x"), Outcome::stored});
    EXPECT_EQ(c.in_flight(), 0u);
    EXPECT_EQ(c.stats().abandoned_fills, 0u);
}

TEST(CoalescerTest, LeadIfIdleStartsOnlyOneBackgroundRefresh) {
    Coalescer c(10);
    const auto k = key_for("/b?exchange=bybit");
    auto refresh = c.lead_if_idle(k);
    EXPECT_TRUE(refresh.leader());
    auto second = c.lead_if_idle(k);
    EXPECT_EQ(second.role(), Coalescer::Ticket::Role::none);
    EXPECT_TRUE(c.join(k).waiter());  // a foreground miss may still queue behind it
    c.complete(refresh, FillResult{entry("x"), Outcome::stored});
    EXPECT_TRUE(c.lead_if_idle(k).leader());
}

TEST(CoalescerTest, ManyRoundsUnderContention) {
    // Several threads race join/complete on one key; every waiter must end with
    // an outcome (never hang) and each round has exactly one leader.
    Coalescer c(1000);
    IoThread io_a, io_b;
    const auto k = key_for("/b?exchange=bybit");
    for (int round = 0; round < 50; ++round) {
        auto leader = c.join(k);
        ASSERT_TRUE(leader.leader());
        std::vector<Coalescer::Ticket> tickets(8);
        std::vector<std::future<Seen>> seen;
        for (int i = 0; i < 8; ++i) {
            tickets[i] = c.join(k);
            seen.push_back(spawn_wait(c, tickets[i], i % 2 ? io_a : io_b, 30s));
        }
        const auto e = entry(std::to_string(round));
        c.complete(leader, FillResult{e, Outcome::stored});  // races with the waits being armed
        for (auto& f : seen) {
            ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
            const auto s = f.get();
            ASSERT_TRUE(s.result);
            EXPECT_EQ(s.result->entry, e);
        }
    }
    EXPECT_EQ(c.stats().waiters_woken, 400u);
    EXPECT_EQ(c.stats().waiter_timeouts, 0u);
}


// --------------------------------------------------------------- every outcome is shared

TEST(CoalescerTest, AnAnswerGoesToEveryWaiterAndIsHeldUntilItsDeadline) {
    Coalescer c(10);
    IoThread io;
    const auto k = key_for("/b?exchange=bybit");
    const TimePoint t0{std::chrono::seconds(100)};
    auto leader = c.join(k, t0);
    ASSERT_TRUE(leader.leader());
    auto w1 = c.join(k, t0);
    auto w2 = c.join(k, t0);
    auto f1 = spawn_wait(c, w1, io, 30s);
    auto f2 = spawn_wait(c, w2, io, 30s);
    const auto e500 = entry("upstream said 500");
    c.complete(leader, FillResult{e500, Outcome::answer, 0, "status"}, t0 + 1s);
    for (auto* f : {&f1, &f2}) {
        ASSERT_EQ(f->wait_for(10s), std::future_status::ready);
        const auto s = f->get();
        ASSERT_TRUE(s.result);
        EXPECT_EQ(s.result->outcome, Outcome::answer);
        EXPECT_EQ(s.result->entry, e500);  // the one entry, shared
    }
    // Within the hold: no new fill, the same answer at once.
    auto held = c.join(k, t0 + 900ms);
    EXPECT_TRUE(held.held());
    auto fh = spawn_wait(c, held, io, 30s);
    ASSERT_EQ(fh.wait_for(10s), std::future_status::ready);
    EXPECT_EQ(fh.get().result->entry, e500);
    EXPECT_FALSE(c.lead_if_idle(k, t0 + 900ms).leader()) << "no background refresh during a hold";
    // Past it: a fresh fill.
    EXPECT_TRUE(c.join(k, t0 + 1s).leader());
    EXPECT_EQ(c.stats().leaders, 2u);
    EXPECT_EQ(c.stats().held_served, 1u);
}

TEST(CoalescerTest, AFailureCarriesItsStatusAndAnUnheldOneIsNotKept) {
    Coalescer c(10);
    IoThread io;
    const auto k = key_for("/b?exchange=bybit");
    auto leader = c.join(k);
    auto w = c.join(k);
    auto f = spawn_wait(c, w, io, 30s);
    c.complete(leader, FillResult{nullptr, Outcome::failed, 504, "upstream-error"});  // no hold
    ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
    const auto s = f.get();
    ASSERT_TRUE(s.result);
    EXPECT_EQ(s.result->outcome, Outcome::failed);
    EXPECT_EQ(s.result->status, 504u);
    EXPECT_TRUE(c.join(k).leader());
}

TEST(CoalescerTest, AStoredOutcomeIsNeverHeld) {
    Coalescer c(10);
    const auto k = key_for("/b?exchange=bybit");
    const TimePoint t0{std::chrono::seconds(100)};
    auto leader = c.join(k, t0);
    c.complete(leader, FillResult{entry("ok"), Outcome::stored}, t0 + 10s);
    EXPECT_TRUE(c.join(k, t0 + 1s).leader());  // the store answers fresh data; the coalescer holds only failures
}

TEST(CoalescerTest, UnshareableWaitersGoUpstreamAFewAtATime) {
    Coalescer c(100, /*max_unshared=*/2);
    IoThread io;
    const auto k = key_for("/b?exchange=bybit");
    auto leader = c.join(k);
    constexpr int kWaiters = 6;
    std::vector<Coalescer::Ticket> tickets;
    for (int i = 0; i < kWaiters; ++i) tickets.push_back(c.join(k));
    std::vector<std::future<Seen>> seen;
    for (auto& t : tickets) seen.push_back(spawn_wait(c, t, io, 30s));
    ASSERT_TRUE(eventually([&] { return c.stats().waiters_slept == kWaiters; }));
    c.complete(leader, FillResult{nullptr, Outcome::not_shareable, 502, "set_cookie"});

    // Two get their turn; the rest sleep until a turn is passed on.
    auto holding_a_turn = [&] {  // woken and not done yet
        int n = 0;
        for (auto& f : seen) n += f.valid() && f.wait_for(0s) == std::future_status::ready;
        return n;
    };
    ASSERT_TRUE(eventually([&] { return holding_a_turn() == 2; }));
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(holding_a_turn(), 2);
    EXPECT_EQ(c.stats().unshared_turns, 2u);
    // Each waiter done with its own fetch (its ticket released) lets one more
    // go; never more than two at once.
    int released = 0;
    while (released < kWaiters) {
        ASSERT_TRUE(eventually([&] { return holding_a_turn() >= 1; }));
        EXPECT_LE(holding_a_turn(), 2);
        for (std::size_t i = 0; i < seen.size(); ++i) {
            if (!seen[i].valid() || seen[i].wait_for(0s) != std::future_status::ready) continue;
            const auto got = seen[i].get();
            ASSERT_TRUE(got.result);
            EXPECT_EQ(got.result->outcome, Outcome::not_shareable);
            tickets[i] = Coalescer::Ticket{};  // done: passes the turn on
            ++released;
            break;
        }
    }
    EXPECT_EQ(released, kWaiters);
    EXPECT_EQ(c.stats().unshared_turns, static_cast<std::uint64_t>(kWaiters));
}

TEST(CoalescerTest, AnAbandonedWaiterHandsItsTurnOn) {
    Coalescer c(100, /*max_unshared=*/1);
    IoThread io;
    const auto k = key_for("/b?exchange=bybit");
    auto leader = c.join(k);
    auto gone = c.join(k);  // will be dropped before the outcome
    auto w = c.join(k);
    auto fw = spawn_wait(c, w, io, 30s);
    ASSERT_TRUE(eventually([&] { return c.stats().waiters_slept == 1; }));
    gone = Coalescer::Ticket{};
    c.complete(leader, FillResult{nullptr, Outcome::not_shareable, 502, "too-large"});
    ASSERT_EQ(fw.wait_for(10s), std::future_status::ready) << "the one turn was not lost with the abandoned waiter";
    EXPECT_EQ(fw.get().result->outcome, Outcome::not_shareable);
}

}  // namespace
}  // namespace cacheproxy::cache
