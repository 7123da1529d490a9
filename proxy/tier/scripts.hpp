#pragma once
/// The shared tier's Lua scripts (EVALSHA, EVAL again on NOSCRIPT: a
/// restarted Redis has none). Every key a script touches is in KEYS and
/// shares one hash tag, so each runs on one node of a Cluster. A generation
/// key is created at a random start (never 0, never an old value again), and
/// a missing one matches no value: a flush, an eviction or a restart can only
/// cost hits, never bring an entry back (tier/entry_codec.hpp adds the epoch
/// for restarts from an old snapshot).

#include <string_view>

namespace cacheproxy::tier::scripts {

/// KEYS: entry, lease[, generation]. ARGV: random start, generation PX,
/// lease token, lease PX, "1" to take the lease when free ("0": look only),
/// now (unix ms). Returns {generation, kind, payload}: hit (payload = the
/// value, written under this generation and fresh until after now), miss
/// (looking only), lead (the lease is ours, "<generation>|<token>"; payload =
/// a value of this generation past its freshness, "" if none: a fallback if
/// the fetch fails), wait (another holds it; payload = its PTTL), fail (its
/// fill failed; payload = the status, held for error_hold).
inline constexpr std::string_view kLookup = R"lua(
local gen = '0'
if #KEYS >= 3 then
  gen = redis.call('GET', KEYS[3])
  if not gen then
    redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
    gen = ARGV[1]
  end
end
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, #gen + 1) ~= gen .. '\n' then v = false end
if v then
  local nl = string.find(v, '\n', #gen + 2, true)
  local fresh = nl and tonumber(string.sub(v, #gen + 2, nl - 1))
  if fresh and fresh > tonumber(ARGV[6]) then return {gen, 'hit', v} end
end
if ARGV[5] ~= '1' then return {gen, 'miss', ''} end
local prefix = gen .. '|'
local l = redis.call('GET', KEYS[2])
if l and string.sub(l, 1, #prefix) == prefix then
  local rest = string.sub(l, #prefix + 1)
  if string.sub(rest, 1, 1) == '!' then return {gen, 'fail', string.sub(rest, 2)} end
  return {gen, 'wait', tostring(redis.call('PTTL', KEYS[2]))}
end
redis.call('SET', KEYS[2], prefix .. ARGV[3], 'PX', ARGV[4])
return {gen, 'lead', v or ''}
)lua";

/// KEYS: entry, lease[, generation]. ARGV: value, value PX, the generation
/// read before the fetch, our lease value ("" = none). Stores only if the
/// generation is unchanged (compare-and-set: a write meanwhile refuses it);
/// drops the lease if it is still ours. Returns 1 stored, 0 refused.
inline constexpr std::string_view kStore = R"lua(
local ok = true
if #KEYS >= 3 then ok = (redis.call('GET', KEYS[3]) == ARGV[3]) end
if ok then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
if ARGV[4] ~= '' and redis.call('GET', KEYS[2]) == ARGV[4] then redis.call('DEL', KEYS[2]) end
if ok then return 1 end
return 0
)lua";

/// KEYS: lease. ARGV: our lease value, the new value ("" = delete), PX.
/// Compare-and-set of a lease we hold: the failure marker, a release, or a
/// renewal (new value = ours). Returns 1 when it was ours.
inline constexpr std::string_view kLease = R"lua(
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return 1
)lua";

/// KEYS: generation keys of one user (one hash tag). ARGV: PX, then one
/// random start per key. Each is created if missing, then incremented, and
/// lives PX from now. Returns the number bumped.
inline constexpr std::string_view kBump = R"lua(
for i, k in ipairs(KEYS) do
  redis.call('SET', k, ARGV[1 + i], 'NX', 'PX', ARGV[1])
  redis.call('INCR', k)
  redis.call('PEXPIRE', k, ARGV[1])
end
return #KEYS
)lua";

}  // namespace cacheproxy::tier::scripts
