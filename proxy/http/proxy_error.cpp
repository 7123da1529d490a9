#include "http/proxy_error.hpp"

#include <boost/beast/http/error.hpp>

#include <boost/beast/core/error.hpp>

namespace cacheproxy::http_errors {
namespace {

class Category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "cacheproxy"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::upstream_unavailable: return "upstream unavailable";
            case errc::upstream_timeout: return "upstream timed out";
            case errc::upstream_bad_response: return "upstream sent a response that cannot be relayed";
            case errc::upstream_pool_exhausted: return "no upstream connection free";
            case errc::trailers_not_allowed: return "chunked trailers are not accepted";
            case errc::bare_line_ending: return "bare CR or LF in the header section";
            case errc::header_too_large: return "header section too large";
        }
        return "unknown cacheproxy error";
    }
};

}  // namespace

const boost::system::error_category& category() {
    static const Category instance;
    return instance;
}

unsigned status_for(const boost::system::error_code& ec) {
    if (ec == errc::upstream_timeout || ec == boost::beast::error::timeout) return 504;
    if (ec == errc::upstream_pool_exhausted) return 503;
    return 502;
}

unsigned status_for_client_body(const boost::system::error_code& ec) {
    if (ec == boost::beast::http::error::body_limit) return 413;
    if (ec == boost::beast::error::timeout) return 408;
    return 400;
}

}  // namespace cacheproxy::http_errors
