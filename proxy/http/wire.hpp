#pragma once
/// A message header as bytes on the wire, written by hand into a reused
/// string: exactly what Beast's serializer writes for the same header (start
/// line, then every field in list order as "Name: value", CRLF after each,
/// then the empty line), without its buffer-sequence machinery, which costs
/// more than the whole rest of a pass-through request (callgrind).

#include "http/field_arena.hpp"

#include <boost/beast/http/message.hpp>

#include <string>

namespace cacheproxy::http {

namespace bhttp = boost::beast::http;

/// Appends "METHOD SP target SP HTTP/x.y CRLF", the fields and the empty line.
void append_head(const http::RequestHeader& req, std::string& out);

/// Appends "HTTP/x.y SP code SP reason CRLF" (Beast's reason(): the stored
/// phrase, or the standard one when it is empty), the fields and the empty line.
void append_head(const http::ResponseHeader& res, std::string& out);

}  // namespace cacheproxy::http
