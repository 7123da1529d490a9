#include "support/invalidation_helpers.hpp"

#include "support/json_lite.hpp"

#include <cmath>
#include <limits>

namespace cacheproxy::e2e {

// ------------------------------------------------------------------ rules

std::string order_triggers() {
    return "  - name: order_placed\n"
           "    match: { method: POST, path: /api/trading/order }\n"
           "    success: { status: 2xx, field: success, equals: true }\n"
           "    invalidate: [positions, balance, orders]\n"
           "    scope: { exchange: body.exchange, account_type: body.account_type }\n"
           "  - name: order_cancelled\n"
           "    match: { method: DELETE, path: \"/api/trading/order/{id}\" }\n"
           "    invalidate: [orders, balance]\n"
           "    scope: { exchange: query.exchange, account_type: query.account_type }\n";
}

std::string invalidation_rules(const std::string& ttl, const std::string& triggers_yaml) {
    return rules_yaml(per_user_route("positions", "/api/trading/positions", ttl) +
                      per_user_route("balance", "/api/trading/balance", ttl) +
                      per_user_route("orders", "/api/trading/orders", ttl) + "triggers:\n" + triggers_yaml);
}

// ------------------------------------------------------------------ targets and bodies

std::string positions_target(const std::string& exchange, const std::string& account_type) {
    return "/api/trading/positions?exchange=" + exchange + "&account_type=" + account_type;
}

std::string orders_target(const std::string& exchange, const std::string& account_type) {
    return "/api/trading/orders?exchange=" + exchange + "&account_type=" + account_type;
}

std::string OrderBody::json() const {
    std::string out = "{";
    auto add = [&](const char* name, const std::optional<std::string>& v, bool quoted) {
        if (!v) return;
        if (out.size() > 1) out += ",";
        out += "\"" + std::string(name) + "\":";
        out += quoted ? "\"" + *v + "\"" : *v;
    };
    add("exchange", exchange, true);
    add("account_type", account_type, true);
    add("symbol", symbol, true);
    add("side", side, true);
    add("qty", qty, false);
    add("type", type, true);
    add("price", price, false);
    return out + "}";
}

Response place_order(std::uint16_t port, const Headers& auth, const std::string& body,
                     std::chrono::milliseconds timeout) {
    Headers h = auth;
    h.emplace_back("Content-Type", "application/json");
    return http_request(port, "POST", "/api/trading/order", h, body, timeout);
}

int success_of(const Response& r) {
    auto j = body_json(r);
    if (!j || (*j)["success"].kind != Json::Kind::boolean) return -1;
    return (*j)["success"].boolean ? 1 : 0;
}

std::string order_id_of(const Response& r) {
    auto j = body_json(r);
    if (!j) return {};
    return (*j)["order_id"].as_string();
}

double position_size(const Response& r, const std::string& symbol, const std::string& side) {
    auto j = body_json(r);
    if (!j || (*j)["positions"].kind != Json::Kind::array) return -1;
    double total = 0;
    const Json& list = (*j)["positions"];
    for (std::size_t i = 0; i < list.size(); ++i) {
        const Json& p = list.at(i);
        if (p["symbol"].as_string() == symbol && p["side"].as_string() == side) total += p["size"].number;
    }
    return total;
}

bool lists_order(const Response& r, const std::string& order_id) {
    auto j = body_json(r);
    if (!j) return false;
    const Json& list = (*j)["orders"];
    for (std::size_t i = 0; i < list.size(); ++i)
        if (list.at(i)["order_id"].as_string() == order_id) return true;
    return false;
}

double available_of(const Response& r) {
    auto j = body_json(r);
    if (!j || (*j)["available"].kind != Json::Kind::number) return std::numeric_limits<double>::quiet_NaN();
    return (*j)["available"].number;
}

// ------------------------------------------------------------------ admin

Response admin_post(std::uint16_t admin_port, const std::string& target, const Headers& headers) {
    return http_request(admin_port, "POST", target, headers, {}, std::chrono::seconds(5));
}

long long dropped_of(const Response& r) {
    auto j = body_json(r);
    if (!j || (*j)["dropped"].kind != Json::Kind::number) return -1;
    return (*j)["dropped"].as_int();
}

}  // namespace cacheproxy::e2e
