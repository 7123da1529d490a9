#pragma once
/// RESP2, the Redis wire protocol: commands are encoded by hiredis's
/// redisFormatCommandArgv, replies parsed incrementally by hiredis's
/// redisReader (libhiredis-dev 0.14). The sockets are ours (redis/node.hpp);
/// hiredis does no I/O here.

#include <boost/system/error_code.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cacheproxy::redis {

/// One RESP2 reply, as a tree.
struct Reply {
    enum class Type { nil, status, error, integer, string, array };
    Type type = Type::nil;
    long long integer = 0;
    std::string str;              ///< status, error or bulk string bytes (binary-safe)
    std::vector<Reply> elements;  ///< array

    bool is_nil() const { return type == Type::nil; }
    bool is_error() const { return type == Type::error; }
    bool is_string() const { return type == Type::string || type == Type::status; }
    bool is_array() const { return type == Type::array; }
    /// "MOVED 3999 127.0.0.1:6381" -> true, slot and "127.0.0.1:6381".
    bool moved(std::uint16_t& slot, std::string& address) const;
};

/// The wire bytes of one command (binary-safe arguments).
std::string encode(std::span<const std::string_view> argv);
std::string encode(std::span<const std::string> argv);

/// Incremental reply parser over hiredis's redisReader. Feed bytes as they
/// come; take whole replies out. Not copyable.
class Parser {
public:
    Parser();
    ~Parser();
    Parser(const Parser&) = delete;
    Parser& operator=(const Parser&) = delete;

    void feed(std::string_view bytes);
    /// The next whole reply; nullopt when more bytes are needed, or on a
    /// protocol error (then `ec` is set and the parser is unusable).
    std::optional<Reply> next(boost::system::error_code& ec);

private:
    void* reader_;  ///< redisReader*
};

}  // namespace cacheproxy::redis
