#include "app/reload.hpp"
#include "app/socket_activation.hpp"

#include <gtest/gtest.h>

namespace cacheproxy::app {
namespace {

config::Config base() {
    config::Config c;
    c.rules_path = "/etc/cacheproxy/rules.yaml";
    rules::RouteRule r;
    r.name = "ticker";
    r.path = "/ticker";
    r.shared = true;
    c.rules.routes = {r};
    return c;
}

TEST(Reload, OnlyTheRulesMayChange) {
    auto next = base();
    next.rules.routes[0].ttl = std::chrono::seconds(99);
    next.rules_path = "/etc/cacheproxy/other.yaml";
    next.source_path = "/elsewhere.yaml";
    EXPECT_EQ(config_restart_needed(base(), next), std::nullopt);
}

TEST(Reload, AConfigChangeIsRefusedNamingItsKey) {
    const auto refusal = [](void (*change)(config::Config&)) {
        auto next = base();
        change(next);
        return config_restart_needed(base(), next).value_or("");
    };
    EXPECT_EQ(refusal([](config::Config& c) { c.listen.port = 9999; }), "listen: changed: needs a restart");
    EXPECT_EQ(refusal([](config::Config& c) { c.threads = 7; }), "threads: changed: needs a restart");
    EXPECT_EQ(refusal([](config::Config& c) { c.upstream.url = "http://10.0.0.1:80"; }),
              "upstream.url: changed: needs a restart");
    EXPECT_EQ(refusal([](config::Config& c) { c.upstream.health_interval = std::chrono::seconds(9); }),
              "upstream.health.interval: changed: needs a restart");
    EXPECT_EQ(refusal([](config::Config& c) { c.limits.max_body_bytes = 1; }),
              "limits.max_body_bytes: changed: needs a restart");
    EXPECT_EQ(refusal([](config::Config& c) { c.admin.listen.port = 1; }), "admin.listen: changed: needs a restart");
    EXPECT_EQ(refusal([](config::Config& c) { c.admin.token = "secret"; }), "admin.token: changed: needs a restart");
    EXPECT_EQ(refusal([](config::Config& c) { c.timeouts.push_back({"/api", std::nullopt, std::nullopt}); }),
              "timeouts: changed: needs a restart");
    EXPECT_EQ(refusal([](config::Config& c) { c.rules_path.clear(); }),
              "rules: turning the cache on or off needs a restart");
}

TEST(SocketActivation, TheSocketIsFd3WhenPassedToThisProcess) {
    EXPECT_EQ(activated_fd("1234", "1", 1234), 3);
    EXPECT_EQ(activated_fd("1234", "2", 1234), 3);  // the first of several
}

TEST(SocketActivation, NothingPassedOrPassedToAnotherProcess) {
    EXPECT_EQ(activated_fd(nullptr, nullptr, 1234), std::nullopt);
    EXPECT_EQ(activated_fd("1234", nullptr, 1234), std::nullopt);
    EXPECT_EQ(activated_fd("999", "1", 1234), std::nullopt);  // a parent's, inherited
    EXPECT_EQ(activated_fd("1234", "0", 1234), std::nullopt);
    EXPECT_EQ(activated_fd("1234", "x", 1234), std::nullopt);
    EXPECT_EQ(activated_fd("12a34", "1", 1234), std::nullopt);
    EXPECT_EQ(activated_fd("", "1", 1234), std::nullopt);
}

}  // namespace
}  // namespace cacheproxy::app
