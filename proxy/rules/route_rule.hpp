#pragma once
/// The cache rules (rules/*.yaml) as plain data. Nothing outside these rules is
/// ever cached; everything else passes through untouched.

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace cacheproxy::rules {

using Duration = std::chrono::milliseconds;

/// Where a request's identity (the user) comes from.
struct IdentitySource {
    enum class Kind { header, cookie, query };
    Kind kind = Kind::header;
    std::string name = "Authorization";
};

/// What the cache key is made of, besides method and exact path.
struct KeySpec {
    bool identity = false;               ///< per user: the identity is part of the key
    std::vector<std::string> query;      ///< query parameters that matter (order on the wire ignored)
    std::vector<std::string> headers;    ///< request headers that matter (lower-case names)
    /// The Origin request header decides the answer (CORS: the app's
    /// Access-Control-Allow-Origin follows it). On a shared route "origin" is
    /// then one of `headers`; on a per-user route a request with an Origin is
    /// forwarded uncached (BYPASS) unless `headers` lists "origin" (which
    /// widens a write's invalidation to the writer's whole route).
    bool origin = true;
};

/// One cached route.
struct RouteRule {
    std::string name;
    std::string method = "GET";          ///< GET (HEAD is answered from GET entries)
    std::string path;                    ///< exact path, no prefix, no extension
    bool shared = false;                 ///< same answer for every user (no identity in key)
    Duration ttl{0};
    std::size_t max_entries = 1000;
    std::size_t max_bytes = 64 * 1024 * 1024;
    std::size_t max_object_bytes = 1024 * 1024;  ///< larger responses are not stored
    KeySpec key;
    Duration stale_while_revalidate{0};
    Duration stale_if_error{0};
    Duration refresh_ahead{0};           ///< refresh in background when remaining TTL < this
    std::vector<unsigned> statuses{200}; ///< cacheable statuses
    bool allow_client_no_cache = false;  ///< honour client Cache-Control: no-cache / Pragma
};

/// Where a scope field of a write comes from.
struct ScopeField {
    enum class Source { body, query, path };
    std::string key;          ///< the target routes' query parameter it fills (e.g. "exchange")
    Source source = Source::body;
    std::string name;         ///< the field in the JSON body / query parameter / path parameter
};

/// A write that makes cached reads stale: when it succeeds (or its outcome is
/// unknown), the writer's entries of `invalidate` in the scope are dropped.
struct TriggerRule {
    std::string name;
    std::string method = "POST";             ///< POST, PUT, PATCH, DELETE
    std::string path;                        ///< exact, or with "{param}" segments: /api/trading/order/{id}
    unsigned success_status_class = 2;       ///< 2 = any 2xx
    std::string success_field;               ///< "" = status alone decides; else a top-level JSON field
    bool success_equals = true;              ///< ... that must be this boolean
    std::vector<std::string> invalidate;     ///< route names
    std::vector<ScopeField> scope;           ///< empty = all of the writer's entries in those routes
    std::size_t max_body_bytes = 64 * 1024;  ///< request/response bodies read to evaluate the rule
    /// A logout: when it succeeds, every entry of the writer's credential in
    /// every per-user route is dropped and its principal mapping forgotten.
    bool drop_credential = false;
};

/// Who is behind a credential (principal:). Never taken from the client: either
/// learned from the app's own answers or read from a verified JWT. Keys stay per
/// credential; a write by one credential invalidates, in its scope, the entries
/// of every credential known to belong to the same principal.
struct PrincipalRule {
    enum class Source { none, response_field, jwt };
    enum class Alg { hs256, rs256, es256 };
    Source source = Source::none;  ///< none: today's behaviour (invalidation per credential)
    std::string field = "user_id"; ///< response_field: top-level field of a per-user route's JSON answer
    std::string claim = "sub";     ///< jwt: the claim naming the principal
    Alg alg = Alg::hs256;          ///< jwt: the only algorithm accepted (never "none")
    std::string key_file;          ///< jwt: the HS256 secret, or the RS256/ES256 public key (PEM)
    std::string key;               ///< jwt: key_file's contents, read at load time (never logged)
    std::size_t max_credentials = 100000;  ///< credentials mapped at most (least recently used go first)
    std::size_t max_per_principal = 256;   ///< credentials per principal at most
};

/// The whole rules file.
struct RuleSet {
    IdentitySource identity;
    std::vector<RouteRule> routes;
    std::vector<TriggerRule> triggers;
    PrincipalRule principal;
    Duration coalesce_timeout = std::chrono::seconds(35);  ///< a waiter gives up after this
    std::size_t max_waiters = 10000;     ///< per key; more -> forwarded on their own
    /// A fill that failed or got a 5xx: later requests for the key get that
    /// answer for this long without an upstream call (0 = not held).
    Duration coalesce_error_hold = std::chrono::seconds(1);
    /// Waiters of an answer that may not be shared (Set-Cookie, too large) go
    /// upstream this many at a time.
    std::size_t max_unshared = 4;
};

}  // namespace cacheproxy::rules
