#pragma once
/// Strict request checks: "one parse, one meaning". Pure functions, no I/O.
///
/// Beast 1.81 accepts several forms that other parsers read differently
/// (request smuggling). Anything ambiguous is refused with a 4xx before a byte
/// of the request is forwarded.

#include "http/field_arena.hpp"

#include <boost/beast/http/message.hpp>

#include <cstddef>
#include <string_view>

namespace cacheproxy::http {

/// A refusal: the status to answer and a short reason for the log (0 = accepted).
struct Verdict {
    unsigned status = 0;
    const char* reason = "";
    explicit operator bool() const { return status != 0; }  ///< true when refused
};

/// Finds the end of the header section ("\r\n\r\n") in `data`; returns the
/// offset just past it, or 0 when not complete yet. Sets `bad` on a bare LF.
std::size_t find_header_end(std::string_view data, bool& bad);

/// Checks the raw bytes of a complete header section (request line included):
/// bare CR/LF, obs-fold, control bytes, and a request-target that is not
/// visible ASCII or holds '#'.
Verdict scan_raw_header(std::string_view header_section);

/// Checks the parsed header: framing (Transfer-Encoding / Content-Length),
/// Host, Connection and Proxy-Connection tokens (neither may name Host,
/// Content-Length, Transfer-Encoding, Authorization, Cookie or
/// `identity_header`), target form, method, Expect. Sets `expect_continue`
/// when an accepted HTTP/1.1 request awaits "100 Continue" (the walk reads
/// Expect anyway: the session need not look it up again).
Verdict check_request(const http::RequestHeader& req, bool& expect_continue,
                      std::string_view identity_header = {});

/// A Connection-style token list (`value`) that names none of the fields
/// check_request protects; a refusal otherwise.
Verdict vet_connection_tokens(std::string_view value, std::string_view identity_header = {});

/// Checks an upstream response header before anything of it is relayed: its
/// Connection may not name Content-Length or Transfer-Encoding (that would
/// strip its framing on the way through). True when it may be relayed.
template <class Fields>
bool check_response(const boost::beast::http::header<false, Fields>& res);
extern template bool check_response(const boost::beast::http::response_header<>&);  // a fill's
extern template bool check_response(const http::ResponseHeader&);                   // a relayed one

/// True when the method is idempotent (safe to retry without a body).
bool is_idempotent(boost::beast::http::verb method);

}  // namespace cacheproxy::http
