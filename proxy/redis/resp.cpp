// RESP2 on hiredis's formatter and reader, with none of its I/O: the bytes
// come from and go to our own Asio sockets (redis/node.cpp). hiredis's reply
// trees are copied into Reply at once and freed, so no hiredis type leaks out
// of this file and a Reply outlives the reader that produced it.

#include "redis/resp.hpp"

#include "redis/errors.hpp"

#include <hiredis/hiredis.h>

#include <charconv>

namespace cacheproxy::redis {

namespace {

redisReader* as_reader(void* p) { return static_cast<redisReader*>(p); }

std::string format(std::size_t argc, const char* const* argv, const std::size_t* lens) {
    char* out = nullptr;
    const int n = redisFormatCommandArgv(&out, static_cast<int>(argc), const_cast<const char**>(argv), lens);
    if (n < 0 || out == nullptr) return {};  // only on allocation failure
    std::string bytes(out, static_cast<std::size_t>(n));
    redisFreeCommand(out);
    return bytes;
}

template <class Range>
std::string encode_range(const Range& argv) {
    std::vector<const char*> ptrs;
    std::vector<std::size_t> lens;
    ptrs.reserve(argv.size());
    lens.reserve(argv.size());
    for (const auto& a : argv) {
        ptrs.push_back(a.data());
        lens.push_back(a.size());
    }
    return format(argv.size(), ptrs.data(), lens.data());
}

Reply convert(const redisReply& r) {
    Reply out;
    switch (r.type) {
    case REDIS_REPLY_STRING: out.type = Reply::Type::string; break;
    case REDIS_REPLY_STATUS: out.type = Reply::Type::status; break;
    case REDIS_REPLY_ERROR: out.type = Reply::Type::error; break;
    case REDIS_REPLY_INTEGER: out.type = Reply::Type::integer; break;
    case REDIS_REPLY_ARRAY: out.type = Reply::Type::array; break;
    default: out.type = Reply::Type::nil; break;
    }
    if (out.type == Reply::Type::integer) out.integer = r.integer;
    if ((out.is_string() || out.is_error()) && r.str != nullptr) out.str.assign(r.str, r.len);
    if (out.is_array()) {
        out.elements.reserve(r.elements);
        for (std::size_t i = 0; i < r.elements; ++i) out.elements.push_back(convert(*r.element[i]));
    }
    return out;
}

}  // namespace

bool Reply::moved(std::uint16_t& slot, std::string& address) const {
    // "MOVED <slot> <host:port>"; the host may be empty in Redis 7 when the
    // node does not know its own address ("MOVED 3999 :6381"), kept as given.
    constexpr std::string_view prefix = "MOVED ";
    if (!is_error() || str.compare(0, prefix.size(), prefix) != 0) return false;
    const std::string_view rest = std::string_view(str).substr(prefix.size());
    const auto space = rest.find(' ');
    if (space == std::string_view::npos || space == 0 || space + 1 >= rest.size()) return false;
    unsigned value = 0;
    const auto [end, err] = std::from_chars(rest.data(), rest.data() + space, value);
    if (err != std::errc() || end != rest.data() + space || value > 16383) return false;
    slot = static_cast<std::uint16_t>(value);
    address.assign(rest.substr(space + 1));
    return true;
}

std::string encode(std::span<const std::string_view> argv) { return encode_range(argv); }
std::string encode(std::span<const std::string> argv) { return encode_range(argv); }

namespace {

/// hiredis 0.14 allocates an array of as many pointers as a `*<n>` header
/// says before a byte of its elements arrives (`*2000000000` asks for 16 GB;
/// 1.x added maxelements for this). Our replies hold a handful of elements,
/// CLUSTER SLOTS a few per shard: more than this is a protocol error.
constexpr int kMaxElements = 1 << 20;

const redisReplyObjectFunctions* hiredis_defaults = nullptr;

void* bounded_array(const redisReadTask* task, int elements) {
    if (elements > kMaxElements) return nullptr;  // hiredis reports it as an error; the connection closes
    return hiredis_defaults->createArray(task, elements);
}

/// hiredis's own functions, but for arrays past kMaxElements.
redisReplyObjectFunctions* bounded_functions(const redisReplyObjectFunctions& defaults) {
    static redisReplyObjectFunctions bounded = [&defaults] {
        hiredis_defaults = &defaults;
        redisReplyObjectFunctions f = defaults;
        f.createArray = bounded_array;
        return f;
    }();
    return &bounded;
}

}  // namespace

Parser::Parser() : reader_(redisReaderCreate()) {
    if (auto* r = as_reader(reader_); r != nullptr && r->fn != nullptr) r->fn = bounded_functions(*r->fn);
}

Parser::~Parser() {
    if (reader_ != nullptr) redisReaderFree(as_reader(reader_));
}

void Parser::feed(std::string_view bytes) {
    if (reader_ != nullptr && !bytes.empty()) redisReaderFeed(as_reader(reader_), bytes.data(), bytes.size());
}

std::optional<Reply> Parser::next(boost::system::error_code& ec) {
    ec = {};
    if (reader_ == nullptr || as_reader(reader_)->err != 0) {
        ec = Error::protocol;
        return std::nullopt;
    }
    void* raw = nullptr;
    if (redisReaderGetReply(as_reader(reader_), &raw) != REDIS_OK) {
        if (raw != nullptr) freeReplyObject(raw);
        ec = Error::protocol;
        return std::nullopt;
    }
    if (raw == nullptr) return std::nullopt;
    Reply out = convert(*static_cast<redisReply*>(raw));
    freeReplyObject(raw);
    return out;
}

}  // namespace cacheproxy::redis
