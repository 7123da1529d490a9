// The "cacheproxy.redis" error category: the transport failures of
// redis::Node and redis::Client (a reply the server sent, even an error one,
// is never an error_code).

#include "redis/errors.hpp"

#include <string>

namespace cacheproxy::redis {

namespace {

class Category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "cacheproxy.redis"; }
    std::string message(int value) const override {
        switch (static_cast<Error>(value)) {
        case Error::not_connected: return "redis node not connected";
        case Error::timeout: return "redis command timed out";
        case Error::closed: return "redis connection closed";
        case Error::protocol: return "redis protocol error";
        case Error::redirected: return "redis key still MOVED after a topology refresh";
        case Error::no_node: return "no redis node serves the key's slot";
        }
        return "unknown redis error";
    }
};

}  // namespace

const boost::system::error_category& error_category() {
    static const Category category;
    return category;
}

}  // namespace cacheproxy::redis
