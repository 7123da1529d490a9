#include "invalidation/write_outcome.hpp"

#include "cache/query_string.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <charconv>
#include <optional>

namespace cacheproxy::invalidation {
namespace {

using rules::ScopeField;

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/// `raw` %-decoded (and '+' -> ' ' when `plus_is_space`, as in a query), the way
/// the application reads it; nullopt on a malformed escape (the cache never keys
/// on those, and which value the application saw is not ours to guess).
std::optional<std::string> decode(std::string_view raw, bool plus_is_space) {
    std::string out;
    out.reserve(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) {
        const char c = raw[i];
        if (c == '+' && plus_is_space) {
            out.push_back(' ');
        } else if (c == '%') {
            if (i + 2 >= raw.size()) return std::nullopt;
            const int hi = hex_value(raw[i + 1]);
            const int lo = hex_value(raw[i + 2]);
            if (hi < 0 || lo < 0) return std::nullopt;
            out.push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        } else {
            out.push_back(c);
        }
    }
    return out;
}

/// The top-level object of `body`, or nullopt when it is not a JSON object.
std::optional<boost::json::object> parse_object(std::string_view body) {
    boost::system::error_code ec;
    boost::json::value value = boost::json::parse(body, ec);
    if (ec || !value.is_object()) return std::nullopt;
    return std::move(value.as_object());
}

/// A JSON string's value, or a number's shortest decimal form; nullopt for anything else.
std::optional<std::string> scalar_text(const boost::json::value& v) {
    if (const auto* s = v.if_string()) return std::string(s->data(), s->size());
    char buffer[64];
    std::to_chars_result r{};
    if (const auto* i = v.if_int64())
        r = std::to_chars(buffer, buffer + sizeof buffer, *i);
    else if (const auto* u = v.if_uint64())
        r = std::to_chars(buffer, buffer + sizeof buffer, *u);
    else if (const auto* d = v.if_double())
        r = std::to_chars(buffer, buffer + sizeof buffer, *d);  // shortest round-trip form
    else
        return std::nullopt;
    if (r.ec != std::errc{}) return std::nullopt;
    return std::string(buffer, r.ptr);
}

/// One scope field's value from the request; nullopt = cannot tell (widen).
std::optional<std::string> field_value(const ScopeField& field, const std::optional<boost::json::object>& body,
                                       std::string_view target, std::span<const PathParam> path_params) {
    switch (field.source) {
    case ScopeField::Source::body: {
        if (!body) return std::nullopt;
        const boost::json::value* v = body->if_contains(field.name);
        if (!v) return std::nullopt;
        return scalar_text(*v);
    }
    case ScopeField::Source::query: {
        const cache::ParamLookup p = cache::find_param(cache::query_of(target), field.name);
        if (p.count != 1 || p.ambiguous) return std::nullopt;  // absent, or which one the app takes is unclear
        return decode(p.raw_value, true);
    }
    case ScopeField::Source::path: {
        auto it = std::find_if(path_params.begin(), path_params.end(),
                               [&](const PathParam& p) { return p.first == field.name; });
        if (it == path_params.end()) return std::nullopt;
        return decode(it->second, false);
    }
    }
    return std::nullopt;
}

}  // namespace

bool needs_request_body(const rules::TriggerRule& rule) {
    return std::any_of(rule.scope.begin(), rule.scope.end(),
                       [](const ScopeField& f) { return f.source == ScopeField::Source::body; });
}

WriteOutcome evaluate(const rules::TriggerRule& rule, unsigned status, std::string_view response_body,
                      bool body_complete) {
    if (status / 100 != rule.success_status_class) return WriteOutcome::failure;
    if (rule.success_field.empty()) return WriteOutcome::success;
    if (!body_complete || response_body.size() > rule.max_body_bytes) return WriteOutcome::unknown;
    const auto object = parse_object(response_body);
    if (!object) return WriteOutcome::unknown;
    const boost::json::value* field = object->if_contains(rule.success_field);
    // Missing, or not a boolean ("true", 1, null): the app said something we do not
    // understand, so the write may have happened.
    if (!field || !field->is_bool()) return WriteOutcome::unknown;
    return field->get_bool() == rule.success_equals ? WriteOutcome::success : WriteOutcome::failure;
}

Scope extract_scope(const rules::TriggerRule& rule, std::string_view request_body, bool body_complete,
                    std::string_view target, std::span<const PathParam> path_params) {
    Scope scope;
    std::optional<boost::json::object> body;
    if (needs_request_body(rule)) {
        if (body_complete && request_body.size() <= rule.max_body_bytes) body = parse_object(request_body);
        if (!body) {
            scope.widened = true;
            return scope;
        }
    }
    scope.params.reserve(rule.scope.size());
    for (const ScopeField& field : rule.scope) {
        auto value = field_value(field, body, target, path_params);
        if (!value) {
            scope.widened = true;
            scope.params.clear();
            return scope;
        }
        scope.params.emplace_back(field.key, std::move(*value));
    }
    return scope;
}

std::string percent_encode(std::string_view value) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        const auto u = static_cast<unsigned char>(c);
        if ((u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~') {
            out.push_back(c);
        } else {
            out.push_back('%');
            out.push_back(hex[u >> 4]);
            out.push_back(hex[u & 0xF]);
        }
    }
    return out;
}

std::string scope_target(const rules::RouteRule& route, const Scope& scope) {
    if (scope.widened || !route.key.headers.empty()) return {};
    std::string target = route.path;
    char separator = '?';
    for (const std::string& name : route.key.query) {
        auto it = std::find_if(scope.params.begin(), scope.params.end(),
                               [&](const auto& p) { return p.first == name; });
        if (it == scope.params.end()) return {};  // the entry also varies on this: cannot name one key
        target += separator;
        target += percent_encode(name);
        target += '=';
        target += percent_encode(it->second);
        separator = '&';
    }
    return target;
}

}  // namespace cacheproxy::invalidation
