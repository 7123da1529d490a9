#pragma once
/// Errors of the Redis client (redis/node.hpp, redis/client.hpp): a
/// transport that failed, never a reply the server sent (that is a
/// Reply::Type::error).

#include <boost/system/error_code.hpp>

namespace cacheproxy::redis {

enum class Error {
    not_connected = 1,  ///< the node is down (reconnecting): failed at once, nothing sent
    timeout,            ///< no reply within the deadline: the connection was closed
    closed,             ///< the connection closed (EOF, reset, stop()) with the command pending
    protocol,           ///< the server sent bytes that are not RESP2
    redirected,         ///< still MOVED after a topology refresh
    no_node,            ///< no known node serves the key's slot
};

const boost::system::error_category& error_category();
inline boost::system::error_code make_error_code(Error e) { return {static_cast<int>(e), error_category()}; }

}  // namespace cacheproxy::redis

template <>
struct boost::system::is_error_code_enum<cacheproxy::redis::Error> : std::true_type {};
