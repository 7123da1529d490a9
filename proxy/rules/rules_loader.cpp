#include "rules/rules_loader.hpp"

#include "yaml/units.hpp"
#include "yaml/yaml_reader.hpp"
#include "util/ascii.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <exception>
#include <iterator>
#include <optional>
#include <string_view>
#include <vector>

namespace cacheproxy::rules {
namespace {

using config::YamlReader;

/// A rule that reads fine but makes no sense: the dotted key to blame and why.
struct Problem {
    std::string key;
    std::string message;
};

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

/// RFC 9110 token characters, the only ones a header name may use.
bool is_token(std::string_view name) {
    constexpr std::string_view extra = "!#$%&'*+-.^_`|~";
    return !name.empty() && std::all_of(name.begin(), name.end(), [&](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || extra.find(c) != std::string_view::npos;
    });
}

/// Route names appear in stats and logs: keep them to [a-z0-9_]+.
bool is_rule_name(std::string_view name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    });
}

/// Why `path` cannot be matched exactly against a request target, if it cannot.
std::optional<std::string> path_problem(std::string_view path) {
    if (path.empty() || path.front() != '/') return "must start with '/', got " + quoted(path);
    for (char c : path) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x21 || u > 0x7e) return "must be printable ASCII without spaces, got " + quoted(path);
        if (std::string_view("?#%;*").find(c) != std::string_view::npos)
            return std::string("must not contain '") + c +
                   "': a rule matches one exact path (no query, fragment, percent-encoding, parameters or wildcards)";
    }
    if (path.find("//") != std::string_view::npos) return "must not contain '//'";
    if (path.size() > 1 && path.back() == '/') return "must not end with '/'";
    if (path.find("/./") != std::string_view::npos || path.find("/../") != std::string_view::npos ||
        path.ends_with("/.") || path.ends_with("/.."))
        return "must not contain '.' or '..' segments";
    return std::nullopt;
}

/// The first empty, malformed or repeated name in `names` (a query or header list).
std::optional<Problem> list_problem(const std::vector<std::string>& names, const std::string& key, bool headers) {
    for (std::size_t i = 0; i < names.size(); ++i) {
        std::string at = key + "[" + std::to_string(i) + "]";
        if (names[i].empty()) return Problem{at, "must not be empty"};
        if (headers && !is_token(names[i])) return Problem{at, "not a valid header name: " + quoted(names[i])};
        if (std::find(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(i), names[i]) !=
            names.begin() + static_cast<std::ptrdiff_t>(i))
            return Problem{at, "listed twice: " + quoted(names[i])};
    }
    return std::nullopt;
}

/// Checks one route on its own; `at` is "routes[i]".
std::optional<Problem> route_problem(const RouteRule& r, const std::string& at) {
    if (!is_rule_name(r.name))
        return Problem{at + ".name", "bad name " + quoted(r.name) + " (use only a-z, 0-9 and _)"};
    if (r.method != "GET")
        return Problem{at + ".match.method",
                       "only GET responses are cached (HEAD is answered from GET entries), got " + quoted(r.method)};
    if (auto why = path_problem(r.path)) return Problem{at + ".match.path", *why};
    if (r.ttl <= Duration::zero()) return Problem{at + ".ttl", "ttl must be > 0"};
    if (!r.key.identity && !r.shared)
        return Problem{at + ".key.identity",
                       "the cache key does not include the user's identity and the route does not say "
                       "shared: true, so one user's response would be served to another; set key.identity: true "
                       "(one entry per user) or shared: true (the same answer for everyone)"};
    if (r.key.identity && r.shared)
        return Problem{at + ".shared",
                       "shared: true contradicts key.identity: true (a shared entry is the same for every user)"};
    if (r.refresh_ahead >= r.ttl)
        return Problem{at + ".refresh_ahead",
                       "must be shorter than ttl (" + config::format_duration(r.ttl) + ")"};
    if (r.max_entries < 1) return Problem{at + ".max_entries", "must be >= 1"};
    if (r.max_object_bytes < 1) return Problem{at + ".max_object_bytes", "must be >= 1"};
    // Upper bounds: values the store would truncate or could never honour.
    constexpr std::size_t GiB = 1024 * 1024 * 1024;
    if (r.max_entries > 100'000'000) return Problem{at + ".max_entries", "at most 100000000"};
    if (r.max_object_bytes > 1 * GiB) return Problem{at + ".max_object_bytes", "at most 1GiB"};
    if (r.max_bytes > 1024 * GiB) return Problem{at + ".max_bytes", "at most 1024GiB"};
    const std::pair<const char*, Duration> windows[] = {{".ttl", r.ttl},
                                                        {".stale_while_revalidate", r.stale_while_revalidate},
                                                        {".stale_if_error", r.stale_if_error}};
    for (const auto& [key, d] : windows)
        if (d > std::chrono::hours(24 * 365)) return Problem{at + key, "at most a year"};
    if (r.max_bytes < r.max_object_bytes)
        return Problem{at + ".max_bytes", "must be >= max_object_bytes (" +
                                              config::format_size(r.max_object_bytes) + ")"};
    if (r.statuses.empty()) return Problem{at + ".statuses", "list at least one cacheable status"};
    for (std::size_t i = 0; i < r.statuses.size(); ++i)
        if (r.statuses[i] < 200 || r.statuses[i] > 599)
            return Problem{at + ".statuses[" + std::to_string(i) + "]",
                           "status " + std::to_string(r.statuses[i]) + " is outside 200..599"};
    if (auto p = list_problem(r.key.query, at + ".key.query", false)) return p;
    if (auto p = list_problem(r.key.headers, at + ".key.headers", true)) return p;
    return std::nullopt;
}

/// A trigger path's segments: "/api/order/{id}" -> {"api", "order", "{id}"}.
std::vector<std::string_view> segments_of(std::string_view path) {
    std::vector<std::string_view> out;
    if (path.empty() || path.front() != '/') return out;
    std::size_t pos = 1;
    while (true) {
        std::size_t slash = path.find('/', pos);
        out.push_back(path.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos));
        if (slash == std::string_view::npos) return out;
        pos = slash + 1;
    }
}

/// The name of a "{name}" segment; nullopt for a literal one.
std::optional<std::string_view> param_of(std::string_view segment) {
    if (segment.size() < 2 || segment.front() != '{' || segment.back() != '}') return std::nullopt;
    return segment.substr(1, segment.size() - 2);
}

/// Path parameter names: [A-Za-z0-9_]+.
bool is_param_name(std::string_view name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    });
}

/// Why a trigger's `path` cannot be matched, if it cannot: the route rules (which
/// let '{' and '}' through), and every segment either literal or exactly "{name}".
std::optional<std::string> trigger_path_problem(std::string_view path) {
    if (auto why = path_problem(path)) return why;
    std::vector<std::string_view> names;
    for (std::string_view segment : segments_of(path)) {
        if (auto name = param_of(segment)) {
            if (!is_param_name(*name))
                return "bad parameter " + quoted(segment) + " (write {name} with only A-Z, a-z, 0-9 and _)";
            if (std::find(names.begin(), names.end(), *name) != names.end())
                return "parameter " + quoted(segment) + " appears twice";
            names.push_back(*name);
        } else if (segment.find_first_of("{}") != std::string_view::npos) {
            return "a segment is either literal or exactly {name}, got " + quoted(segment);
        }
    }
    return std::nullopt;
}

/// "/api/order/{id}" -> "/api/order/{}": two triggers with the same shape match the same requests.
std::string path_shape(std::string_view path) {
    std::string out;
    for (std::string_view segment : segments_of(path)) out += param_of(segment) ? "/{}" : "/" + std::string(segment);
    return out;
}

/// Checks one trigger against the routes; `at` is "triggers[i]".
std::optional<Problem> trigger_problem(const TriggerRule& t, const std::string& at,
                                       const std::vector<RouteRule>& routes) {
    if (!is_rule_name(t.name))
        return Problem{at + ".name", "bad name " + quoted(t.name) + " (use only a-z, 0-9 and _)"};
    static constexpr std::string_view methods[] = {"POST", "PUT", "PATCH", "DELETE"};
    if (std::find(std::begin(methods), std::end(methods), t.method) == std::end(methods))
        return Problem{at + ".match.method", "a trigger matches a write: POST, PUT, PATCH or DELETE, got " +
                                                 quoted(t.method)};
    if (auto why = trigger_path_problem(t.path)) return Problem{at + ".match.path", *why};
    if (t.max_body_bytes < 1) return Problem{at + ".max_body_bytes", "must be >= 1"};
    if (t.max_body_bytes > 64 * 1024 * 1024) return Problem{at + ".max_body_bytes", "at most 64MiB"};

    if (t.invalidate.empty() && !t.drop_credential)
        return Problem{at + ".invalidate", "list at least one route whose entries this write makes stale"};
    if (auto p = list_problem(t.invalidate, at + ".invalidate", false)) return p;
    std::vector<const RouteRule*> targets;
    for (std::size_t i = 0; i < t.invalidate.size(); ++i) {
        std::string key = at + ".invalidate[" + std::to_string(i) + "]";
        auto it = std::find_if(routes.begin(), routes.end(), [&](const RouteRule& r) { return r.name == t.invalidate[i]; });
        if (it == routes.end()) return Problem{key, "no route named " + quoted(t.invalidate[i])};
        if (!it->key.identity)
            return Problem{key, "route " + quoted(it->name) +
                                    " is shared by every user: a write invalidates only the writer's own entries "
                                    "(per-user routes, key.identity: true)"};
        targets.push_back(&*it);
    }

    const std::vector<std::string_view> segments = segments_of(t.path);
    for (const ScopeField& field : t.scope) {
        std::string key = at + ".scope." + field.key;
        if (field.source == ScopeField::Source::path &&
            std::none_of(segments.begin(), segments.end(), [&](std::string_view s) { return param_of(s) == field.name; }))
            return Problem{key, "path." + field.name + " names no {" + field.name + "} segment of " + quoted(t.path)};
        for (const RouteRule* r : targets)
            if (std::find(r->key.query.begin(), r->key.query.end(), field.key) == r->key.query.end())
                return Problem{key, "scope key " + field.key + " is not a key parameter of route " + r->name};
    }
    return std::nullopt;
}

/// Checks what the strict reading cannot: values, and routes against each other.
std::optional<Problem> rules_problem(const RuleSet& rules) {
    static constexpr const char* kinds[] = {"identity.header", "identity.cookie", "identity.query"};
    const char* identity_key = kinds[static_cast<int>(rules.identity.kind)];
    if (rules.identity.name.empty()) return Problem{identity_key, "must not be empty"};
    if (rules.identity.kind == IdentitySource::Kind::header && !is_token(rules.identity.name))
        return Problem{identity_key, "not a valid header name: " + quoted(rules.identity.name)};
    if (rules.coalesce_timeout <= Duration::zero()) return Problem{"coalesce.timeout", "must be > 0"};
    if (rules.coalesce_error_hold > std::chrono::minutes(1))
        return Problem{"coalesce.error_hold", "at most 1m: a failure is held, not cached"};
    if (rules.max_unshared < 1 || rules.max_unshared > 1000)
        return Problem{"coalesce.max_unshared", "must be 1 to 1000"};
    if (rules.max_waiters > 1000000) return Problem{"coalesce.max_waiters", "at most 1000000"};

    for (std::size_t i = 0; i < rules.routes.size(); ++i) {
        const RouteRule& r = rules.routes[i];
        std::string at = "routes[" + std::to_string(i) + "]";
        if (auto p = route_problem(r, at)) return p;
        for (std::size_t j = 0; j < i; ++j) {
            const RouteRule& earlier = rules.routes[j];
            std::string other = "routes[" + std::to_string(j) + "] (" + earlier.name + ")";
            if (earlier.name == r.name) return Problem{at + ".name", "duplicate name, also used by " + other};
            if (earlier.path == r.path) return Problem{at + ".match.path", "same path as " + other};
        }
    }

    // Triggers last: they name routes, wherever the routes are written in the file.
    for (std::size_t i = 0; i < rules.triggers.size(); ++i) {
        const TriggerRule& t = rules.triggers[i];
        std::string at = "triggers[" + std::to_string(i) + "]";
        if (auto p = trigger_problem(t, at, rules.routes)) return p;
        for (std::size_t j = 0; j < i; ++j) {
            const TriggerRule& earlier = rules.triggers[j];
            std::string other = "triggers[" + std::to_string(j) + "] (" + earlier.name + ")";
            if (earlier.name == t.name) return Problem{at + ".name", "duplicate name, also used by " + other};
            if (earlier.method == t.method && path_shape(earlier.path) == path_shape(t.path))
                return Problem{at + ".match.path", "same method and path as " + other};
        }
    }
    return std::nullopt;
}

/// identity: { header | cookie | query: NAME }, exactly one of them.
void read_identity(YamlReader& top, IdentitySource& out) {
    if (!top.has("identity")) return;
    YamlReader identity = top.child("identity");
    static constexpr std::pair<const char*, IdentitySource::Kind> kinds[] = {
        {"header", IdentitySource::Kind::header},
        {"cookie", IdentitySource::Kind::cookie},
        {"query", IdentitySource::Kind::query}};
    int given = 0;
    for (const auto& [key, kind] : kinds) {
        if (!identity.has(key)) continue;
        ++given;
        out.kind = kind;
        identity.read_string(key, out.name);
    }
    identity.finish();
    if (given != 1) top.fail("identity", "give exactly one of header, cookie or query (e.g. { header: Authorization })");
}

/// One element of routes:, every key optional but name, match.path and ttl.
RouteRule read_route(YamlReader& r) {
    RouteRule rule;
    r.require("name");
    r.read_string("name", rule.name);

    YamlReader match = r.child("match");
    match.read_string("method", rule.method);
    match.require("path");
    match.read_string("path", rule.path);
    match.finish();

    r.require("ttl");
    r.read_duration("ttl", rule.ttl);
    r.read_unsigned("max_entries", rule.max_entries);
    r.read_size("max_bytes", rule.max_bytes);
    r.read_size("max_object_bytes", rule.max_object_bytes);

    YamlReader key = r.child("key");
    key.read_bool("identity", rule.key.identity);
    key.read_string_list("query", rule.key.query);
    key.read_string_list("headers", rule.key.headers);
    for (std::string& h : rule.key.headers)
        std::transform(h.begin(), h.end(), h.begin(), util::ascii_lower);
    key.read_bool("origin", rule.key.origin);
    key.finish();

    r.read_bool("shared", rule.shared);
    r.read_duration("stale_while_revalidate", rule.stale_while_revalidate);
    r.read_duration("stale_if_error", rule.stale_if_error);
    r.read_duration("refresh_ahead", rule.refresh_ahead);
    r.read_unsigned_list("statuses", rule.statuses);
    r.read_bool("allow_client_no_cache", rule.allow_client_no_cache);
    r.finish();
    // A shared entry is one answer for every origin only if the key says which.
    if (rule.shared && rule.key.origin &&
        std::find(rule.key.headers.begin(), rule.key.headers.end(), "origin") == rule.key.headers.end())
        rule.key.headers.push_back("origin");
    return rule;
}

/// The value under `key` in the mapping `node`; an undefined node if absent.
/// (Found by iterating: operator[] on a YAML::Node may add the key.)
YAML::Node value_in(const YAML::Node& node, std::string_view key) {
    if (!node.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
    for (auto it = node.begin(); it != node.end(); ++it)
        if (it->first.IsScalar() && it->first.Scalar() == key) return it->second;
    return YAML::Node(YAML::NodeType::Undefined);
}

/// scope: { KEY: body.NAME | query.NAME | path.NAME, ... }, in file order.
/// `raw` is the mapping itself: the reader checks types but cannot list its keys.
void read_scope(YamlReader& t, const YAML::Node& raw, std::vector<ScopeField>& out) {
    YamlReader scope = t.child("scope");
    static constexpr std::pair<std::string_view, ScopeField::Source> sources[] = {
        {"body", ScopeField::Source::body}, {"query", ScopeField::Source::query}, {"path", ScopeField::Source::path}};
    if (raw.IsMap())
        for (auto it = raw.begin(); it != raw.end(); ++it) {
            if (!it->first.IsScalar()) continue;  // the reader has reported it
            const std::string key = it->first.Scalar();
            if (std::any_of(out.begin(), out.end(), [&](const ScopeField& f) { return f.key == key; }))
                continue;  // a duplicate key: the reader has reported it
            std::string text;
            scope.read_string(key, text);
            ScopeField field;
            field.key = key;
            const std::size_t dot = text.find('.');
            const std::string_view source = std::string_view(text).substr(0, dot);
            auto known = std::find_if(std::begin(sources), std::end(sources),
                                      [&](const auto& s) { return s.first == source; });
            if (key.empty()) {
                scope.fail(key, "the key must name a query parameter of the target routes");
            } else if (dot == std::string::npos || known == std::end(sources) || dot + 1 == text.size()) {
                scope.fail(key, "expected body.NAME, query.NAME or path.NAME, got " + quoted(text));
            } else {
                field.source = known->second;
                field.name = text.substr(dot + 1);
                if (field.source == ScopeField::Source::body && field.name.find('.') != std::string::npos)
                    scope.fail(key, "only top-level fields of the JSON body can be named, got " + quoted(text));
                out.push_back(std::move(field));
            }
        }
    scope.finish();
}

/// One element of triggers:; name, match.method, match.path and invalidate are required.
/// `raw` is the element itself (for the scope's keys).
TriggerRule read_trigger(YamlReader& t, const YAML::Node& raw) {
    TriggerRule rule;
    t.require("name");
    t.read_string("name", rule.name);

    YamlReader match = t.child("match");
    match.require("method");
    match.read_string("method", rule.method);
    match.require("path");
    match.read_string("path", rule.path);
    match.finish();

    YamlReader success = t.child("success");
    if (success.has("status")) {
        std::string status;
        success.read_string("status", status);
        if (status == "2xx")
            rule.success_status_class = 2;
        else if (status == "3xx")
            rule.success_status_class = 3;
        else
            success.fail("status", "expected 2xx or 3xx, got " + quoted(status));
    }
    success.read_string("field", rule.success_field);
    if (success.has("equals")) {
        if (!success.has("field")) success.fail("equals", "needs success.field (the JSON field to compare)");
        success.read_bool("equals", rule.success_equals);
    }
    if (success.has("field") && rule.success_field.empty()) success.fail("field", "must not be empty");
    success.finish();

    t.read_bool("drop_credential", rule.drop_credential);
    if (!rule.drop_credential) t.require("invalidate");
    t.read_string_list("invalidate", rule.invalidate);
    read_scope(t, value_in(raw, "scope"), rule.scope);
    t.read_size("max_body_bytes", rule.max_body_bytes);
    t.finish();
    return rule;
}

/// The contents of `path` (relative: to the rules file's folder), or nullopt.
/// (C stdio: <fstream> would bring std::quoted in beside this file's quoted().)
std::optional<std::string> read_key_file(const std::string& rules_path, const std::string& path) {
    std::string full = path;
    if (!path.empty() && path[0] != '/') {
        const auto slash = rules_path.rfind('/');
        full = (slash == std::string::npos ? std::string(".") : rules_path.substr(0, slash)) + "/" + path;
    }
    std::FILE* f = std::fopen(full.c_str(), "rb");
    if (!f) return std::nullopt;
    std::string out;
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && out.size() < 1024 * 1024) out.append(buf, n);
    const bool failed = std::ferror(f) != 0;
    std::fclose(f);
    if (failed) return std::nullopt;
    return out;
}

/// Why `key` cannot verify `alg` tokens (the verifier, principal/, would refuse
/// it at start-up), or nullopt: an HS256 secret must not be empty, an RS256 /
/// ES256 key must be a PEM public key of that kind.
std::optional<std::string> key_problem(PrincipalRule::Alg alg, std::string_view key) {
    if (alg == PrincipalRule::Alg::hs256) {
        if (!key.empty() && key.back() == '\n') key.remove_suffix(1);
        if (key.empty()) return "the HS256 secret in key_file is empty";
        return std::nullopt;
    }
    BIO* bio = BIO_new_mem_buf(key.data(), static_cast<int>(key.size()));
    EVP_PKEY* pkey = bio ? PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr) : nullptr;
    BIO_free(bio);
    if (!pkey) return "key_file is not a PEM public key";
    const bool rsa = EVP_PKEY_is_a(pkey, "RSA") == 1, ec = EVP_PKEY_is_a(pkey, "EC") == 1;
    EVP_PKEY_free(pkey);
    if (alg == PrincipalRule::Alg::rs256 && !rsa) return "RS256 needs an RSA public key in key_file";
    if (alg == PrincipalRule::Alg::es256 && !ec) return "ES256 needs an EC (P-256) public key in key_file";
    return std::nullopt;
}

/// principal: { learn: { field } | jwt: { claim, alg, key_file }, max_credentials, max_per_principal }.
void read_principal(YamlReader& top, const std::string& rules_path, PrincipalRule& out) {
    if (!top.has("principal")) return;
    YamlReader p = top.child("principal");
    const bool learn = p.has("learn"), jwt = p.has("jwt");
    if (learn == jwt) p.fail("learn", "give exactly one of learn: { field: user_id } or jwt: { claim, alg, key_file }");
    if (learn) {
        out.source = PrincipalRule::Source::response_field;
        YamlReader l = p.child("learn");
        l.read_string("field", out.field);
        l.finish();
        if (out.field.empty()) p.fail("learn", "field must not be empty");
    }
    if (jwt) {
        out.source = PrincipalRule::Source::jwt;
        YamlReader j = p.child("jwt");
        j.read_string("claim", out.claim);
        std::string alg = "HS256";
        j.read_string("alg", alg);
        j.require("key_file");
        j.read_string("key_file", out.key_file);
        j.finish();
        if (alg == "HS256") out.alg = PrincipalRule::Alg::hs256;
        else if (alg == "RS256") out.alg = PrincipalRule::Alg::rs256;
        else if (alg == "ES256") out.alg = PrincipalRule::Alg::es256;
        else p.fail("jwt", "alg must be HS256, RS256 or ES256, got " + quoted(alg));
        if (out.claim.empty()) p.fail("jwt", "claim must not be empty");
        auto key = out.key_file.empty() ? std::nullopt : read_key_file(rules_path, out.key_file);
        if (!key || key->empty()) {
            p.fail("jwt", "cannot read key_file " + quoted(out.key_file));
        } else if (auto why = key_problem(out.alg, *key)) {
            p.fail("jwt", *why);
        } else {
            out.key = std::move(*key);
        }
    }
    p.read_size("max_credentials", out.max_credentials);
    p.read_size("max_per_principal", out.max_per_principal);
    p.finish();
    if (out.max_credentials < 1 || out.max_credentials > 10000000)
        top.fail("principal", "max_credentials must be 1 to 10000000");
    if (out.max_per_principal < 1 || out.max_per_principal > 100000)
        top.fail("principal", "max_per_principal must be 1 to 100000");
}

}  // namespace

std::optional<config::ConfigError> load_rules(const std::string& path, RuleSet& out) {
    YAML::Node root;
    if (auto error = config::load_yaml_file(path, root)) return error;
    config::YamlSource source{path, std::nullopt};
    RuleSet rules;
    try {
        YamlReader top(source, root, "");
        read_identity(top, rules.identity);
        read_principal(top, path, rules.principal);
        YamlReader coalesce = top.child("coalesce");
        coalesce.read_duration("timeout", rules.coalesce_timeout);
        coalesce.read_unsigned("max_waiters", rules.max_waiters);
        coalesce.read_duration("error_hold", rules.coalesce_error_hold);
        coalesce.read_unsigned("max_unshared", rules.max_unshared);
        coalesce.finish();
        for (YamlReader& route : top.children("routes")) rules.routes.push_back(read_route(route));
        std::vector<YamlReader> triggers = top.children("triggers");
        const YAML::Node raw_triggers = value_in(root, "triggers");
        for (std::size_t i = 0; i < triggers.size(); ++i)
            rules.triggers.push_back(read_trigger(triggers[i], raw_triggers[i]));
        top.finish();
        if (!source.error)
            if (auto problem = rules_problem(rules))
                source.fail(config::locate(root, problem->key), problem->key, problem->message);
    } catch (const std::exception& e) {  // yaml-cpp should not throw here; never let it escape
        source.fail(YAML::Mark::null_mark(), "", std::string("cannot read rules: ") + e.what());
    }
    if (source.error) return source.error;
    out = std::move(rules);
    return std::nullopt;
}

}  // namespace cacheproxy::rules
