#pragma once
/// Which responses are worth gzip-encoding: by media type and by size. Pure.

#include <cstddef>
#include <optional>
#include <string_view>

namespace cacheproxy::encoding {

/// Bodies shorter than this are sent as they are by default: below about a
/// kilobyte the gzip header, trailer and the Vary'd variant cost more than they save.
inline constexpr std::size_t kDefaultMinSize = 1000;

/// True for text-like media types that gzip shrinks: text/* (except
/// text/event-stream, whose events must reach the client one by one),
/// application/json and every `+json`, application/x-ndjson, application/xml
/// and every `+xml` (image/svg+xml, application/atom+xml, ...),
/// application/javascript (and x-javascript, ecmascript), application/yaml,
/// application/wasm, font/ttf, font/otf, image/x-icon, image/bmp.
///
/// Not: images/audio/video/fonts that are already compressed (png, jpeg, woff2,
/// ...), application/octet-stream, application/zip, application/x-www-form-urlencoded,
/// multipart/*, an empty or malformed value. Parameters (`; charset=utf-8`),
/// whitespace and letter case are ignored.
bool compressible_type(std::string_view content_type);

/// True when a response is worth compressing: a compressible type and a body of
/// at least `min_size` bytes. `length` is nullopt when the size is not known in
/// advance (a chunked or close-delimited upstream body): such bodies are
/// compressed, since they are streamed and usually large.
bool worth_compressing(std::string_view content_type, std::optional<std::size_t> length,
                       std::size_t min_size = kDefaultMinSize);

}  // namespace cacheproxy::encoding
